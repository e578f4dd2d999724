#!/usr/bin/env node
// `npx orphan-check ...`: runs the platform package's command with these arguments,
// passing stdio, the exit status and a fatal signal through.
import { spawnSync } from 'node:child_process';
import { binaryPath } from '../index.js';

let path;
try {
  path = binaryPath();
} catch (e) {
  console.error(`orphan-check: error: ${e.message}`);
  process.exit(2);
}
const done = spawnSync(path, process.argv.slice(2), { stdio: 'inherit' });
if (done.error) {
  console.error(`orphan-check: error: could not run ${path}: ${done.error.message}`);
  process.exit(2);
}
if (done.signal) process.kill(process.pid, done.signal);
process.exit(done.status ?? 2);
