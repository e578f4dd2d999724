// Gate a Node agent's cleanup with the orphan-check command line.
//
// Launches `node_no_detached.js` (child_process.spawn without `detached`, no signal
// handler) under `orphan-check run`, kills it with SIGTERM once it is ready, and
// expects exit code 1: the dev server it started survives and keeps the port.
//
//     ORPHAN_CHECK_BIN=target/debug/orphan-check node examples/node/check.mjs
//
// Exits 0 when orphan-check found the leak, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.ORPHAN_CHECK_BIN || 'orphan-check';
const agent = join(root, 'fixtures', 'agents', 'node_no_detached.js');

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'orphan-check-node-'));
const reportPath = join(dir, 'report.json');
let result;
try {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    result = spawnSync(bin, [
      'run', '--kill', 'sigterm', '--ready', 'line:ready', '--port', String(port),
      '--json', reportPath, '--', process.execPath, agent, '--port', String(port),
    ], { encoding: 'utf8', timeout: 120_000 });
    // A port picked free can be taken by something else before the start.
    if (!(result.status === 2 && result.stderr.includes('already in use'))) break;
  }
  if (result.status !== 1) {
    console.error(`expected exit 1 (leak), got ${result.status}\n${result.stderr}`);
    process.exit(1);
  }
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  if (report.verdict !== 'leak' || report.survivors.length < 1) {
    console.error(`expected a leak with survivors, got ${report.verdict}`);
    process.exit(1);
  }
  console.log(`ok: ${report.survivors.length} survivor(s) of SIGTERM, as expected`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
