import { UserError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import type { ImageReference } from '../../lib/oci/reference.js';

/**
 * Refuses an image whose signature does not verify. Wired to the shared verifier of the sign
 * hop; until that lands, setting public-key fails clearly instead of pretending to check.
 */
export async function checkSignature(
  _client: RegistryClient,
  _ref: ImageReference,
  _publicKey: string,
  _identity: 'repository' | 'tags',
  _log: Logger,
): Promise<string> {
  throw new UserError("Input 'public-key': signature verification is not available in this build yet");
}
