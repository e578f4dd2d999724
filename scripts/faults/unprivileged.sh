#!/usr/bin/env bash
# Runs the whole suite as an unprivileged user (and so without a writable cgroup), from
# a nextest archive built as the current user: the user needs no toolchain and nothing is
# rebuilt. Must be started as root (it creates the user).
#
# Usage: scripts/faults/unprivileged.sh [USER]      (default oc-ci)
# Extra nextest arguments can be given in NEXTEST_ARGS, e.g. NEXTEST_ARGS="-E test(faults::)".
set -euo pipefail
cd "$(dirname "$0")/../.."
USER_NAME=${1:-oc-ci}
[ "$(id -u)" -eq 0 ] || { echo "run as root: it creates the user $USER_NAME"; exit 2; }
id "$USER_NAME" >/dev/null 2>&1 || useradd -m "$USER_NAME"
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
work="$HOME_DIR/oc-archive"
mkdir -p "$work"
archive="$work/suite.tar.zst"
cargo nextest archive --archive-file "$archive" >/dev/null
# The example agents and fixtures sources are read from the checkout (CARGO_MANIFEST_DIR):
# the archive is extracted into the user's own dir and the workspace remapped to a copy.
rm -rf "$work/checkout"
mkdir -p "$work/checkout" "$work/extract"
cp -r Cargo.toml src fixtures tests .config "$work/checkout/" 2>/dev/null || true
chown -R "$USER_NAME": "$work"
NEXTEST=$(command -v cargo-nextest)
set +e
runuser -u "$USER_NAME" -- env -i HOME="$HOME_DIR" PATH=/usr/local/bin:/usr/bin:/bin \
    ${ORPHAN_CHECK_CGROUP:+ORPHAN_CHECK_CGROUP=$ORPHAN_CHECK_CGROUP} \
    "$NEXTEST" nextest run --archive-file "$archive" \
    --workspace-remap "$work/checkout" --extract-to "$work/extract" --extract-overwrite \
    --no-fail-fast ${NEXTEST_ARGS:-}
rc=$?
set -e
echo "unprivileged run as $USER_NAME (uid $(id -u "$USER_NAME")): exit status $rc"
exit $rc
