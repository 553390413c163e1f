import { errorMessage } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { int, list, oneOf, readInputs, secret, httpsUrl, str } from '../../lib/inputs.js';
import { retryPolicy } from '../../lib/retry.js';
import { code, section } from '../../lib/summary.js';
import { fitMessage, publish } from './ntfy.js';

const PRIORITY = { min: 1, low: 2, default: 3, high: 4, max: 5, urgent: 5 } as const;

export const inputs = {
  message: str({ required: true, expected: 'the message text' }),
  url: httpsUrl({ secret: true, expected: 'an ntfy topic URL, https (http only to a loopback host)' }),
  title: str({ expected: 'a one-line title' }),
  priority: oneOf(['1', '2', '3', '4', '5', 'min', 'low', 'default', 'high', 'max', 'urgent'] as const, '3'),
  tags: list({ expected: 'tags, newline- or comma-separated (emoji short codes like warning, tada)' }),
  click: str({ pattern: /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/, expected: 'a URL opened when the notification is tapped' }),
  token: secret(),
  timeout: int({ default: 30, min: 1, max: 300 }),
};

/**
 * notify: one ntfy notification. It never fails the step: a missing url skips with a notice,
 * anything else that goes wrong (bad input, refused token, a server that stays down within
 * `timeout`) is a warning and `sent: false`, so a notification can never break a release.
 */
export async function run(io: ActionIO): Promise<void> {
  io.setOutput('sent', 'false');
  try {
    const inp = readInputs(io, inputs);
    if (!inp.url) {
      io.notice('notify: no url (an ntfy topic URL, e.g. secrets.NTFY_TOPIC_URL): notification skipped');
      await io.summary(section('notify', 'Skipped: no `url`.'));
      return;
    }
    const fitted = fitMessage(inp.message);
    if (fitted.truncated) io.info("notify: message cut to ntfy's 4096-byte limit");
    const host = new URL(inp.url).host;
    const started = Date.now();
    const notification = {
      message: fitted.text,
      title: inp.title || undefined,
      priority: /^\d$/.test(inp.priority) ? Number(inp.priority) : PRIORITY[inp.priority as keyof typeof PRIORITY],
      tags: inp.tags
        .flatMap((t) => t.split(','))
        .map((t) => t.trim())
        .filter(Boolean),
      click: inp.click || undefined,
    };
    const policy = retryPolicy({ attempts: 4, maxRetryAfterMs: 10_000, deadline: started + inp.timeout * 1000 });
    const sent = await io.group(`publish to ${host}`, () => publish(inp.url, notification, inp.token, policy, io));
    io.setOutput('sent', 'true');
    io.info(`notify: sent to ${host}${sent.id ? ` (message ${sent.id})` : ''}`);
    await io.summary(
      section(
        'notify',
        `Sent to ${code(host)}${inp.title ? `: ${code(inp.title)}` : ''} (${Date.now() - started} ms).`,
      ),
    );
  } catch (e) {
    io.warning(`notify: notification not sent: ${errorMessage(e)}`);
    await io.summary(section('notify', `Not sent: ${errorMessage(e)}`));
  }
}
