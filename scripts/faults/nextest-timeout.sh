#!/usr/bin/env bash
# A test killed by a nextest timeout leaves no process of its scenarios behind.
#
# Runs the blocking victim test faults::harness_victim (OC_FAULT_VICTIM=park) under a
# profile whose slow-timeout terminates it after ~2 s (SIGTERM, then SIGKILL after the
# grace period; and a second profile that SIGKILLs at once), then checks that nothing
# carrying the run's marker (ORPHAN_CHECK_RUN=<marker>, inherited as a prefix by every
# scenario's run id) is alive within BOUND_MS after nextest returns.
#
# Usage: scripts/faults/nextest-timeout.sh [ROUNDS]   (default 1 per profile)
# Exit status 0 when every round is clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-1}
BOUND_MS=${BOUND_MS:-5000}
CONFIG=scripts/faults/nextest-timeout.toml

marker_pids() { # pids whose environment has ORPHAN_CHECK_RUN=<marker>[.*]
    grep -lszE "^ORPHAN_CHECK_RUN=$1(\.|\$)" /proc/[0-9]*/environ 2>/dev/null \
        | sed -e 's|/proc/||' -e 's|/environ||' || true
}

now_ms() { date +%s%3N; }

cargo nextest run --no-run --config-file "$CONFIG" >/dev/null 2>&1 || cargo build --tests
fail=0
for profile in faults-timeout faults-timeout-sigkill; do
    for ((i = 1; i <= ROUNDS; i++)); do
        marker="oc-nextest-timeout-$$-$profile-$i"
        phases=$(mktemp)
        set +e
        OC_FAULT_VICTIM=park ORPHAN_CHECK_RUN="$marker" OC_FAULT_PHASE_FILE="$phases" \
            cargo nextest run --config-file "$CONFIG" --profile "$profile" \
            --run-ignored only -E 'test(=faults::harness_victim)' >"$phases.log" 2>&1
        rc=$?
        set -e
        ended=$(now_ms)
        reached=$(tail -n1 "$phases" 2>/dev/null || echo none)
        if [ "$rc" -eq 0 ] || ! grep -q "TIMEOUT" "$phases.log"; then
            echo "FAIL $profile #$i: the victim was not killed by a timeout (rc=$rc)"
            cat "$phases.log"; fail=1; continue
        fi
        if [ "$reached" != "ready" ]; then
            echo "FAIL $profile #$i: the victim never had live scenarios (last phase: $reached)"
            fail=1; continue
        fi
        left=""
        while :; do
            left=$(marker_pids "$marker")
            waited=$(( $(now_ms) - ended ))
            [ -z "$left" ] && break
            [ "$waited" -ge "$BOUND_MS" ] && break
            sleep 0.02   # a shell has no pidfd: poll /proc, bounded by BOUND_MS
        done
        if [ -n "$left" ]; then
            echo "FAIL $profile #$i: still alive ${BOUND_MS} ms after nextest returned:"
            for p in $left; do
                echo "  $p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -c1-60) state=$(awk '{print $3, "ppid=" $4}' /proc/$p/stat 2>/dev/null)"
            done | head -20
            for p in $left; do kill -9 "$p" 2>/dev/null || true; done   # our own leak, by pid
            fail=1
        else
            echo "OK   $profile #$i: killed at phase '$reached' by nextest; nothing with $marker alive after ${waited} ms"
        fi
        rm -f "$phases" "$phases.log"
    done
done
exit $fail
