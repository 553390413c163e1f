import { InputError } from '../../lib/errors.js';
import { bool, oneOf, str } from '../../lib/inputs.js';
import type { ActionIO } from '../../lib/io.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import type { ImageReference } from '../../lib/oci/reference.js';
import { checkSignature } from '../../lib/signature-gate.js';

/**
 * This hop's signature gate, kept in one place so the shared public-key/allow-unsigned helper
 * can replace it whole: fail closed — without a `public-key` the step refuses before any pull
 * or VM work, unless `allow-unsigned: true`, which is a warning in the log and the summary.
 */
export const gateInputs = {
  'public-key': str({ expected: 'a PEM public key or a path to one' }),
  'allow-unsigned': bool(false),
  identity: oneOf(['repository', 'tags'] as const, 'repository'),
};

export interface Gate {
  /** Verifies a digest reference; returns the summary's description of what was accepted. */
  check(client: RegistryClient, ref: ImageReference, log: Logger): Promise<string>;
  /** A warning for the summary when nothing is checked. */
  warning?: string;
}

export function requireGate(
  inp: { 'public-key': string; 'allow-unsigned': boolean; identity: 'repository' | 'tags' },
  io: Pick<ActionIO, 'warning'>,
): Gate {
  const key = inp['public-key'];
  if (key) return { check: (client, ref, log) => checkSignature(client, ref, key, inp.identity, log) };
  if (!inp['allow-unsigned'])
    throw new InputError(
      'public-key',
      undefined,
      'it is required: update-test refuses to install and boot images whose signatures it cannot check ' +
        '(set allow-unsigned: true to run without checking them)',
    );
  const warning =
    "allow-unsigned is true and no public-key is given: update-test does NOT check the images' signatures";
  io.warning(warning);
  return {
    warning,
    check: async (_client, ref, log) => {
      log.warning(`signature of ${ref.toString()} not checked (allow-unsigned)`);
      return 'NOT checked (allow-unsigned)';
    },
  };
}
