// Types of the orphan-check package: the JSON report schema v1 of `orphan-check run
// --json` (members keep the schema's names), the kill plans and readiness helpers.

/** The environment variable naming a command to use instead of the platform package's. */
export declare const BIN_ENV: 'ORPHAN_CHECK_BIN';
/** The report schema version this package reads. */
export declare const SCHEMA_VERSION: 1;

export declare class OrphanCheckError extends Error {}
/** The command is not installed (the platform package is missing). */
export declare class BinaryNotFoundError extends OrphanCheckError {}
/** The command found cannot write the report this package reads. */
export declare class BinaryTooOldError extends OrphanCheckError {}
/** The harness could not do its job (exit code 2): `message` is its one-line reason. */
export declare class HarnessError extends OrphanCheckError {
  readonly exitCode: number | null;
  readonly stderr: string;
}

/** A kill plan, by its command-line name (`sigkill`, `term-then-kill=5s`, ...). */
export declare class KillPlan {
  private constructor(name: string);
  readonly name: string;
}

export declare const plans: {
  /** SIGKILL to the agent's pid: the OOM killer, `kill -9`. */
  readonly SIGKILL: KillPlan;
  /** SIGTERM to the agent's pid. */
  readonly SIGTERM: KillPlan;
  /** SIGINT to the agent's process group: Ctrl-C. */
  readonly INT_GROUP: KillPlan;
  /** SIGKILL to the agent's process group. */
  readonly KILL_GROUP: KillPlan;
  /** SIGHUP to the agent's process group: the terminal closing. */
  readonly HUP_GROUP: KillPlan;
  /** SIGKILL to a launcher the agent is started through: its IDE or terminal dying. */
  readonly PARENT_DEATH: KillPlan;
  /** No signal: the agent ends by itself. */
  readonly OWN_EXIT: KillPlan;
  /** End of file on the agent's stdin. */
  readonly CLOSE_STDIN: KillPlan;
  /** SIGTERM to the container's PID 1, `graceMs`, then SIGKILL (docker stop). */
  dockerStop(graceMs?: number): KillPlan;
  /** End of file on the agent's stdin, then SIGKILL after `graceMs`. */
  closeStdinThenKill(graceMs?: number): KillPlan;
  /** SIGTERM, then SIGKILL after `graceMs` (docker stop). */
  termThenKill(graceMs?: number): KillPlan;
  /** Any plan by its command-line name, e.g. `named('own-exit')`. */
  named(name: string): KillPlan;
};

/** A readiness condition, as `orphan-check run --ready` writes it. */
export declare class Ready {
  private constructor(condition: string);
  readonly condition: string;
}

export declare const ready: {
  /** Something listens on TCP `port`. */
  port(port: number): Ready;
  /** The agent printed a stdout line starting with `prefix`. */
  line(prefix: string): Ready;
  /** `path` exists. */
  file(path: string): Ready;
  /** `ms` milliseconds after the start. */
  after(ms: number): Ready;
};

/** One way a survivor escaped: `new_session`, `daemonized`, `shell_true`, ... */
export interface Escape {
  kind: string;
  [member: string]: unknown;
}

export interface Survivor {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  state: string;
  comm: string;
  cmdline: string[];
  start_ticks: number;
  uid: number;
  pid_in_namespace: number | null;
  /** TCP ports it listens on. */
  ports: number[];
  /** Its parent when first seen, before it was reparented. */
  original_parent: number | null;
  /** Whether its environment still carries ORPHAN_CHECK_RUN (null: unreadable). */
  env_marker: boolean | null;
  escapes: Escape[];
  /** Cleanups that would have missed it: `group_kill`, `env_marker_sweep`, `parent_walk`. */
  missed_by: string[];
  /** One line toward the fix per escape. */
  hints: string[];
}

export interface PortHolder {
  pid: number;
  command: string;
  descendant: boolean;
}

export interface PortVerdict {
  port: number;
  free: boolean;
  checked_after_kill_ms: number;
  holders: PortHolder[];
}

export interface FileChange {
  path: string;
  change: 'created' | 'modified' | 'replaced' | 'removed' | string;
  writers: number[];
}

export interface SentSignal {
  signal: string;
  target: 'agent' | 'group' | 'member' | string;
  to: number;
  at_ms: number;
  delivered: boolean;
}

export interface ExitRecord {
  at_ms: number;
  how: string;
}

export interface TimelineEntry {
  pid: number;
  command: string;
  original_parent: number | null;
  pgid: number | null;
  sid: number | null;
  first_seen_ms: number | null;
  exit: ExitRecord | null;
  reaped_by: 'sentinel' | 'parent' | string | null;
  needed_sigkill: boolean;
  survived: boolean;
}

export interface Output {
  head: string[];
  tail: string[];
  omitted: number;
  total_lines: number;
}

/** One scenario's report: the JSON schema v1 members, plus `text` and `exitCode`. */
export declare class Report {
  constructor(document: unknown, text?: string, exitCode?: number);
  readonly schema: 'orphan-check/report';
  readonly schema_version: 1;
  readonly verdict: 'clean' | 'leak';
  readonly command: string;
  readonly run_id: string;
  readonly plan: { name: string; does: string; simulates: string };
  readonly ready: string;
  readonly agent_pid: number;
  readonly ready_ms: number;
  readonly kill_after_ms: number;
  readonly killed_ms: number;
  readonly deadline_ms: number | null;
  readonly oracles: string[];
  readonly survivors: Survivor[];
  readonly ports: PortVerdict[];
  readonly files: FileChange[];
  readonly signals: SentSignal[];
  readonly agent_needed_sigkill: boolean;
  readonly timeline: TimelineEntry[];
  readonly timeline_omitted: number;
  readonly quiet_after_kill_ms: number | null;
  readonly cost: { cpu_usec: number | null; memory_bytes: number | null } | null;
  readonly stdout: Output;
  readonly stderr: Output;
  /** The whole JSON document, members this package does not know included. */
  readonly raw: Record<string, unknown>;
  /** The report as orphan-check prints it for people. */
  readonly text: string;
  /** The command's exit code: 0 clean, 1 leak. */
  readonly exitCode: number;
  /** Nothing survived, every watched port is free, no file was written after the kill. */
  readonly clean: boolean;
  readonly leaked: boolean;
  /** The first line of the text report. */
  readonly headline: string;
  /** Throws an AssertionError whose message is the text report, unless clean. */
  assertClean(): void;
  /** Throws an AssertionError with the text report, unless the run leaked. */
  assertLeak(): void;
}

export interface RunOptions {
  /** When the agent is ready to be killed (default: as soon as it started). */
  ready?: Ready;
  /** How to end it (default: plans.SIGKILL). */
  kill?: KillPlan;
  /** TCP ports that must be free before the start and free again after the kill. */
  ports?: readonly number[];
  /** How long after the kill a descendant may live (default 1000). */
  deadlineMs?: number;
  /** The agent's working directory. */
  cwd?: string;
  /** The agent's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for readiness (default 10 000). */
  readyTimeoutMs?: number;
  /** A fixed delay between readiness and the kill. */
  killAfterMs?: number;
  /** How long after the kill a watched port may stay held (default: deadlineMs). */
  portDeadlineMs?: number;
  /** Directories nothing may write to after the kill. */
  watchDirs?: readonly string[];
  /** Ends the whole scenario (and its tree) after this long. */
  timeoutMs?: number;
}

/**
 * Launches `argv` as the agent under orphan-check, waits until it is ready, ends it by
 * the kill plan, and resolves to the report of what survived. Rejects with a
 * HarnessError when the harness could not do its job, a BinaryNotFoundError when the
 * platform package is missing.
 */
export declare function run(argv: readonly string[], options?: RunOptions): Promise<Report>;

/** The platform package that carries the command here, e.g. `@orphan-check/linux-x64`. */
export declare function platformPackage(platform?: string, arch?: string): string;
/** The path of the `orphan-check` command. */
export declare function binaryPath(): string;
/** binaryPath(), after checking the command is recent enough. */
export declare function checkedBinary(): string;
/** A TCP port free on 127.0.0.1 right now. */
export declare function freePort(): Promise<number>;
