/**
 * Where credentials may travel. Registry passwords and tokens, IA keys, GitHub tokens and OIDC
 * tokens go over verified https. Plain http (and unverified TLS) is only for loopback, where a
 * local registry or emulator runs, or for registries the user named in `insecure-registries`.
 * Every rule here is checked before the first byte is sent.
 *
 * Loopback is decided from the name as written, never from DNS: `localhost`, 127.0.0.0/8 and
 * ::1. A name that happens to resolve to 127.0.0.1 is not trusted (a resolver can change that).
 */

/** `host[:port]` or `[v6]:port` split into a lower-case host (no brackets) and the port, if any. */
export function splitHostPort(hostPort: string): { host: string; port?: string } {
  const h = hostPort.trim().toLowerCase();
  const v6 = /^\[([^\]]*)\](?::(\d+))?$/.exec(h);
  if (v6) return { host: v6[1] ?? '', port: v6[2] };
  const m = /^([^:]*):(\d+)$/.exec(h);
  return m ? { host: m[1] ?? '', port: m[2] } : { host: h };
}

export function hostnameOf(hostPort: string): string {
  return splitHostPort(hostPort).host;
}

export function isLoopbackHost(hostPort: string): boolean {
  const h = hostnameOf(hostPort);
  return (
    h === 'localhost' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    h === '::1' ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
  );
}

/** A line of `insecure-registries`: `host[:port]` (a name, an IPv4 address or a bracketed IPv6 one). */
export const HOST_PORT = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** How a registry client may reach its registry (the registry inputs every registry action shares). */
export interface RegistryTransport {
  tlsVerify: boolean;
  /** `host[:port]` lines; a line without a port covers every port of that host. */
  insecureRegistries?: readonly string[];
}

/** Is `hostPort` listed in `insecure-registries`? */
export function isListedInsecure(hostPort: string, list: readonly string[] = []): boolean {
  const want = splitHostPort(hostPort);
  return list.some((entry) => {
    const e = splitHostPort(entry);
    return e.host === want.host && (e.port === undefined || e.port === want.port);
  });
}

/**
 * May `hostPort` be reached over plain http or without verifying its certificate? Loopback when
 * tls-verify is false, and hosts listed in insecure-registries (whatever tls-verify says).
 */
export function mayBeInsecure(hostPort: string, t: RegistryTransport): boolean {
  return (!t.tlsVerify && isLoopbackHost(hostPort)) || isListedInsecure(hostPort, t.insecureRegistries);
}

/**
 * Why a client must refuse to talk to the registry at `hostPort` at all, or undefined. With
 * tls-verify false the user asked for plain http/unverified TLS: honoured for loopback and
 * listed hosts only; anywhere else the credentials would cross the network unprotected.
 */
export function registryTransportProblem(hostPort: string, t: RegistryTransport): string | undefined {
  if (t.tlsVerify || mayBeInsecure(hostPort, t)) return undefined;
  return (
    `tls-verify is false but ${hostPort} is not a loopback address: credentials would cross the network ` +
    `over plain http or unverified TLS. Use https with a verified certificate, or name ${hostPort} in ` +
    `insecure-registries to allow it`
  );
}

/**
 * Why a Bearer token realm must not be used, or undefined. The client sends the registry's
 * Basic credentials there, so it must be https (verified), or plain http only to a host that
 * may be insecure by the rule above.
 */
export function realmProblem(realm: string, t: RegistryTransport): string | undefined {
  let u: URL;
  try {
    u = new URL(realm);
  } catch {
    return `the token realm ${JSON.stringify(realm)} is not a URL`;
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && mayBeInsecure(u.host, t)) return undefined;
  return (
    `the token realm ${u.origin} is not https: refusing to send credentials or ask for a token there ` +
    `(plain http only to loopback with tls-verify false, or to hosts in insecure-registries)`
  );
}

/**
 * The URL rule for service endpoints that receive credentials (s3-endpoint, api-endpoint,
 * api-url, fulcio-url, rekor-url): https, or http to a loopback host (a local emulator).
 */
export function httpsUnlessLoopbackProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.username || u.password) return 'credentials in the URL are refused (use the token/key inputs)';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && isLoopbackHost(u.host)) return undefined;
  if (u.protocol === 'http:')
    return `plain http to ${u.host} would send credentials unprotected: use https (http only for loopback)`;
  return `scheme ${u.protocol.replace(/:$/, '')} is not https`;
}
