import * as core from '@actions/core';
import type { Logger } from './log.js';
import { contextFromEnv, type RunContext } from './context.js';
import { displayArgv, processRunner, type CommandRunner } from './exec.js';

/**
 * The port between an action's logic and the runner. `main.ts` of every hop receives one;
 * production uses `coreIO()` (a thin shim over @actions/core), tests use `recordingIO()`.
 */
export interface ActionIO extends Logger {
  getInput(name: string): string;
  setOutput(name: string, value: string): void;
  setSecret(value: string): void;
  /** A notice annotation: worth seeing, not a problem (e.g. a hop skipped by configuration). */
  notice(message: string): void;
  /** Appends markdown to the job summary. */
  summary(markdown: string): Promise<void>;
  setFailed(message: string): void;
  /** Runs `fn` with its log lines folded under `name` (a collapsible group in the job log). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** How the hop runs external tools (processRunner in production, a fake in table tests). */
  runner: CommandRunner;
  context: RunContext;
}

export function coreIO(context: RunContext = contextFromEnv()): ActionIO {
  const log: Logger = {
    info: (m) => core.info(m),
    warning: (m) => core.warning(m),
    error: (m) => core.error(m),
    debug: (m) => core.debug(m),
  };
  return {
    ...log,
    getInput: (name) => core.getInput(name),
    setOutput: (name, value) => core.setOutput(name, value),
    setSecret: (value) => {
      if (value) core.setSecret(value);
    },
    notice: (m) => core.notice(m),
    summary: async (markdown) => {
      if (!process.env.GITHUB_STEP_SUMMARY) return;
      await core.summary.addRaw(markdown, true).write();
    },
    setFailed: (m) => core.setFailed(m),
    group: (name, fn) => core.group(name, fn),
    runner: processRunner(log),
    context,
  };
}

export interface RecordedIO extends ActionIO {
  outputs: Record<string, string>;
  secrets: string[];
  /** Log lines in order; a group shows as `group`/`endgroup` entries around its lines. */
  logs: { level: string; message: string }[];
  summaries: string[];
  /** Names of the groups opened, in order. */
  groups: string[];
  failed?: string;
}

/** A runner for tests that run no tool: any command is a test failure naming its argv. */
export const noCommands: CommandRunner = {
  run: async (cmd, args) => {
    throw new Error(`unexpected command in a test without a command runner: ${displayArgv(cmd, args)}`);
  },
};

/** An in-memory IO for unit tests of `main.ts` (inputs from a record, everything captured). */
export function recordingIO(
  inputs: Record<string, string>,
  context: Partial<RunContext> = {},
  runner: CommandRunner = noCommands,
): RecordedIO {
  const io: RecordedIO = {
    outputs: {},
    secrets: [],
    logs: [],
    summaries: [],
    groups: [],
    getInput: (name) => (inputs[name] ?? '').trim(),
    setOutput: (name, value) => void (io.outputs[name] = value),
    setSecret: (value) => void io.secrets.push(value),
    info: (message) => void io.logs.push({ level: 'info', message }),
    warning: (message) => void io.logs.push({ level: 'warning', message }),
    notice: (message) => void io.logs.push({ level: 'notice', message }),
    error: (message) => void io.logs.push({ level: 'error', message }),
    debug: (message) => void io.logs.push({ level: 'debug', message }),
    summary: async (markdown) => void io.summaries.push(markdown),
    setFailed: (message) => void (io.failed = message),
    group: async (name, fn) => {
      io.groups.push(name);
      io.logs.push({ level: 'group', message: name });
      try {
        return await fn();
      } finally {
        io.logs.push({ level: 'endgroup', message: name });
      }
    },
    runner,
    context: { ...contextFromEnv({}), ...context },
  };
  return io;
}
