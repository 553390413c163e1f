/**
 * Error types shared by every hop. The split matters for reporting: an InputError is the
 * user's to fix (one line, no stack), a RetryableError is the retry policy's to handle,
 * anything else is a bug or an environment failure and is reported with its stack in debug.
 */

/**
 * Bad input: raised before any side effect. The message names the input, the value (omitted
 * for secrets) and the problem, phrased as what was expected ("expected a UTC date YYYYMMDD").
 */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly value: string | undefined,
    readonly problem: string,
  ) {
    super(
      value === undefined
        ? `Input '${input}': ${problem}`
        : `Input '${input}' has value ${JSON.stringify(value)}: ${problem}`,
    );
    this.name = 'InputError';
  }
}

/** A failure the user has to act on (configuration, refusal by policy); reported without a stack. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** An HTTP answer that is not what the caller needed. `retryAfterMs` comes from Retry-After. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
    readonly body?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Node network error codes that mean "the connection broke": worth another attempt. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
  'HPE_INVALID_CONSTANT',
]);

/** Marks any error as transient (a stall detector, a digest race) so the retry policy repeats it. */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TransientError';
  }
}

/** Is this failure worth repeating? 5xx, 429, 408, resets and timeouts are; 4xx and bugs are not. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  // An inner retry loop that gave up is final: retrying around it would multiply the attempts.
  if (err instanceof Error && err.name === 'RetryExhaustedError') return false;
  if (err instanceof HttpError) return err.status >= 500 || err.status === 429 || err.status === 408;
  if (err instanceof InputError || err instanceof UserError) return false;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  const msg = err instanceof Error ? err.message : '';
  return /socket hang up|ECONNRESET|aborted|other side closed/i.test(msg);
}

export function retryAfterOf(err: unknown): number | undefined {
  if (err instanceof HttpError || err instanceof TransientError) return err.retryAfterMs;
  return undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
