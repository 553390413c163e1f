import { UserError } from './errors.js';
import type { Logger } from './log.js';
import { resolveCredentials } from './oci/auth.js';
import { RegistryClient } from './oci/client.js';
import type { ImageReference } from './oci/reference.js';
import { retryPolicy, type RetryPolicy } from './retry.js';

export interface RegistryAccess {
  username?: string;
  password?: string;
  'tls-verify'?: boolean;
  /** host[:port] lines that may be reached over plain http (lib/transport.ts). */
  'insecure-registries'?: readonly string[];
}

/**
 * A client for the registry of `ref`, with credentials from the inputs, else the containers
 * auth files, else anonymous (contract: actions.md). Logs where credentials came from, never them.
 * Refuses (before any request) tls-verify false for a registry that is neither loopback nor
 * listed in insecure-registries.
 */
export function connect(
  ref: ImageReference,
  access: RegistryAccess,
  log: Logger,
  opts: { retry?: Partial<RetryPolicy>; chunkSize?: number; env?: NodeJS.ProcessEnv } = {},
): RegistryClient {
  const credentials = resolveCredentials(
    ref.registry,
    ref.repository,
    { username: access.username, password: access.password },
    opts.env,
  );
  log.debug(`registry ${ref.registry}: ${credentials ? `credentials from ${credentials.source}` : 'anonymous access'}`);
  return new RegistryClient({
    registry: ref.registry,
    credentials,
    tlsVerify: access['tls-verify'] ?? true,
    insecureRegistries: access['insecure-registries'],
    retry: retryPolicy(opts.retry),
    log,
    chunkSize: opts.chunkSize,
  });
}

/** Resolves a reference to its manifest digest once (a digest reference is checked to exist). */
export async function resolveDigest(client: RegistryClient, ref: ImageReference): Promise<string> {
  const head = await client.headManifest(ref.repository, ref.reference);
  if (!head) {
    throw new UserError(`${ref.toString()} does not exist in the registry (manifest unknown)`);
  }
  if (ref.digest && head.digest !== ref.digest) {
    throw new Error(`registry answered ${head.digest} for ${ref.toString()}`);
  }
  return head.digest;
}
