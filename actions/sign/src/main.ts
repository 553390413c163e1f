import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, InputError, UserError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import {
  bool,
  existingPath,
  httpsUrl,
  list,
  oneOf,
  optionalDigestRef,
  readInputs,
  registryInputs,
  secret,
} from '../../lib/inputs.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import type { ImageReference } from '../../lib/oci/reference.js';
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
import {
  attestationLineProblem,
  attestImage,
  imageLabels,
  readAttestationFiles,
  sha256OfFile,
  type AttestationFile,
} from './attest.js';
import { signFiles, type SignedFile } from './files.js';
import { SLSA_PROVENANCE_V1, slsaProvenance } from './provenance.js';
import {
  signImage,
  tagItemProblem,
  tagsOf,
  verifyWritten,
  type KeyMaterial,
  type Target,
  type Written,
} from './sign.js';

/**
 * sign: cosign-compatible signatures that bootc/rpm-ostree/podman clients enforce.
 * NOTE on names: the contract gives `password` to the private key (cosign's COSIGN_PASSWORD);
 * the registry password of the shared registry inputs is therefore `registry-password` here.
 */

export const inputs = {
  'image-ref': optionalDigestRef(
    'a signature is bound to one manifest digest: pass the image-ref output of push, never a tag',
  ),
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
  attestations: list({
    item: attestationLineProblem,
    expected: 'newline-separated TYPE=PATH lines (TYPE: cyclonedx, spdxjson, slsaprovenance1 or a predicate-type URI)',
  }),
  provenance: bool(false),
  containerfile: existingPath('file'),
  files: list({
    item: (p) => (fileProblem(p) ? fileProblem(p) : undefined),
    expected: 'newline-separated paths of existing files',
  }),
  username: registryInputs.username,
  'registry-password': secret(),
  'tls-verify': registryInputs['tls-verify'],
  'insecure-registries': registryInputs['insecure-registries'],
};

function fileProblem(p: string): string | undefined {
  try {
    return fs.statSync(p).isFile() ? undefined : 'is not a regular file';
  } catch {
    return 'does not exist';
  }
}

type Inputs = ReturnType<typeof readInputs<typeof inputs>>;

/** Everything `run` needs, checked before the first side effect. */
interface Plan {
  image?: ImageReference;
  mode: 'key' | 'keyless' | 'both';
  identities: string[];
  tags: string[];
  key?: KeyMaterial;
  /** The key signatures are verified with: public-key, else the private key's own half. */
  verifyKey?: crypto.KeyObject;
  attestations: AttestationFile[];
}

interface State {
  written: Written[];
  targets: Target[];
  verified: boolean;
  verifyReason: string;
  fingerprint: string;
  attestationRefs: string[];
  attested: { type: string; result: string }[];
  files: SignedFile[];
  clientSection: string;
}

async function decryptKey(inp: Inputs): Promise<KeyMaterial> {
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
  return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
}

/** Validation: every input problem is reported here, before anything is written. */
async function prepare(inp: Inputs, io: ActionIO, state: State): Promise<Plan> {
  const image = inp['image-ref'];
  const mode = inp.mode === 'auto' ? (inp['private-key'] ? 'key' : 'keyless') : inp.mode;
  const useKey = mode === 'key' || mode === 'both';
  if (!image && (inp.attestations.length || inp.provenance))
    throw new InputError(
      'image-ref',
      '',
      'attestations and provenance are statements about an image digest: give image-ref',
    );
  if (!image && !inp.files.length)
    throw new InputError('image-ref', '', 'it is required unless files are given: pass the image-ref output of push');
  if (useKey && !inp['private-key'])
    throw new InputError(
      'private-key',
      undefined,
      `mode '${mode}' needs the cosign private key (contents of cosign.key)`,
    );
  if (!useKey && (inp.attestations.length || inp.provenance || inp.files.length)) {
    const what = inp.files.length ? 'files' : inp.attestations.length ? 'attestations' : 'provenance';
    throw new InputError(what, undefined, `${what} are signed with the key: give private-key (mode key or both)`);
  }
  const tags = image ? tagsOf(inp.tags, image.name) : [];
  if (image && inp.identity === 'tags' && tags.length === 0) {
    throw new InputError(
      'tags',
      '',
      "identity 'tags' signs one identity per tag: give the tags (e.g. the tags output of push)",
    );
  }
  const identities = !image ? [] : inp.identity === 'tags' ? tags.map((t) => `${image.name}:${t}`) : [image.name];
  const key = useKey ? await decryptKey(inp) : undefined;
  if (key) state.fingerprint = keyId(key.publicKey).hex;
  if (inp['public-key'] && !useKey) {
    throw new InputError(
      'public-key',
      undefined,
      `mode '${mode}' writes no key-based signature to verify with it (give private-key, or mode: key/both)`,
    );
  }
  let verifyKey: crypto.KeyObject | undefined;
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
  const attestations = readAttestationFiles(inp.attestations, io.context.workspace);
  if (image && !key) {
    io.warning(
      'keyless only: containers/image (bootc, rpm-ostree, podman) cannot enforce GitHub keyless identities; clients need a key-based signature (mode: key or both)',
    );
  }
  if (image && inp.format === 'bundle') {
    io.warning(
      "format 'bundle' only: containers/image (bootc, rpm-ostree, podman) reads only the legacy .sig format; clients will find no signature",
    );
  }
  return { image, mode, identities, tags, key, verifyKey: verifyKey ?? key?.publicKey, attestations };
}

/** Signs the image (and an index's children) and reads the signatures back. */
async function signTheImage(inp: Inputs, plan: Plan, client: RegistryClient, io: ActionIO, state: State) {
  const image = plan.image!;
  const useKeyless = plan.mode === 'keyless' || plan.mode === 'both';
  // @sigstore/sign is loaded only for keyless signing.
  const keyless = useKeyless
    ? new (await import('../../lib/sign/keyless.js')).KeylessSigner({
        fulcioURL: inp['fulcio-url'],
        rekorURL: inp['rekor-url'],
      })
    : undefined;
  const legacy = inp.format !== 'bundle';
  const bundle = inp.format !== 'legacy';
  const res = await io.group('sign', () =>
    signImage(client, { ref: image, identities: plan.identities, legacy, bundle, key: plan.key, keyless }, io),
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
      key: plan.verifyKey,
      keyName: inp['public-key'] ? 'public-key' : "the private key's public half",
      tags: inp.identity === 'tags' ? plan.tags : undefined,
      format: inp.format,
      keyless,
      log: io,
    }),
  );
  state.verifyReason = check.reason;
  if (!check.ok) throw new UserError(`the signatures just written do not verify: ${check.reason}`);
  io.info(`verified: ${check.reason}`);
  if (plan.key) {
    const cfg = renderClientConfig({ image, publicKeyPem: spkiPem(plan.key.publicKey) });
    state.clientSection = section(
      'Client configuration',
      `policy.json entry:\n\n${fence(JSON.stringify({ transports: { docker: cfg.policyEntry } }, null, 2), 'json')}\n` +
        `${cfg.registriesDPath}:\n\n${fence(cfg.registriesD, 'yaml')}\n${cfg.keyPath}:\n\n${fence(spkiPem(plan.key.publicKey).trim())}`,
    );
  }
}

/** Attestations (and SLSA provenance) about the image digest, under sha256-<hex>.att. */
async function attestTheImage(inp: Inputs, plan: Plan, client: RegistryClient, io: ActionIO, state: State) {
  const image = plan.image!;
  const predicates: { type: string; predicateType: string; predicate: unknown }[] = [...plan.attestations];
  if (inp.provenance) {
    const containerfile = inp.containerfile
      ? {
          path: path.relative(io.context.workspace, path.resolve(io.context.workspace, inp.containerfile)),
          sha256: sha256OfFile(inp.containerfile),
        }
      : undefined;
    const labels = await imageLabels(client, image);
    predicates.push({
      type: 'slsaprovenance1',
      predicateType: SLSA_PROVENANCE_V1,
      predicate: slsaProvenance({ context: io.context, labels, containerfile }),
    });
  }
  if (!predicates.length) return;
  const r = await io.group('attest', () => attestImage(client, image, predicates, plan.key!, plan.verifyKey!, io));
  state.attestationRefs.push(r.ref);
  state.attested.push(
    ...r.verification.types.map((t) => ({ type: t.type, result: t.verified ? 'verified' : t.reason })),
  );
  io.info(`attestations → ${r.ref}: ${r.added} added, ${r.skipped} already present; ${r.verification.reason}`);
  if (!r.verification.verified)
    throw new UserError(`the attestations just written do not verify: ${r.verification.reason}`);
}

export async function run(io: ActionIO): Promise<void> {
  const state: State = {
    written: [],
    targets: [],
    verified: false,
    verifyReason: '',
    fingerprint: '',
    attestationRefs: [],
    attested: [],
    files: [],
    clientSection: '',
  };
  const started = Date.now();
  let ref = '';
  let failure: string | undefined;
  try {
    const inp = readInputs(io, inputs);
    // The runner masks log lines one by one: also mask each line of the (multi-line) key.
    for (const line of inp['private-key'].split(/\r?\n/))
      if (line.trim() && !line.startsWith('-----')) io.setSecret(line.trim());
    ref = inp['image-ref']?.toString() ?? '';
    const plan = await prepare(inp, io, state);

    // ---- side effects start here
    if (plan.image) {
      const client = connect(
        plan.image,
        {
          username: inp.username,
          password: inp['registry-password'],
          'tls-verify': inp['tls-verify'],
          'insecure-registries': inp['insecure-registries'],
        },
        io,
      );
      await signTheImage(inp, plan, client, io, state);
      await attestTheImage(inp, plan, client, io, state);
    }
    if (inp.files.length) {
      state.files = await signFiles(inp.files, plan.key!, plan.verifyKey!, io);
      const bad = state.files.find((f) => !f.verified);
      if (bad) throw new UserError(`the signature just written for ${bad.file} does not verify`);
    }
    state.verified = true;
  } catch (e) {
    failure = errorMessage(e);
    throw e;
  } finally {
    await report(io, state, ref, failure, started);
  }
}

async function report(io: ActionIO, state: State, ref: string, failure: string | undefined, started: number) {
  const refs = [...new Set(state.written.map((w) => w.ref))];
  io.setOutput('signature-refs', refs.join('\n'));
  io.setOutput('verified', String(state.verified));
  io.setOutput('signed-digests', state.targets.map((t) => t.digest).join('\n'));
  io.setOutput('key-fingerprint', state.fingerprint);
  io.setOutput('attestation-refs', state.attestationRefs.join('\n'));
  io.setOutput('file-signatures', state.files.map((f) => f.signature).join('\n'));
  const rows = state.written.map((w) => [
    w.digest,
    w.format,
    w.mode,
    w.added ? `added ${w.added}` : 'already present',
    code(w.ref),
  ]);
  const attRows = state.attested.map((a) => [a.type, a.result]);
  const fileRows = state.files.map((f) => [code(f.file), code(f.signature), f.verified ? 'verified' : 'NOT verified']);
  await io.summary(
    `### sign\n\n${ref ? `Image ${code(ref)}\n\n` : ''}` +
      (rows.length ? table(['digest', 'format', 'mode', 'result', 'signature'], rows) : '') +
      (attRows.length
        ? `\nAttestations (${state.attestationRefs.map(code).join(', ')}):\n\n${table(['type', 'result'], attRows)}`
        : '') +
      (fileRows.length ? `\nFiles:\n\n${table(['file', 'signature', 'result'], fileRows)}` : '') +
      `\nverified: **${state.verified}**${state.verifyReason ? ` (${state.verifyReason})` : ''}` +
      `${state.fingerprint ? `, key ${code(state.fingerprint.slice(0, 16))}` : ''}, ${Date.now() - started} ms\n` +
      (failure ? `\n**Failed:** ${failure}\n` : '') +
      (state.clientSection ? `\n${state.clientSection}` : ''),
  );
}
