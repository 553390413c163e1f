import crypto from 'node:crypto';
import { errorMessage, InputError, UserError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { digestRef, httpsUrl, list, oneOf, readInputs, registryInputs, secret } from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import { publicKeyInput } from '../../lib/signature-gate.js';
import { renderClientConfig } from '../../lib/sign/client-config.js';
import { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL } from '../../lib/sign/sigstore-urls.js';
import {
  decryptPrivateKey,
  KeyFormatError,
  keyId,
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
  'public-key': publicKeyInput(),
  'fulcio-url': httpsUrl({ default: DEFAULT_FULCIO_URL, expected: 'the https URL of a Fulcio instance' }),
  'rekor-url': httpsUrl({ default: DEFAULT_REKOR_URL, expected: 'the https URL of a Rekor instance' }),
  username: registryInputs.username,
  'registry-password': secret(),
  'tls-verify': registryInputs['tls-verify'],
  'insecure-registries': registryInputs['insecure-registries'],
};

export async function run(io: ActionIO): Promise<void> {
  const state: { written: Written[]; targets: Target[]; verified: boolean; verifyReason: string; fingerprint: string } =
    {
      written: [],
      targets: [],
      verified: false,
      verifyReason: '',
      fingerprint: '',
    };
  const started = Date.now();
  let ref = '';
  let failure: string | undefined;
  let clientSection = '';
  try {
    const inp = readInputs(io, inputs);
    // The runner masks log lines one by one: also mask each line of the (multi-line) key.
    for (const line of inp['private-key'].split(/\r?\n/))
      if (line.trim() && !line.startsWith('-----')) io.setSecret(line.trim());
    ref = inp['image-ref'].toString();
    const image = inp['image-ref'];

    // ---- everything below up to `connect` is validation: no side effect before it passes
    const mode = inp.mode === 'auto' ? (inp['private-key'] ? 'key' : 'keyless') : inp.mode;
    const useKey = mode === 'key' || mode === 'both';
    const useKeyless = mode === 'keyless' || mode === 'both';
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
    let key: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject } | undefined;
    if (useKey) {
      let privateKey: crypto.KeyObject;
      try {
        privateKey = await decryptPrivateKey(inp['private-key'], inp.password);
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
      key = { privateKey, publicKey: crypto.createPublicKey(privateKey) };
      state.fingerprint = keyId(key.publicKey).hex;
    }
    let verifyKey: crypto.KeyObject | undefined;
    if (inp['public-key'] && !useKey) {
      throw new InputError(
        'public-key',
        undefined,
        `mode '${mode}' writes no key-based signature to verify with it (give private-key, or mode: key/both)`,
      );
    }
    if (inp['public-key']) {
      verifyKey = inp['public-key'].key;
      if (key && !samePublicKey(key.publicKey, verifyKey)) {
        throw new InputError(
          'public-key',
          undefined,
          `it is not the public half of 'private-key' (fingerprints ${keyId(verifyKey).hex.slice(0, 16)}… vs ${state.fingerprint.slice(0, 16)}…)`,
        );
      }
    }
    if (useKeyless && !key) {
      io.warning(
        'keyless only: containers/image (bootc, rpm-ostree, podman) cannot enforce GitHub keyless identities; clients need a key-based signature (mode: key or both)',
      );
    }
    if (inp.format === 'bundle') {
      io.warning(
        "format 'bundle' only: containers/image (bootc, rpm-ostree, podman) reads only the legacy .sig format; clients will find no signature",
      );
    }

    // ---- side effects start here
    const client = connect(
      image,
      {
        username: inp.username,
        password: inp['registry-password'],
        'tls-verify': inp['tls-verify'],
        'insecure-registries': inp['insecure-registries'],
      },
      io,
    );
    // @sigstore/sign is loaded only for keyless signing.
    const keyless = useKeyless
      ? new (await import('../../lib/sign/keyless.js')).KeylessSigner({
          fulcioURL: inp['fulcio-url'],
          rekorURL: inp['rekor-url'],
        })
      : undefined;
    const legacy = inp.format !== 'bundle';
    const bundle = inp.format !== 'legacy';
    const res = await signImage(client, { ref: image, identities, legacy, bundle, key, keyless }, io);
    state.targets = res.targets;
    state.written = res.written;
    for (const w of res.written) {
      io.info(
        `${w.mode} ${w.format} ${w.digest}: ${w.added ? `added ${w.added}` : 'already signed'}${w.skipped && w.added ? `, ${w.skipped} already present` : ''} → ${w.ref}`,
      );
    }

    // ---- read back and verify
    const check = await verifyWritten(client, image, res.targets, {
      key: verifyKey ?? key?.publicKey,
      keyName: verifyKey ? 'public-key' : "the private key's public half",
      tags: inp.identity === 'tags' ? tags : undefined,
      format: inp.format,
      keyless,
      log: io,
    });
    state.verified = check.ok;
    state.verifyReason = check.reason;
    if (!check.ok) throw new UserError(`the signatures just written do not verify: ${state.verifyReason}`);
    io.info(`verified: ${state.verifyReason}`);
    if (key) {
      const cfg = renderClientConfig({ image, publicKeyPem: spkiPem(key.publicKey) });
      clientSection = section(
        'Client configuration',
        `policy.json entry:\n\n${fence(JSON.stringify({ transports: { docker: cfg.policyEntry } }, null, 2), 'json')}\n` +
          `${cfg.registriesDPath}:\n\n${fence(cfg.registriesD, 'yaml')}\n${cfg.keyPath}:\n\n${fence(spkiPem(key.publicKey).trim())}`,
      );
    }
  } catch (e) {
    failure = errorMessage(e);
    throw e;
  } finally {
    const refs = [...new Set(state.written.map((w) => w.ref))];
    io.setOutput('signature-refs', refs.join('\n'));
    io.setOutput('verified', String(state.verified));
    io.setOutput('signed-digests', state.targets.map((t) => t.digest).join('\n'));
    io.setOutput('key-fingerprint', state.fingerprint);
    const rows = state.written.map((w) => [
      w.digest,
      w.format,
      w.mode,
      w.added ? `added ${w.added}` : 'already present',
      code(w.ref),
    ]);
    await io.summary(
      `### sign\n\n${ref ? `Image ${code(ref)}\n\n` : ''}` +
        (rows.length ? table(['digest', 'format', 'mode', 'result', 'signature'], rows) : '') +
        `\nverified: **${state.verified}**${state.verifyReason ? ` (${state.verifyReason})` : ''}` +
        `${state.fingerprint ? `, key ${code(state.fingerprint.slice(0, 16))}` : ''}, ${Date.now() - started} ms\n` +
        (failure ? `\n**Failed:** ${failure}\n` : '') +
        (clientSection ? `\n${clientSection}` : ''),
    );
  }
}
