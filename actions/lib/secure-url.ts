import net from 'node:net';

/**
 * The rule for URLs a hop sends a secret to (a token, a topic that is itself a password): https,
 * or plain http only to a loopback host (local emulators and the local runner). One function so
 * the rule is stated once; returns why a URL breaks it, or undefined.
 */
export function insecureUrlReason(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'not an absolute URL';
  }
  if (u.username || u.password) return 'credentials in a URL end up in logs: pass them as a token instead';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && isLoopback(u.hostname)) return undefined;
  if (u.protocol === 'http:')
    return 'plain http is only allowed to a loopback host (127.0.0.0/8, ::1, localhost): use https';
  return `the scheme ${u.protocol} is not https`;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  return net.isIPv6(h) && (h === '::1' || h === '0:0:0:0:0:0:0:1');
}
