// test-kind: integration
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { startNtfyEmulator, type NtfyEmulator, type NtfyMessage } from '../../emulators/ntfy/index.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * The bundled notify action against the ntfy emulator, and the emulator against a real client:
 * curl with the header forms ntfy documents must be recorded exactly as the action's request.
 */
describe('notify (bundled) and the ntfy emulator', () => {
  const TOKEN = 'tk_notifyTestToken0123456789';
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

  const notify = (inputs: Record<string, string>) =>
    runAction({ action: 'notify', inputs, env: { KEEL_RETRY_BASE_MS: '50' } });
  // Asynchronous: the emulator answers from this process, so a blocking spawn would deadlock.
  const curl = (args: string[]) =>
    promisify(execFile)('curl', ['--silent', '--show-error', '--fail', '--max-time', '20', ...args]);
  const strip = (m: NtfyMessage) => ({ ...m, id: undefined });

  it('records the action request exactly like curl with the documented headers (UTF-8 title included)', async () => {
    const url = ntfy.topicUrl('keel-releases');
    await curl([
      '-H',
      'Title: Build ✅ candidate pushed',
      '-H',
      'X-Priority: 4',
      '-H',
      'Tags: tada,keel',
      '-H',
      'Click: https://github.com/acme/os/actions/runs/42',
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      '-d',
      'candidate.20260315 signed',
      url,
    ]);
    await curl([
      '-H',
      't: Build ✅ candidate pushed',
      '-H',
      'p:high',
      '-H',
      'ta: tada,keel',
      '-H',
      'Click: https://github.com/acme/os/actions/runs/42',
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      '-d',
      'candidate.20260315 signed',
      url,
    ]);
    const r = await notify({
      message: 'candidate.20260315 signed',
      url,
      title: 'Build ✅ candidate pushed',
      priority: 'high',
      tags: 'tada\nkeel',
      click: 'https://github.com/acme/os/actions/runs/42',
      token: TOKEN,
    });
    expect(errors(r)).toEqual([]);
    expect(warnings(r)).toEqual([]);
    expect(r.outputs.sent).toBe('true');
    expect(ntfy.messages).toHaveLength(3);
    const [a, b, c] = ntfy.messages.map(strip);
    expect(a).toEqual({
      id: undefined,
      topic: 'keel-releases',
      message: 'candidate.20260315 signed',
      title: 'Build ✅ candidate pushed',
      priority: 4,
      tags: ['tada', 'keel'],
      click: 'https://github.com/acme/os/actions/runs/42',
    });
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    // The token and the topic URL are masked, never printed.
    expect(r.masked).toEqual(expect.arrayContaining([TOKEN, url]));
    const printed = r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    expect(printed.join('\n')).not.toContain(TOKEN);
    expect(printed.join('\n')).not.toContain('keel-releases');
  });

  it('without a url: a notice, sent false, the step succeeds, nothing is sent', async () => {
    const r = await notify({ message: 'hello' });
    expect(r.code).toBe(0);
    expect(r.outputs.sent).toBe('false');
    expect(r.annotations).toEqual([{ level: 'notice', message: expect.stringMatching(/no url .*skipped/) }]);
    expect(ntfy.requests).toEqual([]);
  });

  it('retries 429 (Retry-After) and 5xx with the shared policy, then delivers once', async () => {
    ntfy.setFaults([
      { status: 429, times: 1, retryAfter: 1 },
      { status: 503, times: 1 },
    ]);
    const r = await notify({ message: 'after a storm', url: ntfy.topicUrl('ops'), token: TOKEN });
    expect(r.code).toBe(0);
    expect(r.outputs.sent).toBe('true');
    expect(ntfy.requests.map((q) => q.status)).toEqual([429, 503, 200]);
    expect(ntfy.messages.map((m) => m.message)).toEqual(['after a storm']);
    expect(r.ms).toBeGreaterThanOrEqual(1000);
  });

  it('a server that stays down: bounded attempts within timeout, a warning, sent false, step green', async () => {
    ntfy.setFaults([{ status: 500 }]);
    const r = await notify({ message: 'lost', url: ntfy.topicUrl('ops'), token: TOKEN, timeout: '5' });
    expect(r.code).toBe(0);
    expect(r.outputs.sent).toBe('false');
    expect(ntfy.requests.length).toBeGreaterThan(1);
    expect(ntfy.requests.length).toBeLessThanOrEqual(4);
    expect(warnings(r).join('')).toMatch(/notification not sent: .*gave up after 4 attempts.*HTTP 500/);
  });

  it('a refused token is not retried; a bad priority or an http URL elsewhere never reaches the network', async () => {
    const wrong = await notify({ message: 'x', url: ntfy.topicUrl('ops'), token: 'tk_wrong' });
    expect([wrong.code, wrong.outputs.sent]).toEqual([0, 'false']);
    expect(ntfy.requests.map((q) => q.status)).toEqual([401]);
    expect(warnings(wrong).join('')).toMatch(/HTTP 401/);
    ntfy.requests.length = 0;
    const plain = await notify({ message: 'x', url: 'http://ntfy.example.com/ops', token: TOKEN });
    expect([plain.code, plain.outputs.sent]).toEqual([0, 'false']);
    expect(warnings(plain).join('')).toMatch(
      /Input 'url': plain http to ntfy.example.com would send credentials unprotected: use https/,
    );
    expect(warnings(plain).join('')).not.toContain('ntfy.example.com/ops');
    const prio = await notify({ message: 'x', url: ntfy.topicUrl('ops'), priority: 'loud' });
    expect([prio.code, prio.outputs.sent]).toEqual([0, 'false']);
    expect(warnings(prio).join('')).toMatch(/Input 'priority' has value "loud"/);
    expect(ntfy.requests).toEqual([]);
  });

  it("cuts a message over ntfy's 4096-byte limit at a character boundary, so it stays a message", async () => {
    const r = await notify({ message: 'é'.repeat(3000), url: ntfy.topicUrl('ops'), token: TOKEN });
    expect(r.outputs.sent).toBe('true');
    const m = ntfy.messages[0]!;
    expect(m.attachment).toBeUndefined();
    expect(Buffer.byteLength(m.message)).toBeLessThanOrEqual(4096);
    expect(m.message).toMatch(/^é+…$/);
    // The emulator, like ntfy, turns a larger body into an attachment.
    await curl(['-H', `Authorization: Bearer ${TOKEN}`, '--data-binary', 'x'.repeat(5000), ntfy.topicUrl('ops')]);
    expect(ntfy.messages[1]!.attachment).toEqual({ name: 'attachment.txt', size: 5000 });
  });
});
