import crypto from 'node:crypto';
import { withFailureSummary } from '../../lib/action.js';
import { errorMessage, InputError, UserError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { digestRef, list, oneOf, readInputs, registryInputs, secret, str } from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import { renderClientConfig } from '../../lib/sign/client-config.js';
import { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL } from '../../lib/sign/sigstore-urls.js';
import {
  decryptPrivateKey,
  KeyFormatError,
  keyId,
  readPublicKey,
  samePublicKey,
  spkiPem,
  WrongPasswordError,
} from '../../lib/sign/keys.js';
import { code, fence, section, table } from '../../lib/summary.js';
import { signImage, tagItemProblem, tagsOf, verifyWritten, type Target, type Written } from './sign.js';

/**
 * sign: cosign-compatible signatures that bootc/rpm-ostree/podman clients enforce.
 * NOTE on names: the contract gives `password` to the private key (cosign's COSIGN_PASSWORD);
 * the registry password of the shared registry inputs is therefore `registry-password` here.
 */

export const inputs = {
  'image-ref': digestRef('a signature is bound to one manifest digest: pass the image-ref output of push, never a tag'),
  'private-key': secret(),
  password: secret(),
  mode: oneOf(['auto', 'key', 'keyless', 'both'] as const, 'auto'),
  identity: oneOf(['repository', 'tags'] as const, 'repository'),
  tags: list({
    item: (s) => tagItemProblem(s),
    expected: 'newline-separated tags (or registry/repo:tag of the same repository)',
  }),
  format: oneOf(['legacy', 'bundle', 'both'] as const, 'legacy'),
  'public-key': str({ expected: 'a public key: PEM contents (-----BEGIN PUBLIC KEY-----) or the path of a .pub file' }),
  'fulcio-url': str({ default: DEFAULT_FULCIO_URL, expected: 'an https URL', pattern: /^https?:\/\/\S+$/ }),
  'rekor-url': str({ default: DEFAULT_REKOR_URL, expected: 'an https URL', pattern: /^https?:\/\/\S+$/ }),
  username: registryInputs.username,
  'registry-password': secret(),
  'tls-verify': registryInputs['tls-verify'],
};

interface SignState {
  ref: string;
  written: Written[];
  targets: Target[];
  verified: boolean;
  verifyReason: string;
  fingerprint: string;
  clientSection: string;
}

export async function run(io: ActionIO): Promise<void> {
  const state: SignState = {
    ref: '',
    written: [],
    targets: [],
    verified: false,
    verifyReason: '',
    fingerprint: '',
    clientSection: '',
  };
  const started = Date.now();
  await withFailureSummary(
    () => sign(io, state),
    async (failure) => {
      io.setOutput('signature-refs', [...new Set(state.written.map((w) => w.ref))].join('\n'));
      io.setOutput('verified', String(state.verified));
      io.setOutput('signed-digests', state.targets.map((t) => t.digest).join('\n'));
      io.setOutput('key-fingerprint', state.fingerprint);
      await io.summary(summary(state, failure, Date.now() - started));
    },
  );
}

/** What the validated inputs ask for: no side effect happens before this is complete. */
interface SignPlan {
  inp: ReturnType<typeof readInputs<typeof inputs>>;
  mode: 'key' | 'keyless' | 'both';
  tags: string[];
  identities: string[];
  key?: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject };
  verifyKey?: crypto.KeyObject;
}

async function sign(io: ActionIO, state: SignState): Promise<void> {
  const plan = await planSigning(io, state);
  const { inp, mode, key } = plan;
  const image = inp['image-ref'];
  const client = connect(
    image,
    { username: inp.username, password: inp['registry-password'], 'tls-verify': inp['tls-verify'] },
    io,
  );
  // @sigstore/sign is loaded only for keyless signing.
  const keyless =
    mode === 'keyless' || mode === 'both'
      ? new (await import('../../lib/sign/keyless.js')).KeylessSigner({
          fulcioURL: inp['fulcio-url'],
          rekorURL: inp['rekor-url'],
        })
      : undefined;
  const res = await io.group('sign', () =>
    signImage(
      client,
      {
        ref: image,
        identities: plan.identities,
        legacy: inp.format !== 'bundle',
        bundle: inp.format !== 'legacy',
        key,
        keyless,
      },
      io,
    ),
  );
  state.targets = res.targets;
  state.written = res.written;
  for (const w of res.written) {
    io.info(
      `${w.mode} ${w.format} ${w.digest}: ${w.added ? `added ${w.added}` : 'already signed'}${w.skipped && w.added ? `, ${w.skipped} already present` : ''} → ${w.ref}`,
    );
  }
  const check = await io.group('read back and verify', () =>
    verifyWritten(client, image, res.targets, {
      key: plan.verifyKey ?? key?.publicKey,
      keyName: plan.verifyKey ? 'public-key' : "the private key's public half",
      tags: inp.identity === 'tags' ? plan.tags : undefined,
      format: inp.format,
      keyless,
      log: io,
    }),
  );
  state.verified = check.ok;
  state.verifyReason = check.reason;
  if (!check.ok) throw new UserError(`the signatures just written do not verify: ${state.verifyReason}`);
  io.info(`verified: ${state.verifyReason}`);
  if (key) state.clientSection = clientConfigSection(image, key.publicKey);
}

/** Reads and checks every input (keys decrypted, identities formed); throws InputError on the first problem. */
async function planSigning(io: ActionIO, state: SignState): Promise<SignPlan> {
  const inp = readInputs(io, inputs);
  // The runner masks log lines one by one: also mask each line of the (multi-line) key.
  for (const line of inp['private-key'].split(/\r?\n/))
    if (line.trim() && !line.startsWith('-----')) io.setSecret(line.trim());
  const image = inp['image-ref'];
  state.ref = image.toString();
  const mode = inp.mode === 'auto' ? (inp['private-key'] ? 'key' : 'keyless') : inp.mode;
  const useKey = mode === 'key' || mode === 'both';
  if (useKey && !inp['private-key']) {
    throw new InputError(
      'private-key',
      undefined,
      `mode '${mode}' needs the cosign private key (contents of cosign.key)`,
    );
  }
  const tags = tagsOf(inp.tags, image.name);
  if (inp.identity === 'tags' && tags.length === 0) {
    throw new InputError(
      'tags',
      '',
      "identity 'tags' signs one identity per tag: give the tags (e.g. the tags output of push)",
    );
  }
  const identities = inp.identity === 'tags' ? tags.map((t) => `${image.name}:${t}`) : [image.name];
  const key = useKey ? await decryptKey(inp['private-key'], inp.password) : undefined;
  if (key) state.fingerprint = keyId(key.publicKey).hex;
  const verifyKey = readVerifyKey(inp['public-key'], mode, key?.publicKey, state.fingerprint);
  if (mode !== 'key' && !key) {
    io.warning(
      'keyless only: containers/image (bootc, rpm-ostree, podman) cannot enforce GitHub keyless identities; clients need a key-based signature (mode: key or both)',
    );
  }
  if (inp.format === 'bundle') {
    io.warning(
      "format 'bundle' only: containers/image (bootc, rpm-ostree, podman) reads only the legacy .sig format; clients will find no signature",
    );
  }
  return { inp, mode, tags, identities, key, verifyKey };
}

async function decryptKey(
  privatePem: string,
  password: string,
): Promise<{ privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }> {
  let privateKey: crypto.KeyObject;
  try {
    privateKey = await decryptPrivateKey(privatePem, password);
  } catch (e) {
    if (e instanceof WrongPasswordError) {
      throw new InputError(
        'password',
        undefined,
        "it does not decrypt 'private-key' (wrong password: this is the key's password, COSIGN_PASSWORD; the registry password goes in 'registry-password')",
      );
    }
    if (e instanceof KeyFormatError) throw new InputError('private-key', undefined, e.message);
    throw e;
  }
  return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
}

/** The `public-key` input: only with a key-based mode, and it must be the private key's public half. */
function readVerifyKey(
  value: string,
  mode: SignPlan['mode'],
  publicHalf: crypto.KeyObject | undefined,
  fingerprint: string,
): crypto.KeyObject | undefined {
  if (!value) return undefined;
  if (!publicHalf) {
    throw new InputError(
      'public-key',
      undefined,
      `mode '${mode}' writes no key-based signature to verify with it (give private-key, or mode: key/both)`,
    );
  }
  let verifyKey: crypto.KeyObject;
  try {
    verifyKey = readPublicKey(value).key;
  } catch (e) {
    throw new InputError('public-key', undefined, errorMessage(e));
  }
  if (!samePublicKey(publicHalf, verifyKey)) {
    throw new InputError(
      'public-key',
      undefined,
      `it is not the public half of 'private-key' (fingerprints ${keyId(verifyKey).hex.slice(0, 16)}… vs ${fingerprint.slice(0, 16)}…)`,
    );
  }
  return verifyKey;
}

/** The client files (policy.json entry, registries.d, key path) for the summary. */
function clientConfigSection(image: SignPlan['inp']['image-ref'], publicKey: crypto.KeyObject): string {
  const cfg = renderClientConfig({ image, publicKeyPem: spkiPem(publicKey) });
  return section(
    'Client configuration',
    `policy.json entry:\n\n${fence(JSON.stringify({ transports: { docker: cfg.policyEntry } }, null, 2), 'json')}\n` +
      `${cfg.registriesDPath}:\n\n${fence(cfg.registriesD, 'yaml')}\n${cfg.keyPath}:\n\n${fence(spkiPem(publicKey).trim())}`,
  );
}

function summary(state: SignState, failure: string | undefined, ms: number): string {
  const rows = state.written.map((w) => [
    w.digest,
    w.format,
    w.mode,
    w.added ? `added ${w.added}` : 'already present',
    code(w.ref),
  ]);
  return (
    `### sign\n\n${state.ref ? `Image ${code(state.ref)}\n\n` : ''}` +
    (rows.length ? table(['digest', 'format', 'mode', 'result', 'signature'], rows) : '') +
    `\nverified: **${state.verified}**${state.verifyReason ? ` (${state.verifyReason})` : ''}` +
    `${state.fingerprint ? `, key ${code(state.fingerprint.slice(0, 16))}` : ''}, ${ms} ms\n` +
    (failure ? `\n**Failed:** ${failure}\n` : '') +
    (state.clientSection ? `\n${state.clientSection}` : '')
  );
}
