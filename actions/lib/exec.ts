import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from './log.js';
import { onCleanup } from './cleanup.js';
import { redact as redactText } from './redact.js';

/**
 * The one way Keel runs external tools: an argv array (never a shell string built from
 * inputs), an explicit environment, optional stdin, captured output, a timeout, and the
 * process group killed on every exit path. Secrets given in `redact` never reach a log line.
 */
export interface RunOptions {
  cwd?: string;
  /** Replaces the inherited environment entries it names; `undefined` values remove them. */
  env?: Record<string, string | undefined>;
  /** Data for stdin (secrets go here or in env, never in argv). */
  input?: string | Buffer | Readable;
  /** Where stdout goes: captured (default), inherited, dropped, or a stream. */
  stdout?: 'capture' | 'inherit' | 'ignore' | Writable;
  stderr?: 'capture' | 'inherit' | 'ignore' | Writable;
  /** Kill the process (group) after this many milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Exit codes that are not an error (default [0]). */
  okCodes?: number[];
  /** Strings that must never be logged (replaced by ***). */
  redact?: string[];
  /** Log the command line at info level (default: debug). */
  echo?: boolean;
  /** Called with each stderr line while running (progress from long tools). */
  onStderrLine?: (line: string) => void;
  /** Called with the process id once the tool started (e.g. to sample its CPU time). */
  onSpawn?: (pid: number) => void;
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
    readonly signal?: string | null,
  ) {
    const tail = stderr.trim().split('\n').slice(-15).join('\n');
    super(`${command} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface CommandRunner {
  run(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult>;
  /** Where `cmd` would be found (PATH and sbin); a fake answers for the tools it plays. Default: `which`. */
  which?(cmd: string): string | undefined;
}

/** Quote an argv for display only (it is never executed through a shell). */
export function displayArgv(cmd: string, args: string[], secrets: string[] = []): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return redactText([cmd, ...args].map(q).join(' '), secrets);
}

const MAX_CAPTURE = 64 * 1024 * 1024;

export function processRunner(log?: Logger): CommandRunner {
  return {
    which: (cmd) => which(cmd),
    run(cmd, args, opts = {}) {
      const shown = displayArgv(cmd, args, opts.redact);
      if (opts.echo) log?.info(`$ ${shown}`);
      else log?.debug(`$ ${shown}`);
      return new Promise<RunResult>((resolve, reject) => {
        const env: NodeJS.ProcessEnv = { ...process.env };
        for (const [k, v] of Object.entries(opts.env ?? {})) {
          if (v === undefined) delete env[k];
          else env[k] = v;
        }
        const mode = (m: RunOptions['stdout']) => (m === 'inherit' ? 'inherit' : m === 'ignore' ? 'ignore' : 'pipe');
        const child = spawn(cmd, args, {
          cwd: opts.cwd,
          env,
          stdio: [opts.input === undefined ? 'ignore' : 'pipe', mode(opts.stdout), mode(opts.stderr)],
          detached: true,
        });
        if (child.pid !== undefined) opts.onSpawn?.(child.pid);
        const out: Buffer[] = [];
        let outLen = 0;
        let err = '';
        let errLine = '';
        let settled = false;
        const killGroup = (sig: NodeJS.Signals) => {
          try {
            if (child.pid) process.kill(-child.pid, sig);
          } catch {
            /* already gone */
          }
        };
        // A parent that exits (or is cancelled) must not leave the group behind.
        const unregister = onCleanup(() => killGroup('SIGKILL'));
        let timedOut = false;
        const timer =
          opts.timeoutMs !== undefined
            ? setTimeout(() => {
                timedOut = true;
                killGroup('SIGTERM');
                setTimeout(() => killGroup('SIGKILL'), 3000).unref();
              }, opts.timeoutMs)
            : undefined;
        const onAbort = () => {
          killGroup('SIGTERM');
          setTimeout(() => killGroup('SIGKILL'), 3000).unref();
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });

        if (child.stdout) {
          if (opts.stdout && typeof opts.stdout === 'object') child.stdout.pipe(opts.stdout);
          else
            child.stdout.on('data', (d: Buffer) => {
              if (outLen < MAX_CAPTURE) {
                out.push(d);
                outLen += d.length;
              }
            });
        }
        if (child.stderr) {
          if (opts.stderr && typeof opts.stderr === 'object') child.stderr.pipe(opts.stderr);
          child.stderr.on('data', (d: Buffer) => {
            const s = d.toString('utf8');
            if (err.length < 1024 * 1024) err += s;
            if (opts.onStderrLine) {
              errLine += s;
              const lines = errLine.split('\n');
              errLine = lines.pop() ?? '';
              for (const l of lines) opts.onStderrLine(l);
            }
          });
        }
        if (child.stdin) {
          child.stdin.on('error', () => {
            /* the tool may exit before reading all input; its exit code tells */
          });
          if (typeof opts.input === 'string' || Buffer.isBuffer(opts.input)) child.stdin.end(opts.input);
          else if (opts.input) {
            // A source that fails (a corrupt layer feeding tar) fails the command, not the process.
            opts.input.on('error', (e) => {
              killGroup('SIGKILL');
              finish(() => reject(e));
            });
            opts.input.pipe(child.stdin);
          }
        }
        const finish = (fn: () => void) => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          unregister();
          opts.signal?.removeEventListener('abort', onAbort);
          fn();
        };
        child.on('error', (e) => finish(() => reject(e)));
        child.on('close', (code, signal) => {
          // The leader exited; make sure nothing it spawned survives it.
          killGroup('SIGKILL');
          const stderr = redactText(err, opts.redact);
          finish(() => {
            if (timedOut) {
              reject(new CommandError(`${shown} (timed out after ${opts.timeoutMs} ms)`, code, stderr, signal));
            } else if (code === null || !(opts.okCodes ?? [0]).includes(code)) {
              reject(new CommandError(shown, code, stderr, signal));
            } else {
              resolve({ code, stdout: Buffer.concat(out), stderr });
            }
          });
        });
      });
    },
  };
}

/** Finds an executable on PATH (or an absolute path), or undefined. */
export function which(cmd: string, envPath: string = process.env.PATH ?? ''): string | undefined {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  for (const dir of ['/usr/sbin', '/sbin']) {
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Fails with one clear line naming every missing tool and the package that provides it. */
export function requireTools(tools: Record<string, string>, runner?: CommandRunner): void {
  const find = (t: string) => (runner?.which ? runner.which(t) : which(t));
  const missing = Object.entries(tools).filter(([t]) => !find(t));
  if (missing.length) {
    throw new Error(`missing tools: ${missing.map(([t, pkg]) => `${t} (package ${pkg})`).join(', ')}`);
  }
}

/** argv for running a tool as root: unchanged when we are root, through `sudo -n` otherwise. */
export function asRoot(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? [cmd, args] : ['sudo', ['-n', cmd, ...args]];
}
