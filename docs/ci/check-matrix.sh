#!/usr/bin/env bash
# Regenerates docs/matrix.md with `orphan-check matrix` and fails when the table
# changed. Header lines (starting with `<!--`: tool versions, kernel, date) are ignored.
#
# Needs tini and dumb-init installed (`apt-get install -y tini dumb-init`), or their
# sections read "skipped" and the check fails. Uses $ORPHAN_CHECK_BIN when set, else
# builds target/debug/orphan-check.
#
# A wrapper racing its child (timeout forwarding SIGTERM while the shell forks) can flip
# a cell on a loaded machine, so the table counts as current when any of three fresh
# runs matches it; a stale table differs every time.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${ORPHAN_CHECK_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --bin orphan-check
  bin=target/debug/orphan-check
fi

fresh="$(mktemp)"
trap 'rm -f "$fresh"' EXIT
for attempt in 1 2 3; do
  "$bin" matrix >"$fresh"
  if diff -u <(grep -v '^<!--' docs/matrix.md) <(grep -v '^<!--' "$fresh"); then
    echo "docs/matrix.md is up to date (run $attempt)"
    # The README carries the same table between its matrix markers.
    if ! diff -u docs/matrix.md <(sed -n '/^<!-- matrix:start -->$/,/^<!-- matrix:end -->$/p' README.md | sed '1d;$d'); then
      echo "README.md's matrix differs from docs/matrix.md: copy it between the markers" >&2
      exit 1
    fi
    exit 0
  fi
  echo "run $attempt differs from docs/matrix.md" >&2
done
echo "docs/matrix.md is out of date: regenerate it with" >&2
echo "  cargo run --release --bin orphan-check -- matrix --json docs/matrix.json > docs/matrix.md" >&2
exit 1
