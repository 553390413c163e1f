import * as core from '@actions/core';
import type { Logger } from './log.js';
import { contextFromEnv, type RunContext } from './context.js';

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
  context: RunContext;
}

export function coreIO(context: RunContext = contextFromEnv()): ActionIO {
  return {
    getInput: (name) => core.getInput(name),
    setOutput: (name, value) => core.setOutput(name, value),
    setSecret: (value) => {
      if (value) core.setSecret(value);
    },
    info: (m) => core.info(m),
    warning: (m) => core.warning(m),
    notice: (m) => core.notice(m),
    error: (m) => core.error(m),
    debug: (m) => core.debug(m),
    summary: async (markdown) => {
      if (!process.env.GITHUB_STEP_SUMMARY) return;
      await core.summary.addRaw(markdown, true).write();
    },
    setFailed: (m) => core.setFailed(m),
    context,
  };
}

export interface RecordedIO extends ActionIO {
  outputs: Record<string, string>;
  secrets: string[];
  logs: { level: string; message: string }[];
  summaries: string[];
  failed?: string;
}

/** An in-memory IO for unit tests of `main.ts` (inputs from a record, everything captured). */
export function recordingIO(inputs: Record<string, string>, context: Partial<RunContext> = {}): RecordedIO {
  const io: RecordedIO = {
    outputs: {},
    secrets: [],
    logs: [],
    summaries: [],
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
    context: { ...contextFromEnv({}), ...context },
  };
  return io;
}
