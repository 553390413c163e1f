import { getOctokit } from '@actions/github';
import { errorMessage, TransientError, UserError } from './errors.js';
import type { Logger } from './log.js';
import { parseRetryAfter, retryPolicy, withRetry, type RetryPolicy } from './retry.js';
import { httpsUnlessLoopbackProblem } from './transport.js';

/** The Octokit the actions ship (@actions/github): the one GitHub API client of Keel. */
export type Octokit = ReturnType<typeof getOctokit>;

interface OctokitLikeError {
  status?: unknown;
  message?: unknown;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

/** GitHub's own message from an Octokit RequestError (`message` plus the `errors[]` details). */
export function githubMessage(err: unknown): string {
  const data = (err as OctokitLikeError | null)?.response?.data as { message?: unknown; errors?: unknown } | undefined;
  if (data && typeof data === 'object' && typeof data.message === 'string') {
    const details = Array.isArray(data.errors)
      ? data.errors
          .map((e: unknown) =>
            typeof e === 'string'
              ? e
              : ((e as { message?: string; code?: string; field?: string })?.message ?? JSON.stringify(e)),
          )
          .filter(Boolean)
      : [];
    return details.length ? `${data.message}: ${details.join('; ')}` : data.message;
  }
  return errorMessage(err);
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as OctokitLikeError | null)?.status;
  return typeof s === 'number' ? s : undefined;
}

/**
 * Classifies an Octokit failure for the retry policy: 5xx (Octokit reports network failures as
 * 500 too), 429, 408, and a 403 that is a rate limit (Retry-After or x-ratelimit-remaining: 0)
 * become a TransientError carrying the server's wait; everything else is returned as is.
 */
export function asTransient(err: unknown, now: number = Date.now()): unknown {
  const status = statusOf(err);
  if (status === undefined) return err;
  const headers = (err as OctokitLikeError).response?.headers ?? {};
  const h = (k: string) => {
    const v = headers[k];
    return v === undefined ? undefined : String(v);
  };
  let retryAfterMs = parseRetryAfter(h('retry-after'), now);
  const rateLimited = status === 403 && (h('retry-after') !== undefined || h('x-ratelimit-remaining') === '0');
  if (rateLimited && retryAfterMs === undefined && h('x-ratelimit-reset')) {
    retryAfterMs = Math.max(0, Number(h('x-ratelimit-reset')) * 1000 - now);
  }
  if (status >= 500 || status === 429 || status === 408 || rateLimited) {
    const e = new TransientError(`HTTP ${status}: ${githubMessage(err)}`, retryAfterMs);
    (e as { cause?: unknown }).cause = err;
    return e;
  }
  return err;
}

export interface ClientOptions {
  token: string;
  apiUrl: string;
  log: Logger;
  policy?: RetryPolicy;
  /** Per-attempt timeout: a stalled connection is aborted and retried. */
  timeoutMs?: number;
  /** Names the calling hop in the User-Agent (default keel). */
  userAgent?: string;
}

/**
 * An Octokit for `api-url` whose every request (REST and GraphQL) goes through Keel's retry
 * policy: bounded attempts, backoff with jitter, Retry-After honoured. 4xx answers are not
 * retried. The token is only ever in the Authorization header, never in a log line.
 */
export function createClient(opts: ClientOptions): Octokit {
  const problem = httpsUnlessLoopbackProblem(opts.apiUrl);
  if (problem) throw new UserError(`refusing to send the token to ${opts.apiUrl}: ${problem}`);
  const octokit = getOctokit(opts.token, {
    baseUrl: opts.apiUrl.replace(/\/+$/, ''),
    userAgent: opts.userAgent ?? 'keel',
    log: {
      debug: () => {},
      info: () => {},
      warn: (m: string) => opts.log.warning(m),
      error: (m: string) => opts.log.debug(m),
    },
  });
  const policy = opts.policy ?? retryPolicy();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  octokit.hook.wrap('request', (request, options) =>
    withRetry(
      async () => {
        try {
          return await request({ ...options, request: { ...options.request, signal: AbortSignal.timeout(timeoutMs) } });
        } catch (err) {
          throw asTransient(err);
        }
      },
      policy,
      { retryable: (e) => e instanceof TransientError, log: opts.log, what: `${options.method} ${options.url}` },
    ),
  );
  return octokit;
}

/**
 * Runs one API call, turning a 4xx into a one-line UserError with GitHub's message (`on404`
 * lets the caller say what a 404 means there). Other failures propagate unchanged.
 */
export async function api<T>(what: string, fn: () => Promise<T>, on404?: () => Error): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (statusOf(err) === 404 && on404) throw on404();
    return apiFailure(what, err);
  }
}

/** Rethrows an API failure the way `api` reports it. */
export function apiFailure(what: string, err: unknown): never {
  const status = statusOf(err);
  if (status === 401) throw new UserError(`${what}: HTTP 401: ${githubMessage(err)} (check the token)`);
  if (status !== undefined && status >= 400 && status < 500)
    throw new UserError(`${what}: HTTP ${status}: ${githubMessage(err)}`);
  throw err;
}

/** Runs one API call; a 404 yields undefined. */
export async function orMissing<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    return apiFailure(what, err);
  }
}
