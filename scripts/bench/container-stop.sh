#!/usr/bin/env bash
# How long `docker stop` (docker-stop=10s, docker's default grace) takes with a bare
# Python agent as the container's PID 1, and with tini and dumb-init as PID 1 over it, and
# what the namespace's SIGKILL took. The agent is fixtures/agents/cause6_pid1.py --inner
# (Popen of a dev server, no signal handlers). Three runs each; one line per run.
#
# Usage: scripts/bench/container-stop.sh [ORPHAN_CHECK_BIN]   (default target/debug/orphan-check)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/debug/orphan-check}"
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
for init in "" "tini --" "tini -g --" "dumb-init"; do
  for _ in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    args=(run --kill docker-stop=10s --container --ready "port:$port" --deadline 2s --json "$json")
    [ -n "$init" ] && args+=(--init "$init")
    set +e
    "$bin" "${args[@]}" -- python3 fixtures/agents/cause6_pid1.py --inner --port "$port" >/dev/null 2>&1
    rc=$?
    set -e
    python3 - "${init:-bare Python agent}" "$rc" "$json" <<'PY'
import json, sys
name, rc, path = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(path))
c = r["container"]
start = r["signals"][0]["at_ms"]
pid1 = next(t for t in r["timeline"] if t["pid"] == c["pid1"])
stop = pid1["exit"]["at_ms"] - start
killed = sum(p["killed_by_namespace"] for p in c["processes"])
print(f"| {name} | {stop:.0f} ms | {c['pid1_end']} | {'yes' if c['stop_took_whole_grace'] else 'no'} | {killed} | {rc} |")
PY
  done
done
