import type crypto from 'node:crypto';
import { z } from 'zod';
import { errorMessage, InputError, UserError } from './errors.js';
import { bool, type InputDef } from './inputs.js';
import type { ActionIO } from './io.js';
import type { Logger } from './log.js';
import type { RegistryClient } from './oci/client.js';
import type { ImageReference } from './oci/reference.js';
import { keyId, readPublicKey } from './sign/keys.js';
import { verifyImage } from './sign/verify.js';

/**
 * The signature gate every hop that acts on an image puts in front of it (promote, smoke-boot,
 * build-disk, update-test, …). Fail closed: without a `public-key` the step refuses to run,
 * unless `allow-unsigned: true`, which is then a warning in the log and the job summary.
 *
 *   export const inputs = { ..., ...signatureGateInputs('the candidate must verify with it') };
 *   const inp = readInputs(io, inputs);
 *   const gate = await requireSignatureGate(inp, io, 'smoke-boot');   // before any side effect
 *   ...
 *   const signature = await gate.check(client, pinnedRef, io);         // summary cell
 */

/** A parsed public key input. */
export interface PublicKey {
  key: crypto.KeyObject;
  /** SPKI PEM. */
  pem: string;
  /** SHA-256 of the SPKI DER, hex. */
  fingerprint: string;
  /** Where it came from, for log lines: "inline PEM" or the path. */
  source: string;
}

const PUBLIC_KEY_EXPECTED = 'a cosign public key: PEM contents (-----BEGIN PUBLIC KEY-----) or the path of a .pub file';

/** Parses a public-key value: PEM contents, or a path (relative paths from the workspace, the step's cwd). */
export function parsePublicKeyInput(value: string): PublicKey {
  const v = value.trim();
  const { key, pem } = readPublicKey(v);
  return { key, pem, fingerprint: keyId(key).hex, source: v.includes('-----BEGIN') ? 'inline PEM' : v };
}

/**
 * The `public-key` input definition (sign, verify and every gated hop): empty → undefined, else
 * parsed at input time so a bad key fails before any side effect, naming the input.
 */
export function publicKeyInput(opts: { required?: boolean } = {}): InputDef<PublicKey | undefined> {
  return {
    schema: z.string().transform((v, ctx) => {
      if (v.trim() === '') return undefined;
      try {
        return parsePublicKeyInput(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: errorMessage(e) });
        return z.NEVER;
      }
    }),
    expected: PUBLIC_KEY_EXPECTED,
    required: opts.required,
    quiet: true,
  };
}

/** The two inputs of a gated hop (contract: actions-2.md). */
export const signatureGateInputs = {
  'public-key': publicKeyInput(),
  'allow-unsigned': bool(false),
};

export interface GateInputs {
  'public-key': PublicKey | undefined;
  'allow-unsigned': boolean;
}

export interface SignatureGate {
  /** The key images must verify with; undefined only when allow-unsigned let the step run without one. */
  readonly key: PublicKey | undefined;
  /**
   * Verifies `ref` (a digest reference) and returns a one-line description for the summary;
   * throws UserError when it does not verify. Without a key: says it was not checked.
   * `identity`: 'repository' = signedIdentity matchRepository (Keel's client policy); 'tags' =
   * containers/image's default matchRepoDigestOrExact for a pull by digest.
   */
  check(client: RegistryClient, ref: ImageReference, log: Logger, identity?: 'repository' | 'tags'): Promise<string>;
}

export const NOT_CHECKED = 'NOT checked (allow-unsigned: true, no public-key)';

/**
 * Applies the fail-closed rule at input-validation time: no key → InputError naming public-key,
 * unless allow-unsigned, which warns in the log and writes the warning to the job summary now
 * (so it is there even when the step fails later). `hop` names the step in that warning.
 */
export async function requireSignatureGate(
  inp: GateInputs,
  io: Pick<ActionIO, 'warning' | 'info' | 'summary'>,
  hop: string,
): Promise<SignatureGate> {
  const key = inp['public-key'];
  if (key) {
    io.info(`signature gate: public-key ${key.fingerprint.slice(0, 16)}… (${key.source})`);
    return { key, check: (client, ref, log, identity) => checkSignature(client, ref, key, identity, log) };
  }
  if (!inp['allow-unsigned']) {
    throw new InputError(
      'public-key',
      undefined,
      `it is required: ${hop} refuses to run without the cosign public key the image must verify with ` +
        '(set allow-unsigned: true to proceed without checking the signature)',
    );
  }
  const warning = `allow-unsigned is true and no public-key is given: ${hop} does NOT check the image's signature`;
  io.warning(warning);
  await io.summary(`> [!WARNING]\n> **${hop}**: ${warning}.\n\n`);
  return {
    key: undefined,
    check: async (_client, ref, log) => {
      log.warning(`signature of ${ref.toString()} not checked (allow-unsigned)`);
      return NOT_CHECKED;
    },
  };
}

/**
 * Refuses `ref` unless its signature verifies with `publicKey`, using the shared verifier of the
 * sign hop (containers/image's sigstoreSigned rules, the ones bootc/rpm-ostree/podman enforce;
 * an index and every child manifest must verify). Returns what was accepted, for the summary.
 */
export async function checkSignature(
  client: RegistryClient,
  ref: ImageReference,
  publicKey: PublicKey | string,
  identity: 'repository' | 'tags' = 'repository',
  log: Logger,
): Promise<string> {
  let key: PublicKey;
  try {
    key = typeof publicKey === 'string' ? parsePublicKeyInput(publicKey) : publicKey;
  } catch (e) {
    throw new InputError('public-key', undefined, errorMessage(e));
  }
  const r = await verifyImage(client, ref, key.key, {
    identity: identity === 'tags' ? { type: 'matchRepoDigestOrExact' } : { type: 'matchRepository' },
    log,
  });
  if (!r.verified)
    throw new UserError(`refusing ${ref.toString()}: its signature does not verify with public-key: ${r.reason}`);
  log.info(`signature of ${ref.toString()} verified: ${r.reason}`);
  return `verified (${r.reason})`;
}
