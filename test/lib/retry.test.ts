// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { HttpError, InputError } from '../../actions/lib/errors.js';
import {
  backoffDelay,
  parseRetryAfter,
  withRetry,
  RetryExhaustedError,
  DEFAULT_RETRY,
} from '../../actions/lib/retry.js';

describe('retry policy', () => {
  const policy = { ...DEFAULT_RETRY, attempts: 4, baseMs: 100, maxMs: 1000, jitter: 0 };

  it('backs off exponentially, capped', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(policy, a))).toEqual([100, 200, 400, 800, 1000]);
  });

  it('full jitter stays within [delay/2, delay]', () => {
    const p = { ...policy, jitter: 1 };
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(p, 3);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it('retries 5xx and resets, then succeeds', async () => {
    const waits: number[] = [];
    let n = 0;
    const r = await withRetry(
      async () => {
        n++;
        if (n === 1) throw new HttpError(503, 'busy');
        if (n === 2) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return 'ok';
      },
      policy,
      { sleep: async (ms) => void waits.push(ms) },
    );
    expect(r).toBe('ok');
    expect(waits).toEqual([100, 200]);
  });

  it('honours Retry-After over the computed backoff (capped)', async () => {
    const waits: number[] = [];
    let n = 0;
    await withRetry(
      async () => {
        if (n++ < 2) throw new HttpError(429, 'slow down', n === 1 ? 7000 : 10 * 60 * 1000);
        return 1;
      },
      { ...policy, maxRetryAfterMs: 60_000 },
      { sleep: async (ms) => void waits.push(ms) },
    );
    expect(waits).toEqual([7000, 60_000]);
  });

  it('fails at once on 4xx and input errors', async () => {
    for (const err of [
      new HttpError(400, 'bad'),
      new HttpError(401, 'no'),
      new HttpError(403, 'no'),
      new InputError('x', 'y', 'z'),
    ]) {
      let calls = 0;
      await expect(
        withRetry(
          async () => {
            calls++;
            throw err;
          },
          policy,
          { sleep: async () => {} },
        ),
      ).rejects.toBe(err);
      expect(calls).toBe(1);
    }
  });

  it('is bounded', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new HttpError(502, 'bad gateway');
        },
        policy,
        { sleep: async () => {} },
      ),
    ).rejects.toBeInstanceOf(RetryExhaustedError);
    expect(calls).toBe(4);
  });

  it('stops starting attempts after the deadline', async () => {
    let now = 0;
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new HttpError(503, 'x');
        },
        { ...policy, attempts: 100, deadline: 1000 },
        { sleep: async (ms) => void (now += ms), now: () => now },
      ),
    ).rejects.toThrow(/wall-clock budget/);
    expect(calls).toBeLessThan(6);
  });

  it('starts no attempt at or after the deadline, and no wait crosses it', async () => {
    let now = 0;
    const waits: number[] = [];
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new HttpError(503, 'x');
    };
    const hooks = { sleep: async (ms: number) => void (waits.push(ms), (now += ms)), now: () => now };
    await expect(withRetry(fail, { ...policy, attempts: 100, deadline: 0 }, hooks)).rejects.toThrow(
      /wall-clock budget exhausted after 0 attempts/,
    );
    expect(calls).toBe(0);
    await expect(
      withRetry(fail, { ...policy, attempts: 100, baseMs: 300, maxMs: 300, jitter: 0, deadline: 1000 }, hooks),
    ).rejects.toThrow(RetryExhaustedError);
    expect(now).toBeLessThanOrEqual(1000);
    expect(waits).toEqual([300, 300, 300]);
    expect(calls).toBe(4);
  });

  it('names the last failure when a late wait ends past the deadline', async () => {
    // Timers fire late on a busy runner: the wait fits the budget, the clock after it does not.
    let now = 0;
    const lateSleep = async (ms: number) => void (now += ms + 50);
    await expect(
      withRetry(
        async () => {
          throw new HttpError(503, 'SlowDown');
        },
        { ...policy, attempts: 100, baseMs: 300, maxMs: 300, jitter: 0, deadline: 320 },
        { sleep: lateSleep, now: () => now },
      ),
    ).rejects.toThrow(/wall-clock budget exhausted after 1 attempt: .*SlowDown/);
  });

  it('aborts an attempt still running at the deadline through its signal', async () => {
    const started = Date.now();
    let sawSignal = false;
    await expect(
      withRetry(
        (_attempt, signal) =>
          new Promise((_resolve, reject) => {
            sawSignal = signal !== undefined;
            signal?.addEventListener('abort', () => reject(signal.reason as Error));
          }),
        { ...policy, attempts: 5, deadline: started + 200 },
      ),
    ).rejects.toThrow(/wall-clock budget exhausted after 1 attempt: the wall-clock budget ran out during the attempt/);
    expect(sawSignal).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports the budget, not the I/O error, when the deadline cut the attempt', async () => {
    const started = Date.now();
    await expect(
      withRetry(
        (_attempt, signal) =>
          new Promise((_resolve, reject) => {
            // What a body read of an aborted fetch throws: a bare AbortError, not the signal's reason.
            signal?.addEventListener('abort', () =>
              reject(new DOMException('The operation was aborted', 'AbortError')),
            );
          }),
        { ...policy, attempts: 5, deadline: started + 100 },
      ),
    ).rejects.toThrow(RetryExhaustedError);
  });

  it('gives no signal without a deadline', async () => {
    await withRetry(async (_attempt, signal) => expect(signal).toBeUndefined(), policy);
  });

  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('12')).toBe(12000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
