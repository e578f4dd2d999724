// The npm package against the example agents of fixtures/agents/ (see EXPECTED.md for
// what each plan leaves): a leak and a clean run, errors, and a missing platform package.
// Runs from a project where `orphan-check` is installed; ORPHAN_CHECK_AGENTS names the
// agents' directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  run, plans, ready, freePort, binaryPath, platformPackage, Report,
  HarnessError, BinaryNotFoundError, BinaryTooOldError, BIN_ENV,
} from 'orphan-check';

const agents = process.env.ORPHAN_CHECK_AGENTS;
assert.ok(agents, 'set ORPHAN_CHECK_AGENTS to the fixtures/agents directory');

async function runAgent(file, options) {
  // A port picked free may be taken before the start: the harness then refuses.
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const interpreter = file.endsWith('.js') ? process.execPath : 'python3';
    try {
      return await run([interpreter, join(agents, file), '--port', String(port)], {
        ready: ready.line('ready'), ports: [port], ...options,
      });
    } catch (e) {
      if (!(e instanceof HarnessError && e.message.includes('already in use'))) throw e;
    }
  }
  throw new Error('no free port after 5 tries');
}

test('the binary comes from the platform package', () => {
  assert.equal(platformPackage('linux', 'x64'), '@orphan-check/linux-x64');
  assert.equal(platformPackage('linux', 'arm64'), '@orphan-check/linux-arm64');
  assert.throws(() => platformPackage('darwin', 'arm64'), /Linux x64 and arm64 only/);
  assert.match(binaryPath(), /node_modules\/@orphan-check\/linux-(x64|arm64)\/bin\/orphan-check$/);
});

test('a node agent without detached leaks its server past SIGTERM', async () => {
  // Node installs no SIGTERM handler and never kills its children.
  const report = await runAgent('node_no_detached.js', { kill: plans.SIGTERM });
  assert.ok(report instanceof Report);
  assert.equal(report.verdict, 'leak');
  assert.equal(report.clean, false);
  assert.equal(report.exitCode, 1);
  const server = report.survivors.find((s) => s.cmdline.join(' ').includes('dev_server.js'));
  assert.ok(server, 'the dev server is among the survivors');
  assert.ok(report.ports.some((p) => !p.free && p.holders[0].pid === server.pid));
  assert.throws(() => report.assertClean(), (e) => {
    assert.equal(e.name, 'AssertionError');
    assert.match(e.message, /LEAK/);
    assert.match(e.message, new RegExp(`SURVIVED\\s+${server.pid}\\b`));
    return true;
  });
  report.assertLeak();
});

test('the same agent is clean when its whole group is killed', async () => {
  const report = await runAgent('node_no_detached.js', { kill: plans.KILL_GROUP });
  report.assertClean();
  assert.deepEqual(report.survivors, []);
  assert.ok(report.ports.every((p) => p.free));
  assert.throws(() => report.assertLeak(), /expected a leak/);
});

test('a wrapper chain (npm run -> sh -> node) leaves all three', async () => {
  const report = await runAgent('node_wrapper_chain.js', { kill: plans.SIGKILL });
  assert.ok(report.leaked);
  assert.ok(report.survivors.length >= 3, `${report.survivors.length} survivors`);
});

test('plans by constant, by grace and by name reach the command line', async () => {
  const report = await runAgent('node_no_detached.js', { kill: plans.termThenKill(1500) });
  assert.equal(report.plan.name, 'term-then-kill=1.5s');
  assert.equal(plans.named('int-group').name, plans.INT_GROUP.name);
  await assert.rejects(runAgent('node_no_detached.js', { kill: plans.named('no-such-plan') }),
    (e) => e instanceof HarnessError && /unknown kill plan/.test(e.message) && e.exitCode === 2);
});

test('bad input is refused before anything runs', async () => {
  await assert.rejects(run('node agent.js'), TypeError);
  await assert.rejects(run([]), TypeError);
  await assert.rejects(run(['true'], { kill: 'sigterm' }), TypeError);
  await assert.rejects(run(['true'], { ready: 'port:3000' }), TypeError);
  await assert.rejects(run(['true'], { ports: [0] }), RangeError);
  await assert.rejects(run(['true'], { deadlineMs: -5 }), TypeError);
  assert.throws(() => ready.port(70000), RangeError);
  assert.throws(() => plans.named('two words'), TypeError);
});

test('a missing agent and a busy port are harness errors', async () => {
  await assert.rejects(run([join(agents, 'no_such_agent')]),
    (e) => e instanceof HarnessError && e.exitCode === 2 && e.message.includes('no_such_agent'));
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  try {
    await assert.rejects(run(['sleep', '5'], { ports: [port] }), /already in use/);
  } finally {
    server.close();
  }
});

test('unknown members are kept, a newer schema is refused', () => {
  const doc = { schema: 'orphan-check/report', schema_version: 1, verdict: 'clean', from_the_future: 1 };
  const report = new Report(doc, '', 0);
  assert.equal(report.clean, true);
  assert.deepEqual(report.survivors, []);
  assert.equal(report.raw.from_the_future, 1);
  assert.throws(() => new Report({ ...doc, schema_version: 2 }), BinaryTooOldError);
});

test('ORPHAN_CHECK_BIN naming nothing is a clear error', async () => {
  process.env[BIN_ENV] = '/nonexistent/orphan-check';
  try {
    await assert.rejects(run(['true']), (e) => e instanceof BinaryNotFoundError && /nonexistent/.test(e.message));
  } finally {
    delete process.env[BIN_ENV];
  }
});
