import { errorMessage, isTransient, retryAfterOf, TransientError } from './errors.js';
import type { Logger } from './log.js';

/**
 * The one retry policy of Keel: bounded attempts, exponential backoff with full jitter,
 * Retry-After honoured (capped), and an optional wall-clock deadline: no attempt starts at or
 * after it, no wait crosses it, and each attempt gets a signal that aborts at it. Every hop that
 * talks to a registry, the Internet Archive or the GitHub API uses it.
 */
export interface RetryPolicy {
  /** Total attempts, including the first (>= 1). */
  attempts: number;
  /** Base delay before the first retry, milliseconds. */
  baseMs: number;
  /** Upper bound of one computed backoff delay. */
  maxMs: number;
  /** Upper bound accepted from a server's Retry-After (a hostile value cannot park a job). */
  maxRetryAfterMs: number;
  /** Multiplier per attempt. */
  factor: number;
  /** 0 = exact delays, 1 = full jitter in [delay/2, delay]. */
  jitter: number;
  /** Absolute time (ms since epoch, on the hooks' clock) bounding every attempt and every wait. */
  deadline?: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 5,
  baseMs: 500,
  maxMs: 30_000,
  maxRetryAfterMs: 120_000,
  factor: 2,
  jitter: 1,
};

/** The policy with `KEEL_RETRY_BASE_MS` applied (tests and the local runner shorten waits). */
export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const base = process.env.KEEL_RETRY_BASE_MS ? Number(process.env.KEEL_RETRY_BASE_MS) : undefined;
  return { ...DEFAULT_RETRY, ...(base !== undefined && Number.isFinite(base) ? { baseMs: base } : {}), ...overrides };
}

export interface RetryHooks {
  /** Which errors are worth repeating; default: isTransient. */
  retryable?: (err: unknown) => boolean;
  /** Called before each wait (attempt is the one that just failed, 1-based). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void | Promise<void>;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
  log?: Logger;
  /** Short label for log lines ("PUT blob sha256:ab12…"). */
  what?: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The delay before retry number `attempt` (1-based), without Retry-After. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const raw = Math.min(policy.maxMs, policy.baseMs * policy.factor ** (attempt - 1));
  const j = Math.max(0, Math.min(1, policy.jitter));
  return Math.round(raw * (1 - j / 2 + (j / 2) * random()));
}

export class RetryExhaustedError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(message);
    this.name = 'RetryExhaustedError';
  }
}

/**
 * A signal that aborts when the deadline passes (undefined without one), and its disposal. The
 * timer does not keep the process alive.
 */
function deadlineSignal(deadline: number | undefined, now: () => number): { signal?: AbortSignal; done(): void } {
  if (deadline === undefined) return { done() {} };
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new TransientError('the wall-clock budget ran out during the attempt')),
    Math.max(0, deadline - now()),
  );
  timer.unref();
  return { signal: ac.signal, done: () => clearTimeout(timer) };
}

/**
 * Runs `fn` until it succeeds, fails with an error that is not retryable, or the policy gives up
 * (attempts, or the deadline). `signal` (only with a deadline) aborts at the deadline: pass it to
 * the request so an attempt cannot outlive the budget either.
 */
export async function withRetry<T>(
  fn: (attempt: number, signal?: AbortSignal) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  hooks: RetryHooks = {},
): Promise<T> {
  const retryable = hooks.retryable ?? isTransient;
  const wait = hooks.sleep ?? sleep;
  const now = hooks.now ?? Date.now;
  const what = hooks.what ? `${hooks.what}: ` : '';
  const exhausted = (attempt: number, err: unknown) =>
    new RetryExhaustedError(
      `${what}wall-clock budget exhausted after ${attempt} attempt${attempt === 1 ? '' : 's'}${err === undefined ? '' : `: ${errorMessage(err)}`}`,
      attempt,
      err,
    );
  // The previous attempt's failure: a wait that ends at the deadline still names it.
  let lastErr: unknown;
  for (let attempt = 1; ; attempt++) {
    if (policy.deadline !== undefined && now() >= policy.deadline) throw exhausted(attempt - 1, lastErr);
    const bound = deadlineSignal(policy.deadline, now);
    try {
      return await fn(attempt, bound.signal);
    } catch (thrown) {
      // An attempt cut by the deadline fails with whatever its I/O threw (a body read says
      // "The operation was aborted"): the cause is the budget, so report that.
      const err: unknown = bound.signal?.aborted ? bound.signal.reason : thrown;
      if (!retryable(err)) throw err;
      lastErr = err;
      if (attempt >= policy.attempts) {
        throw new RetryExhaustedError(`${what}gave up after ${attempt} attempts: ${errorMessage(err)}`, attempt, err);
      }
      const ra = retryAfterOf(err);
      const delay =
        ra !== undefined ? Math.min(ra, policy.maxRetryAfterMs) : backoffDelay(policy, attempt, hooks.random);
      if (policy.deadline !== undefined && now() + delay >= policy.deadline) throw exhausted(attempt, err);
      hooks.log?.warning(
        `${what}attempt ${attempt}/${policy.attempts} failed (${errorMessage(err)}); retrying in ${(delay / 1000).toFixed(1)}s`,
      );
      await hooks.onRetry?.(err, attempt, delay);
      await wait(delay);
    } finally {
      bound.done();
    }
  }
}

/** Parses a Retry-After header (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | undefined | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
