#!/usr/bin/env bash
# Builds the Python wheel and the npm tarballs from this checkout, installs them as users
# would (a fresh venv, fresh npm projects; only the registries are reached, for pytest,
# typescript and the like), and runs the Python and Node suites against the installed
# packages, not the source tree. One release build serves both: maturin's, in target/.
#
#   scripts/ci/packages.sh            (from anywhere; exits non-zero on the first failure)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
started=$(date +%s)
step() { printf -- '--- packages: %s (+%ss)\n' "$*" "$(( $(date +%s) - started ))"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ORPHAN_CHECK_AGENTS="$root/fixtures/agents"
export PIP_DISABLE_PIP_VERSION_CHECK=1
npm_quiet=(--no-audit --no-fund --loglevel=error)

step "one version everywhere"
scripts/versions.sh check

step "build tools: maturin, ruff, mypy"
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q maturin ruff mypy pytest

step "lint and type-check the Python package"
(cd python && "$work/tools/bin/ruff" check . && "$work/tools/bin/ruff" format --check . \
  && "$work/tools/bin/mypy")

step "build the wheel (release build of the command)"
(cd python && "$work/tools/bin/maturin" build --release --quiet -o "$work/wheels")
wheel="$(ls "$work"/wheels/orphan_check-*.whl)"
echo "$wheel"

step "pack the npm packages from the same release binary"
mapfile -t tarballs < <(npm/build.sh --binary target/release/orphan-check --out "$work/npm")
printf '%s\n' "${tarballs[@]}"

step "install the wheel into a fresh venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" pytest pytest-xdist
version="$("$work/venv/bin/orphan-check" --version)"
echo "$version"
[ "$version" = "orphan-check $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ]

step "the Python suite against the installed wheel"
# A copy of the tests, away from python/src: only the installed package can be imported.
cp -r python/tests "$work/pytests"
printf '[pytest]\naddopts = -p pytester -p no:cacheprovider\n' > "$work/pytests/pytest.ini"
# Under its own guard: a scenario must leave nothing behind once run() returns.
(cd "$work/pytests" && ORPHAN_CHECK_EXPECT_INSTALLED=1 \
  ORPHAN_CHECK_EXPECT_VERSION="${version#orphan-check }" \
  "$work/venv/bin/python" -m pytest -q --orphan-check -n 4)

step "pytest --orphan-check fails exactly the leaking tests of the example suite"
cp python/examples/test_leaky_suite.py "$work/pytests/"
set +e
(cd "$work/pytests" && "$work/venv/bin/python" -m pytest -q --orphan-check \
  --junitxml="$work/leaky.xml" test_leaky_suite.py) > "$work/leaky.out" 2>&1
code=$?
set -e
cat "$work/leaky.out"
[ "$code" = 1 ] || { echo "expected pytest to exit 1, got $code"; exit 1; }
"$work/venv/bin/python" - "$work/leaky.xml" "$work/leaky.out" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
failed = sorted(c.get("name") for c in cases if c.find("failure") is not None)
want = ["test_a_shell_daemonizes_a_child", "test_forgets_a_detached_worker"]
assert failed == want, f"failed {failed}, expected {want}"
out = open(sys.argv[2]).read()
for needle in ("sleep 301", "new session (setsid)", "sleep 302", "double fork"):
    assert needle in out, f"{needle!r} missing from the output"
print("packages: exactly", ", ".join(want), "failed, survivors named")
PY

step "the README's Python test, pasted into a project of its own"
mkdir "$work/readme-py"
python3 scripts/ci/readme-block.py test_cleanup.py > "$work/readme-py/test_cleanup.py"
(cd "$work/readme-py" && "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --orphan-check)

step "the Node suite and example against a fresh project with the two tarballs"
mkdir "$work/node"
echo '{"name":"consumer","private":true,"type":"module"}' > "$work/node/package.json"
(cd "$work/node" && npm install "${npm_quiet[@]}" "${tarballs[@]}")
cp npm/test/api.test.mjs examples/node/cleanup.test.mjs "$work/node/"
python3 scripts/ci/readme-block.py cleanup.test.mjs > "$work/node/readme.test.mjs"
(cd "$work/node" && node --test api.test.mjs cleanup.test.mjs readme.test.mjs)
(cd "$work/node" && npx --no-install orphan-check --version)

step "installed with --omit=optional: a clear error naming the platform package"
mkdir "$work/noopt"
echo '{"name":"consumer","private":true,"type":"module"}' > "$work/noopt/package.json"
(cd "$work/noopt" && npm install "${npm_quiet[@]}" --omit=optional --ignore-scripts "${tarballs[0]}")
[ ! -e "$work/noopt/node_modules/@orphan-check/linux-x64" ] \
  && [ ! -e "$work/noopt/node_modules/@orphan-check/linux-arm64" ]
(cd "$work/noopt" && node --input-type=module -e "
import { run, BinaryNotFoundError } from 'orphan-check';
try { await run(['true']); console.error('run() did not fail'); process.exit(1); }
catch (e) {
  if (!(e instanceof BinaryNotFoundError) || !/@orphan-check\/linux-(x64|arm64) is not installed/.test(e.message)) throw e;
  console.log('run():', e.message);
}")
set +e
(cd "$work/noopt" && npx --no-install orphan-check --version) > "$work/npx.out" 2>&1
code=$?
(cd "$work/noopt" && node node_modules/orphan-check/install.js) > "$work/postinstall.out" 2>&1
post=$?
set -e
cat "$work/npx.out" "$work/postinstall.out"
[ "$code" = 2 ] && grep -q '@orphan-check/linux-' "$work/npx.out"
[ "$post" = 1 ] && grep -q '@orphan-check/linux-' "$work/postinstall.out"

step "type-check the .d.ts with tsc"
mkdir "$work/types"
echo '{"name":"types","private":true,"type":"module"}' > "$work/types/package.json"
(cd "$work/types" && npm install "${npm_quiet[@]}" "${tarballs[@]}" typescript @types/node)
cp npm/test/types.test-d.ts npm/test/tsconfig.json "$work/types/"
(cd "$work/types" && npx --no-install tsc -p tsconfig.json)

step "done"
