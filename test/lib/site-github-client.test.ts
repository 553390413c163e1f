// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { TransientError, UserError } from '../../actions/lib/errors.js';
import { api, asTransient, githubMessage } from '../../actions/lib/github.js';

/** site-bump's classification of Octokit failures for the shared retry policy. */
const octokitError = (status: number, data: unknown = { message: 'boom' }, headers: Record<string, string> = {}) =>
  Object.assign(new Error('x'), { status, response: { headers, data } });

describe('asTransient', () => {
  it('turns 5xx, 429 and 408 into TransientError with the server message and Retry-After', () => {
    for (const s of [500, 502, 503, 504, 429, 408]) {
      const e = asTransient(octokitError(s, { message: 'Server Error' }, { 'retry-after': '7' }));
      expect(e).toBeInstanceOf(TransientError);
      expect(e).toMatchObject({ message: `HTTP ${s}: Server Error`, retryAfterMs: 7000 });
    }
  });

  it('treats a rate-limited 403 as transient, waiting until the reset', () => {
    const now = 1_700_000_000_000;
    const e = asTransient(
      octokitError(
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 30) },
      ),
      now,
    );
    expect(e).toBeInstanceOf(TransientError);
    expect((e as TransientError).retryAfterMs).toBe(30_000);
  });

  it('leaves other 4xx and non-HTTP errors alone', () => {
    for (const s of [400, 401, 403, 404, 409, 422]) {
      const err = octokitError(s);
      expect(asTransient(err)).toBe(err);
    }
    const plain = new Error('bug');
    expect(asTransient(plain)).toBe(plain);
  });
});

describe('githubMessage / api', () => {
  it("joins GitHub's message with the errors[] details", () => {
    expect(
      githubMessage(
        octokitError(422, {
          message: 'Validation Failed',
          errors: [{ resource: 'PullRequest', code: 'custom', message: 'A pull request already exists for a:b.' }],
        }),
      ),
    ).toBe('Validation Failed: A pull request already exists for a:b.');
    expect(githubMessage(new Error('plain'))).toBe('plain');
  });

  it('maps 4xx to a one-line UserError, 404 to the caller’s message, and passes other errors through', async () => {
    await expect(api('GET x', () => Promise.reject(octokitError(403, { message: 'Forbidden' })))).rejects.toEqual(
      new UserError('GET x: HTTP 403: Forbidden'),
    );
    await expect(
      api(
        'GET x',
        () => Promise.reject(octokitError(404)),
        () => new UserError('no such thing'),
      ),
    ).rejects.toThrow('no such thing');
    const other = new Error('network');
    await expect(api('GET x', () => Promise.reject(other))).rejects.toBe(other);
  });
});
