import { errorFromResponse, request } from '../../lib/http.js';
import type { Logger } from '../../lib/log.js';
import { withRetry, type RetryPolicy } from '../../lib/retry.js';

/**
 * ntfy's publish protocol (docs.ntfy.sh/publish): the message is the POST body to the topic URL;
 * title, priority, tags and click URL travel in the `Title`, `Priority`, `Tags` and `Click`
 * headers; the access token as `Authorization: Bearer <token>`.
 */
export interface Notification {
  message: string;
  title?: string;
  /** 1 (min) … 5 (max); 3 is ntfy's default. */
  priority: number;
  tags: string[];
  click?: string;
}

/** ntfy treats a larger body as an attachment, not a message. */
export const MESSAGE_LIMIT = 4096;

/** A header value as ntfy reads it: one line, and RFC 2047 (base64) when it is not plain ASCII. */
export function headerValue(v: string): string {
  const line = v.replace(/[\r\n]+/g, ' ').trim();
  return /^[\x20-\x7e]*$/.test(line) ? line : `=?UTF-8?B?${Buffer.from(line, 'utf8').toString('base64')}?=`;
}

/** The message cut to ntfy's limit at a character boundary, marked with an ellipsis when cut. */
export function fitMessage(text: string): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= MESSAGE_LIMIT) return { text, truncated: false };
  const cut = bytes
    .subarray(0, MESSAGE_LIMIT - 3)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  return { text: `${cut}…`, truncated: true };
}

export function requestHeaders(n: Notification, token: string): Record<string, string> {
  return {
    'content-type': 'text/plain; charset=utf-8',
    ...(n.title ? { title: headerValue(n.title) } : {}),
    priority: String(n.priority),
    ...(n.tags.length ? { tags: headerValue(n.tags.join(',')) } : {}),
    ...(n.click ? { click: headerValue(n.click) } : {}),
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
}

/** Publishes once, retrying transient failures (5xx, 429 with Retry-After, resets) under `policy`. */
export async function publish(
  url: string,
  n: Notification,
  token: string,
  policy: RetryPolicy,
  log: Logger,
): Promise<{ id?: string }> {
  const what = `ntfy publish to ${new URL(url).host}`;
  const headers = requestHeaders(n, token);
  return withRetry(
    async () => {
      // Never follow a redirect: the token would go wherever it points.
      const res = await request({
        method: 'POST',
        url,
        headers,
        body: n.message,
        idleTimeoutMs: 10_000,
        followRedirects: false,
      });
      if (res.status !== 200) throw await errorFromResponse(res, what);
      const j = await res.json<{ id?: unknown }>().catch(() => ({ id: undefined }));
      return { id: typeof j.id === 'string' ? j.id : undefined };
    },
    policy,
    { log, what },
  );
}
