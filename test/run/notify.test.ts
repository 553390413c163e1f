// test-kind: unit
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/notify/src/main.js';
import { startNtfyEmulator, type NtfyEmulator } from '../../emulators/ntfy/index.js';
import { fakeRunner } from '../harness/fake-runner.js';

/**
 * notify's run() through recordingIO against the in-process ntfy emulator: one message with its
 * headers; no url skips with a notice; every failure (bad input, refused token, a server that
 * stays down) is a warning and `sent: false`, never a failed step, and the token never shows.
 */
const TOKEN = 'tk_tableTestToken0123456789';
let ntfy: NtfyEmulator;
beforeAll(async () => {
  ntfy = await startNtfyEmulator({ token: TOKEN });
});
afterAll(() => ntfy.close());
beforeEach(() => {
  ntfy.messages.length = 0;
  ntfy.requests.length = 0;
  ntfy.setFaults([]);
});

const notify = async (inputs: Record<string, string>) => {
  const runner = fakeRunner();
  const io = recordingIO({ message: 'candidate.20250304 signed', ...inputs }, {}, runner);
  await run(io);
  expect(runner.calls).toEqual([]);
  expect(io.failed).toBeUndefined();
  return io;
};
const warnings = (io: Awaited<ReturnType<typeof notify>>) =>
  io.logs.filter((l) => l.level === 'warning').map((l) => l.message);
const everything = (io: Awaited<ReturnType<typeof notify>>) => JSON.stringify([io.logs, io.summaries, io.outputs]);

describe('notify run()', () => {
  it.each([
    ['a plain message', {}, { priority: 3, tags: [] }],
    [
      'title, word priority, tags both ways, click',
      {
        title: 'Build ✅',
        priority: 'urgent',
        tags: 'tada,keel\nwarning',
        click: 'https://github.com/acme/os/actions/runs/42',
      },
      {
        title: 'Build ✅',
        priority: 5,
        tags: ['tada', 'keel', 'warning'],
        click: 'https://github.com/acme/os/actions/runs/42',
      },
    ],
    ['a numeric priority', { priority: '1' }, { priority: 1 }],
  ])('sends %s once', async (_what, extra, want) => {
    const io = await notify({ url: ntfy.topicUrl('keel'), token: TOKEN, ...extra });
    expect(io.outputs).toEqual({ sent: 'true' });
    expect(ntfy.messages).toHaveLength(1);
    expect(ntfy.messages[0]).toMatchObject({ topic: 'keel', message: 'candidate.20250304 signed', ...want });
    expect(io.groups).toEqual([`publish to ${new URL(ntfy.url).host}`]);
    expect(io.summaries.join('')).toMatch(/### notify[\s\S]*Sent to `127\.0\.0\.1:\d+`/);
    // The topic URL and the token are secrets: masked, and never in a log line or the summary.
    expect(io.secrets).toEqual(expect.arrayContaining([ntfy.topicUrl('keel'), TOKEN]));
    expect(everything(io)).not.toContain(TOKEN);
    expect(everything(io)).not.toContain('/keel');
  });

  it("cuts a long message to ntfy's 4096 bytes at a character boundary", async () => {
    const io = await notify({ url: ntfy.topicUrl('keel'), token: TOKEN, message: 'é'.repeat(3000) });
    expect(io.outputs.sent).toBe('true');
    const sent = ntfy.messages[0]!.message;
    expect(Buffer.byteLength(sent)).toBeLessThanOrEqual(4096);
    expect(sent.endsWith('é…')).toBe(true);
    expect(ntfy.messages[0]!.attachment).toBeUndefined();
  });

  it('retries a server error and sends once it answers', async () => {
    ntfy.setFaults([{ status: 503, times: 2 }]);
    const io = await notify({ url: ntfy.topicUrl('keel'), token: TOKEN });
    expect(io.outputs.sent).toBe('true');
    expect(ntfy.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('skips without a url: a notice, no request', async () => {
    const io = await notify({});
    expect(io.outputs).toEqual({ sent: 'false' });
    expect(io.logs).toContainEqual({ level: 'notice', message: expect.stringMatching(/^notify: no url/) });
    expect(io.summaries.join('')).toContain('Skipped: no `url`.');
    expect(ntfy.requests).toEqual([]);
  });

  it.each([
    ['a refused token', { token: 'tk_wrong' }, /notification not sent: .*401/, 1],
    ['a server that stays down', { timeout: '2', fault: '500' }, /notification not sent: .*500/, 4],
    ['an unknown priority', { priority: 'loud' }, /Input 'priority' has value "loud": expected one of/, 0],
    ['a plain-http url to another host', { url: 'http://ntfy.example/keel' }, /Input 'url'.*https/, 0],
    ['a click that is not a URL', { click: 'not a url' }, /Input 'click' has value "not a url"/, 0],
    ['an empty message', { message: '' }, /Input 'message'.*required/, 0],
    ['a timeout over the limit', { timeout: '301' }, /Input 'timeout' has value "301"/, 0],
  ])('%s: a warning and sent false, never a failed step', async (_what, extra, warning, requests) => {
    const { fault, ...ex } = extra as Record<string, string>;
    if (fault) ntfy.setFaults([{ status: Number(fault) }]);
    const io = await notify({ url: ntfy.topicUrl('keel'), token: TOKEN, ...ex });
    expect(io.outputs).toEqual({ sent: 'false' });
    // Retry lines before it are warnings too; the last one says the notification was not sent.
    expect(warnings(io).at(-1)).toMatch(warning);
    expect(io.summaries.join('')).toMatch(/### notify[\s\S]*Not sent: /);
    expect(ntfy.requests).toHaveLength(requests);
    expect(ntfy.messages).toEqual([]);
    expect(everything(io)).not.toContain(TOKEN);
  });
});
