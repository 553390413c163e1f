import { withFailureSummary } from '../../lib/action.js';
import { InputError, UserError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { bool, digestRef, list, oneOf, readInputs, registryInputs } from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import type { SignedIdentity } from '../../lib/sign/identity.js';
import { publicKeyInput } from '../../lib/signature-gate.js';
import { predicateTypeOf, verifyAttestations, type AttestationVerification } from '../../lib/sign/attestation.js';
import { verifyImage, type VerifyResult } from '../../lib/sign/verify.js';
import { code, table } from '../../lib/summary.js';
import { tagProblem } from '../../lib/tags.js';

/**
 * verify: checks an image's signatures with a public key by containers/image's rules (what a
 * bootc/rpm-ostree/podman client with Keel's policy enforces). Fails the step when not verified
 * (verified=false and reason are still set); `fail-on-unverified: false` only reports.
 */
export const inputs = {
  'image-ref': digestRef('verification is of one manifest digest: pass repo@sha256:…'),
  'public-key': publicKeyInput({ required: true }),
  identity: oneOf(['repository', 'tags', 'digest'] as const, 'repository'),
  tags: list({ item: (s) => tagProblem(s), expected: 'newline-separated tags' }),
  format: oneOf(['legacy', 'bundle', 'both'] as const, 'legacy'),
  recursive: bool(true),
  'fail-on-unverified': bool(true),
  'attestation-types': list({
    item: (t) =>
      predicateTypeOf(t)
        ? undefined
        : 'expected cyclonedx, spdxjson, slsaprovenance1 (or another cosign --type) or a predicate-type URI',
    expected: 'newline-separated attestation types',
  }),
  ...registryInputs,
};

export async function run(io: ActionIO): Promise<void> {
  const state: VerifyState = { ref: '' };
  const started = Date.now();
  await withFailureSummary(
    () => verify(io, state),
    async (failure) => {
      io.setOutput('verified', String(state.result?.verified ?? false));
      io.setOutput('reason', state.result?.reason ?? failure ?? '');
      io.setOutput('details', JSON.stringify(state.result?.details ?? []));
      io.setOutput('attestations', JSON.stringify(state.attested?.types ?? []));
      await io.summary(summary(state, failure, Date.now() - started));
    },
  );
}

interface VerifyState {
  ref: string;
  result?: VerifyResult;
  attested?: AttestationVerification;
}

async function verify(io: ActionIO, state: VerifyState): Promise<void> {
  const inp = readInputs(io, inputs);
  const image = inp['image-ref'];
  state.ref = image.toString();
  const publicKey = inp['public-key']!;
  const key = publicKey.key;
  if (inp.identity === 'tags' && inp.tags.length === 0) {
    throw new InputError('tags', '', "identity 'tags' checks the identity for each tag a client pulls: give the tags");
  }
  const client = connect(image, inp, io);
  const common = { format: inp.format, recursive: inp.recursive, log: io };
  const digestRule: SignedIdentity = { type: 'matchRepoDigestOrExact' };
  let result = await io.group('verify the signatures', async () => {
    if (inp.identity !== 'tags') {
      return verifyImage(client, image, key, {
        ...common,
        identity: inp.identity === 'digest' ? digestRule : undefined,
      });
    }
    // One verification per tag, as a client pulling repo:<tag> with the default policy does.
    const per: { tag: string; r: VerifyResult }[] = [];
    for (const tag of inp.tags) {
      const r = await verifyImage(client, image, key, { ...common, identity: digestRule, tag });
      per.push({ tag, r });
      if (!r.verified) break;
    }
    const bad = per.find((p) => !p.r.verified);
    return bad
      ? { ...bad.r, reason: `pulled as :${bad.tag}: ${bad.r.reason}` }
      : { verified: true, reason: per.map((p) => `:${p.tag}: ${p.r.reason}`).join('; '), details: per[0]!.r.details };
  });
  if (inp['attestation-types'].length) {
    const attested = await io.group('verify the attestations', () =>
      verifyAttestations(client, image, key, inp['attestation-types']),
    );
    state.attested = attested;
    io.info(`attestations: ${attested.verified ? 'verified' : 'NOT verified'}: ${attested.reason}`);
    if (!attested.verified && result.verified)
      result = { ...result, verified: false, reason: `attestation ${attested.reason}` };
  }
  state.result = result;
  io.info(
    `${state.ref}: ${result.verified ? 'verified' : 'NOT verified'} with key ${publicKey.fingerprint.slice(0, 16)}…: ${result.reason}`,
  );
  if (!result.verified) {
    const msg = `${state.ref} is not verified: ${result.reason}`;
    if (inp['fail-on-unverified']) throw new UserError(msg);
    io.warning(msg);
  }
}

function summary(state: VerifyState, failure: string | undefined, ms: number): string {
  const result = state.result;
  const rows = (result?.details ?? []).map((d) => [
    code(d.digest),
    d.platform ?? (d.digest === result?.details[0]?.digest ? 'image' : ''),
    d.verified ? 'verified' : 'NOT verified',
    d.reason,
  ]);
  const attRows = (state.attested?.types ?? []).map((t) => [
    t.type,
    t.verified ? 'verified' : 'NOT verified',
    t.reason,
  ]);
  return (
    `### verify\n\n${state.ref ? `Image ${code(state.ref)}\n\n` : ''}` +
    (rows.length ? table(['digest', 'platform', 'result', 'reason'], rows) : '') +
    (attRows.length ? `\nAttestations:\n\n${table(['type', 'result', 'reason'], attRows)}` : '') +
    `\nverified: **${result?.verified ?? false}**, ${ms} ms\n` +
    (failure ? `\n**Failed:** ${failure}\n` : '')
  );
}
