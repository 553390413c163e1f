import { InputError, UserError } from './errors.js';
import type { Logger } from './log.js';
import type { RegistryClient } from './oci/client.js';
import type { ImageReference } from './oci/reference.js';
import { readPublicKey, verifyImage } from './sign/index.js';

/**
 * The gate promote and smoke-boot put in front of an image: refuses one whose signature does not
 * verify, using the shared verifier of the sign hop (containers/image's sigstoreSigned rules, the
 * ones bootc/rpm-ostree/podman enforce; an index and every child manifest must verify).
 * `identity`: 'repository' = signedIdentity matchRepository (Keel's client policy); 'tags' =
 * c/image's default matchRepoDigestOrExact for a pull by digest (needs repo:tag identities).
 * Returns a one-line description of what was accepted.
 */
export async function checkSignature(
  client: RegistryClient,
  ref: ImageReference,
  publicKey: string,
  identity: 'repository' | 'tags',
  log: Logger,
): Promise<string> {
  let key;
  try {
    key = readPublicKey(publicKey).key;
  } catch (e) {
    throw new InputError('public-key', undefined, (e as Error).message);
  }
  const r = await verifyImage(client, ref, key, {
    identity: identity === 'tags' ? { type: 'matchRepoDigestOrExact' } : { type: 'matchRepository' },
    log,
  });
  if (!r.verified)
    throw new UserError(`refusing ${ref.toString()}: its signature does not verify with public-key: ${r.reason}`);
  log.info(`signature of ${ref.toString()} verified: ${r.reason}`);
  return `verified (${r.reason})`;
}
