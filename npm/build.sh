#!/usr/bin/env bash
# Packs the npm packages: the main one (orphan-check) and the platform package of this
# machine with the release binary copied in. The templates here stay untouched: each
# package is staged in a temporary directory and packed from there.
#
#   npm/build.sh [--binary target/release/orphan-check] [--out dist/npm]
#
# Prints the paths of the tarballs, main package first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary="$root/target/release/orphan-check"
out="$root/dist/npm"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: npm/build.sh [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ -x "$binary" ] || { echo "npm/build.sh: no release binary at $binary (cargo build --release)" >&2; exit 2; }

"$root/scripts/versions.sh" check >&2

case "$(uname -m)" in
  x86_64) platform=linux-x64 ;;
  aarch64|arm64) platform=linux-arm64 ;;
  *) echo "npm/build.sh: no platform package for $(uname -m)" >&2; exit 2 ;;
esac

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

cp -r "$root/npm/orphan-check" "$stage/main"
cp -r "$root/npm/$platform" "$stage/platform"
mkdir -p "$stage/platform/bin"
cp "$binary" "$stage/platform/bin/orphan-check"
chmod 755 "$stage/platform/bin/orphan-check"

for dir in main platform; do
  (cd "$stage/$dir" && npm pack --silent --pack-destination "$out" | sed "s|^|$out/|")
done
