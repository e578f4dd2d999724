// orphan-check for Node: runs the `orphan-check` command of the platform package
// (@orphan-check/linux-x64 or -arm64) with --json and returns the typed report.
import { AssertionError } from 'node:assert';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The environment variable naming a command to use instead of the platform package's. */
export const BIN_ENV = 'ORPHAN_CHECK_BIN';
/** The report schema version this package reads. */
export const SCHEMA_VERSION = 1;
const SCHEMA = 'orphan-check/report';
const MIN_VERSION = [0, 1, 0];
const PLATFORMS = {
  'linux x64': '@orphan-check/linux-x64',
  'linux arm64': '@orphan-check/linux-arm64',
};

export class OrphanCheckError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}
/** The command is not installed (the platform package is missing). */
export class BinaryNotFoundError extends OrphanCheckError {}
/** The command found cannot write the report this package reads. */
export class BinaryTooOldError extends OrphanCheckError {}
/** The harness could not do its job (exit code 2): `message` is its one-line reason. */
export class HarnessError extends OrphanCheckError {
  constructor(message, exitCode, stderr) {
    super(message);
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** The platform package that carries the command here, e.g. `@orphan-check/linux-x64`. */
export function platformPackage(platform = process.platform, arch = process.arch) {
  const name = PLATFORMS[`${platform} ${arch}`];
  if (!name) {
    throw new BinaryNotFoundError(
      `orphan-check runs on Linux x64 and arm64 only; this is ${platform} ${arch}`,
    );
  }
  return name;
}

/** The path of the `orphan-check` command: ORPHAN_CHECK_BIN, or the platform package's. */
export function binaryPath() {
  const override = process.env[BIN_ENV];
  if (override) {
    if (!isExecutable(override)) {
      throw new BinaryNotFoundError(`${BIN_ENV}=${override} is not an executable file`);
    }
    return override;
  }
  const name = platformPackage();
  let dir;
  try {
    dir = dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch {
    throw new BinaryNotFoundError(
      `the platform package ${name} is not installed, so the orphan-check command is ` +
        `missing. It is an optional dependency of orphan-check: reinstall without ` +
        `--omit=optional / --no-optional (npm install orphan-check), or name a command ` +
        `in ${BIN_ENV}`,
    );
  }
  const path = join(dir, 'bin', 'orphan-check');
  if (!isExecutable(path)) {
    throw new BinaryNotFoundError(`${name} is installed but ${path} is not an executable file`);
  }
  return path;
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const checked = new Map();

/** binaryPath(), after checking (once per file) that the command is recent enough. */
export function checkedBinary() {
  const path = binaryPath();
  const key = `${path}:${statSync(path).mtimeMs}`;
  if (checked.has(key)) return path;
  let said;
  try {
    said = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  } catch (e) {
    throw new BinaryTooOldError(`${path} --version failed: ${e.message}`);
  }
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(said);
  if (!m) throw new BinaryTooOldError(`${path} --version said ${JSON.stringify(said.trim())}`);
  const have = m.slice(1, 4).map(Number);
  for (let i = 0; i < 3; i++) {
    if (have[i] > MIN_VERSION[i]) break;
    if (have[i] < MIN_VERSION[i]) {
      throw new BinaryTooOldError(
        `${path} is orphan-check ${have.join('.')}; this package needs ` +
          `${MIN_VERSION.join('.')} or newer (JSON report schema v1)`,
      );
    }
  }
  checked.set(key, have);
  return path;
}

/** A duration in milliseconds as the command line writes it. */
function duration(value, what, { positive = false } = {}) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${what} is a number of milliseconds, 0 or more (got ${value})`);
  }
  if (positive && value === 0) throw new RangeError(`${what} must be greater than zero`);
  if (value > 3_600_000) throw new RangeError(`${what} must be at most one hour`);
  return Number.isInteger(value) ? `${value}ms` : `${value.toFixed(3)}ms`;
}

/** A kill plan, by its command-line name. */
export class KillPlan {
  constructor(name) {
    if (typeof name !== 'string' || !/^\S+$/.test(name)) {
      throw new TypeError(`a kill plan name is one word, such as 'sigterm' (got ${name})`);
    }
    this.name = name;
    Object.freeze(this);
  }
  toString() {
    return this.name;
  }
}

/** Kill plans: how a scenario ends the agent. */
export const plans = Object.freeze({
  /** SIGKILL to the agent's pid: the OOM killer, `kill -9`. */
  SIGKILL: new KillPlan('sigkill'),
  /** SIGTERM to the agent's pid. */
  SIGTERM: new KillPlan('sigterm'),
  /** SIGINT to the agent's process group: Ctrl-C. */
  INT_GROUP: new KillPlan('int-group'),
  /** SIGKILL to the agent's process group. */
  KILL_GROUP: new KillPlan('kill-group'),
  /** SIGHUP to the agent's process group: the terminal closing. */
  HUP_GROUP: new KillPlan('hup-group'),
  /** SIGKILL to a launcher the agent is started through: its IDE or terminal dying. */
  PARENT_DEATH: new KillPlan('parent-death'),
  /** No signal: the agent ends by itself (a task done, a budget hit, an exception). */
  OWN_EXIT: new KillPlan('own-exit'),
  /** End of file on the agent's stdin: an MCP client going away. */
  CLOSE_STDIN: new KillPlan('close-stdin'),
  /** SIGTERM to the container's PID 1, `graceMs`, then SIGKILL (docker stop). */
  dockerStop(graceMs = 10000) {
    return new KillPlan(`docker-stop=${duration(graceMs, 'the grace', { positive: true })}`);
  },
  /** End of file on the agent's stdin, then SIGKILL after `graceMs`. */
  closeStdinThenKill(graceMs = 5000) {
    return new KillPlan(`close-stdin-then-kill=${duration(graceMs, 'the grace', { positive: true })}`);
  },
  /** SIGTERM, then SIGKILL after `graceMs` (docker stop). */
  termThenKill(graceMs = 5000) {
    return new KillPlan(`term-then-kill=${duration(graceMs, 'the grace', { positive: true })}`);
  },
  /** Any plan by its command-line name, e.g. `named('own-exit')`. */
  named(name) {
    return new KillPlan(name);
  },
});

/** A readiness condition, as `orphan-check run --ready` writes it. */
export class Ready {
  constructor(condition) {
    this.condition = condition;
    Object.freeze(this);
  }
  toString() {
    return this.condition;
  }
}

/** When the agent is ready to be killed. */
export const ready = Object.freeze({
  /** Something listens on TCP `port`. */
  port(port) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`a TCP port is 1-65535 (got ${port})`);
    }
    return new Ready(`port:${port}`);
  },
  /** The agent printed a stdout line starting with `prefix`. */
  line(prefix) {
    if (typeof prefix !== 'string' || prefix === '' || prefix.includes('\n')) {
      throw new TypeError('ready.line needs the text one stdout line starts with');
    }
    return new Ready(`line:${prefix}`);
  },
  /** `path` exists. */
  file(path) {
    if (typeof path !== 'string' || path === '') throw new TypeError('ready.file needs a path');
    return new Ready(`file:${path}`);
  },
  /** `ms` milliseconds after the start. */
  after(ms) {
    return new Ready(`after:${duration(ms, 'ready.after')}`);
  },
});

const EMPTY_OUTPUT = Object.freeze({ head: [], tail: [], omitted: 0, total_lines: 0 });
const DEFAULTS = {
  verdict: 'leak',
  command: '',
  run_id: '',
  plan: { name: '', does: '', simulates: '' },
  ready: '',
  oracles: [],
  survivors: [],
  ports: [],
  files: [],
  signals: [],
  agent_needed_sigkill: false,
  timeline: [],
  timeline_omitted: 0,
  quiet_after_kill_ms: null,
  deadline_ms: null,
  cost: null,
  stdout: EMPTY_OUTPUT,
  stderr: EMPTY_OUTPUT,
};

/** One scenario's report: the JSON schema v1 members, plus `text` and `exitCode`. */
export class Report {
  constructor(document, text = '', exitCode = 0) {
    if (!document || document.schema !== SCHEMA) {
      throw new BinaryTooOldError(`the command wrote no ${SCHEMA} document`);
    }
    if (document.schema_version !== SCHEMA_VERSION) {
      const which =
        document.schema_version > SCHEMA_VERSION ? 'upgrade this package' : 'upgrade the command';
      throw new BinaryTooOldError(
        `the command wrote report schema version ${document.schema_version}; this ` +
          `package reads version ${SCHEMA_VERSION}: ${which}`,
      );
    }
    // Members this package does not know are kept as they are; missing ones get
    // their empty value.
    Object.assign(this, structuredClone(DEFAULTS), document);
    for (const s of this.survivors) {
      for (const key of ['cmdline', 'ports', 'escapes', 'missed_by', 'hints']) s[key] ??= [];
    }
    Object.defineProperty(this, 'raw', { value: document, enumerable: false });
    Object.defineProperty(this, 'text', { value: text, enumerable: false });
    Object.defineProperty(this, 'exitCode', { value: exitCode, enumerable: false });
  }
  /** Nothing survived, every watched port is free, no file was written after the kill. */
  get clean() {
    return this.verdict === 'clean';
  }
  get leaked() {
    return !this.clean;
  }
  /** The first line of the text report. */
  get headline() {
    return this.text.split('\n')[0] || `orphan-check: ${String(this.verdict).toUpperCase()}`;
  }
  /** Throws an AssertionError whose message is the text report, unless clean. */
  assertClean() {
    if (!this.clean) {
      throw new AssertionError({ message: this.text || this.headline, stackStartFn: this.assertClean });
    }
  }
  /** Throws an AssertionError with the text report, unless the run leaked. */
  assertLeak() {
    if (this.clean) {
      throw new AssertionError({
        message: `expected a leak, but:\n${this.text || this.headline}`,
        stackStartFn: this.assertLeak,
      });
    }
  }
}

/**
 * Launches `argv` as the agent under orphan-check, waits until it is ready, ends it by
 * the kill plan, and resolves to the report of what survived.
 */
export async function run(argv, options = {}) {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
    throw new TypeError("argv is an array of strings, e.g. [process.execPath, 'agent.js']");
  }
  const {
    ready: readiness,
    kill = plans.SIGKILL,
    ports = [],
    deadlineMs = 1000,
    cwd,
    env,
    readyTimeoutMs,
    killAfterMs,
    portDeadlineMs,
    watchDirs = [],
    timeoutMs,
  } = options;
  if (!(kill instanceof KillPlan)) {
    throw new TypeError('kill is a plan such as plans.SIGTERM or plans.named(...)');
  }
  if (readiness !== undefined && !(readiness instanceof Ready)) {
    throw new TypeError('ready is a condition such as ready.port(3000) or ready.line(...)');
  }
  const args = ['run', '--kill', kill.name, '--deadline', duration(deadlineMs, 'deadlineMs', { positive: true })];
  if (readiness) args.push('--ready', readiness.condition);
  if (readyTimeoutMs !== undefined) {
    args.push('--ready-timeout', duration(readyTimeoutMs, 'readyTimeoutMs', { positive: true }));
  }
  if (killAfterMs !== undefined) args.push('--kill-after', duration(killAfterMs, 'killAfterMs'));
  if (portDeadlineMs !== undefined) {
    args.push('--port-deadline', duration(portDeadlineMs, 'portDeadlineMs', { positive: true }));
  }
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`a watched port is a TCP port, 1-65535 (got ${port})`);
    }
    args.push('--port', String(port));
  }
  for (const dir of watchDirs) args.push('--watch-dir', dir);
  const binary = checkedBinary();
  const dir = await mkdtemp(join(tmpdir(), 'orphan-check-'));
  const jsonPath = join(dir, 'report.json');
  try {
    args.push('--json', jsonPath, '--', ...argv);
    const { code, signal, stderr } = await spawnCollect(binary, args, { cwd, env, timeoutMs });
    if (code !== 0 && code !== 1) {
      throw new HarnessError(reason(stderr, code, signal), code, stderr);
    }
    let text;
    try {
      text = await readFile(jsonPath, 'utf8');
    } catch {
      throw new BinaryTooOldError(`${binary} exited ${code} without writing the --json report`);
    }
    return new Report(JSON.parse(text), stderr, code);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function spawnCollect(binary, args, { cwd, env, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    const chunks = [];
    let timer;
    if (timeoutMs !== undefined) {
      // SIGKILL of the command closes its lifeline: its sentinel then ends the tree.
      timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    }
    child.stderr.on('data', (c) => chunks.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new BinaryNotFoundError(`could not run ${binary}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

function reason(stderr, code, signal) {
  const prefix = 'orphan-check: error: ';
  const line = stderr.split('\n').reverse().find((l) => l.startsWith(prefix));
  if (line) return line.slice(prefix.length);
  const how = signal ? `killed by ${signal}` : `exit status ${code}`;
  const tail = stderr.trim().split('\n').slice(-3).join(' / ');
  return `orphan-check ended with ${how}${tail ? `: ${tail}` : ''}`;
}

/** A TCP port free on 127.0.0.1 right now (another process may take it later). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
