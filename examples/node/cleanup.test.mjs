// A node:test suite that gates a Node agent's cleanup with the orphan-check package
// (npm install --save-dev orphan-check). `node_no_detached.js` starts a dev server with
// child_process.spawn (no `detached`) and installs no signal handler:
// - SIGTERM to the agent alone leaves the server running and holding its port;
// - SIGKILL to the agent's whole process group takes the server too.
//
//     node --test examples/node/cleanup.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, plans, ready, freePort } from 'orphan-check';

const agents =
  process.env.ORPHAN_CHECK_AGENTS ??
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'agents');
const agent = join(agents, 'node_no_detached.js');

async function stopAgent(kill) {
  const port = await freePort();
  return run([process.execPath, agent, '--port', String(port)], {
    ready: ready.line('ready'),
    kill,
    ports: [port],
  });
}

test('SIGTERM to the agent alone leaves its dev server behind', async () => {
  const report = await stopAgent(plans.SIGTERM);
  report.assertLeak();
  const server = report.survivors.find((s) => s.cmdline.some((w) => w.endsWith('dev_server.js')));
  assert.ok(server, report.text);
  assert.ok(report.ports.some((p) => !p.free), 'the port is still held');
});

test('a kill of the whole process group leaves nothing', async () => {
  const report = await stopAgent(plans.KILL_GROUP);
  report.assertClean(); // on failure: the text report, survivors and hints
});
