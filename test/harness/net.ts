export { freePort, waitFor } from '../../cli/services/net.js';

import os from 'node:os';

/**
 * An IPv4 address of this machine that is not loopback, for tests of the "plain http only to
 * loopback" rules: a server listening there is reachable, but by the rules it is a remote host.
 * Fails (never skips) when the machine has none, saying so.
 */
export function nonLoopbackAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this machine has no non-loopback IPv4 address: the transport tests need one to listen on');
}
