#!/usr/bin/env bash
# One version for the crate, the wheel and the npm packages. Cargo.toml is the one place
# to bump: the wheel reads it (maturin's dynamic version); the npm manifests carry copies
# that `set` writes and `check` compares.
#
#   scripts/versions.sh check          fail when an npm manifest differs from Cargo.toml
#   scripts/versions.sh set 0.2.0      write the version into Cargo.toml and every manifest
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
manifests=("$root/npm/orphan-check/package.json" "$root/npm/linux-x64/package.json" "$root/npm/linux-arm64/package.json")

crate_version() {
  sed -n '/^\[package\]/,/^\[/{s/^version = "\(.*\)"/\1/p}' "$root/Cargo.toml" | head -1
}

case "${1:-}" in
  check)
    want="$(crate_version)"
    node - "$want" "${manifests[@]}" <<'JS'
const fs = require('node:fs');
const [want, ...files] = process.argv.slice(2);
let bad = 0;
for (const f of files) {
  const m = JSON.parse(fs.readFileSync(f, 'utf8'));
  const found = [[m.name, m.version]];
  for (const [dep, v] of Object.entries(m.optionalDependencies || {})) found.push([`${m.name} -> ${dep}`, v]);
  for (const [what, v] of found) {
    if (v !== want) { console.error(`versions: ${what} is ${v}, Cargo.toml says ${want} (scripts/versions.sh set ${want})`); bad = 1; }
  }
}
if (!bad) console.error(`versions: crate, wheel and npm packages are all ${want}`);
process.exit(bad);
JS
    ;;
  set)
    new="${2:?usage: scripts/versions.sh set X.Y.Z}"
    [[ "$new" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$ ]] || { echo "versions: $new is not a version" >&2; exit 2; }
    sed -i '/^\[package\]/,/^\[/{s/^version = ".*"/version = "'"$new"'"/}' "$root/Cargo.toml"
    node - "$new" "${manifests[@]}" <<'JS'
const fs = require('node:fs');
const [v, ...files] = process.argv.slice(2);
for (const f of files) {
  const m = JSON.parse(fs.readFileSync(f, 'utf8'));
  m.version = v;
  for (const dep of Object.keys(m.optionalDependencies || {})) m.optionalDependencies[dep] = v;
  fs.writeFileSync(f, JSON.stringify(m, null, 2) + '\n');
}
JS
    "$0" check
    ;;
  *) echo "usage: scripts/versions.sh check | set X.Y.Z" >&2; exit 2 ;;
esac
