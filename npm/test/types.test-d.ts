// Compiled by tsc (--noEmit) against the published .d.ts: what users write type-checks,
// and the mistakes the helpers exist to prevent do not.
import { run, plans, ready, Report, HarnessError, type Survivor } from 'orphan-check';

async function usage(): Promise<void> {
  const report: Report = await run([process.execPath, 'agent.js'], {
    ready: ready.port(3000),
    kill: plans.termThenKill(2000),
    ports: [3000],
    deadlineMs: 500,
  });
  report.assertClean();
  const s: Survivor | undefined = report.survivors[0];
  const pid: number | undefined = s?.pid;
  const kinds: string[] = report.survivors.flatMap((x) => x.escapes.map((e) => e.kind));
  const held: boolean = report.ports.some((p) => !p.free);
  const verdict: 'clean' | 'leak' = report.verdict;
  void [pid, kinds, held, verdict, plans.named('own-exit'), HarnessError];
  // @ts-expect-error kill plans are helpers, not strings to guess
  await run(['x'], { kill: 'sigterm' });
  // @ts-expect-error readiness is a helper too
  await run(['x'], { ready: 'port:3000' });
  // @ts-expect-error argv is an array of words
  await run('node agent.js');
}
void usage;
