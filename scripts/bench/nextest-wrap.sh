#!/usr/bin/env bash
# A 200-test nextest suite, plain and with every test process under `orphan-check wrap`
# (the README's wrapper script), alternated; prints each run's wall time and the median
# ratio (the suite also holds one test that leaks only when asked to; the script checks
# that the wrapped runs fail it). Usage: scripts/bench/nextest-wrap.sh [ROUNDS] [ORPHAN_CHECK_BINARY]
set -euo pipefail
rounds=${1:-5}
bin=${2:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/orphan-check}
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/.config" "$work/bin"
cat > "$work/Cargo.toml" <<'TOML'
[package]
name = "two-hundred"
version = "0.1.0"
edition = "2021"
[workspace]
TOML
{
  echo "#[cfg(test)] mod tests {"
  for i in $(seq 1 200); do echo "    #[test] fn t$i() { assert_eq!(1 + 1, 2); }"; done
  # Not timed: proves that the wrapped runs really ran under the wrapper.
  echo '    #[test] fn leaks() { if std::env::var_os("LEAK").is_some() {'
  echo '        std::process::Command::new("sleep").arg("30").stdin(std::process::Stdio::null())'
  echo '            .stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null())'
  echo '            .spawn().unwrap(); } }'
  echo "}"
} > "$work/src/lib.rs"
ln -s "$bin" "$work/bin/orphan-check"
cat > "$work/.config/wrapped.toml" <<'TOML'
experimental = ["wrapper-scripts"]
[scripts.wrapper.orphan-check]
command = "orphan-check wrap --deadline 500ms --"
[[profile.default.scripts]]
filter = "all()"
run-wrapper = "orphan-check"
TOML
cd "$work"
cargo nextest run --no-run 2>&1 | tail -1
now() { date +%s%N; }
plain=(); wrapped=()
for r in $(seq 1 "$rounds"); do
  t=$(now); cargo nextest run --no-fail-fast >/dev/null 2>&1; plain+=($(( ($(now) - t) / 1000000 )))
  t=$(now); PATH="$work/bin:$PATH" cargo nextest run --no-fail-fast \
    --config-file "$work/.config/wrapped.toml" >/dev/null 2>&1; wrapped+=($(( ($(now) - t) / 1000000 )))
  echo "round $r: plain ${plain[-1]} ms, wrapped ${wrapped[-1]} ms"
done
# The check: the leaking test must fail under the wrapper (which kills what it left).
if LEAK=1 PATH="$work/bin:$PATH" cargo nextest run --no-fail-fast \
    --config-file "$work/.config/wrapped.toml" -E 'test(leaks)' >"$work/leak.out" 2>&1; then
  echo "the wrapper did not fail the leaking test: these figures are not of wrapped runs" >&2
  cat "$work/leak.out" >&2
  exit 1
fi
python3 - "${plain[*]}" "${wrapped[*]}" <<'PY'
import statistics, sys
p = [int(x) for x in sys.argv[1].split()]
w = [int(x) for x in sys.argv[2].split()]
print(f"median: plain {statistics.median(p):.0f} ms, wrapped {statistics.median(w):.0f} ms, "
      f"ratio {statistics.median(w) / statistics.median(p):.2f}x (pairwise: "
      + ", ".join(f"{b / a:.2f}" for a, b in zip(p, w)) + ")")
PY
