#!/usr/bin/env bash
# The picture of a run in a real browser: installs Debian's chromium (as root, with
# apt-get), then renders the page of a leak and of a clean run headless and checks the
# console, the DOM and the screenshot (tests/suite/html.rs). Here a missing browser is a
# failure, not a skip. The pages and their screenshots are kept in target/html-report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi
mkdir -p target/html-report
OC_REQUIRE_CHROMIUM=1 OC_HTML_OUT="$PWD/target/html-report" cargo test -q --test suite html::
ls target/html-report
