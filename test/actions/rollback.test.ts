// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import { silentLogger } from '../../actions/lib/log.js';
import type { RegistryClient } from '../../actions/lib/oci/client.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { signImage } from '../../actions/sign/src/sign.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { makeOciImage, sh, skopeoDigest, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * Rollback is resolve(stable.<date>) → promote(tags: stable, require-tag: stable.<date>, public-key):
 * the bundles the rollback workflow will run, against a real registry. stable goes back to the
 * dated digest, its signature verified first; no other tag moves; the summary shows from → to.
 */
describe('rollback = resolve + promote (bundled, real registry)', () => {
  let reg: Registry;
  let client: RegistryClient;
  let repo: string;
  const key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const other = crypto
    .generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();

  beforeAll(async () => {
    reg = await startRegistry();
    repo = `${reg.host}/distro/os`;
    client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
  });
  afterAll(() => reg.stop());

  const push = (tags: string[]) => {
    const img = makeOciImage(tmpdir());
    const digest = skopeoPush(`oci:${img.dir}:latest`, `${repo}:${tags[0]}`);
    for (const t of tags.slice(1)) skopeoPush(`oci:${img.dir}:latest`, `${repo}:${t}`);
    return digest;
  };
  const sign = (digest: string) =>
    signImage(
      client,
      { ref: parseReference(`${repo}@${digest}`), identities: [repo], legacy: true, bundle: false, key },
      silentLogger,
    );
  /** Every tag of the repository with the digest it points at. */
  const snapshot = () => {
    const tags = (
      JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${repo}`])).Tags as string[]
    ).sort();
    return Object.fromEntries(tags.map((t) => [t, skopeoDigest(`${repo}:${t}`)]));
  };
  async function rollback(date: string, publicKey: string) {
    const resolved = await runAction({
      action: 'resolve',
      inputs: { image: `${repo}:stable.${date}`, 'tls-verify': 'false' },
    });
    expect(errors(resolved)).toEqual([]);
    return runAction({
      action: 'promote',
      inputs: {
        'image-ref': resolved.outputs['image-ref']!,
        tags: 'stable',
        'require-tag': `stable.${date}`,
        'public-key': publicKey,
        'tls-verify': 'false',
      },
    });
  }

  it('points stable back at stable.<old date>, verified, moving nothing else, and says from → to', async () => {
    const old = push(['stable.20260101', '20260101']);
    await sign(old);
    const current = push(['stable', 'stable.20260301', '20260301', 'candidate', 'candidate.20260301']);
    await sign(current);
    const before = snapshot();

    const r = await rollback('20260101', pub);
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ tags: 'stable', digest: old });
    const after = snapshot();
    expect(after).toEqual({ ...before, stable: old });
    expect(r.summary).toContain(`- \`stable\`: \`${current}\` → \`${old}\``);
    expect(r.summary).toMatch(/verified \(/);

    // Rolling forward again is the same two steps; a second identical rollback writes nothing.
    const again = await rollback('20260101', pub);
    expect(errors(again)).toEqual([]);
    expect(again.stdout).toMatch(/all promotion tags already point at .*nothing written/);
    expect(snapshot()).toEqual(after);
  });

  it('refuses a dated stable whose signature does not verify, leaving stable where it was', async () => {
    const unsigned = push(['stable.20260201']);
    const stableBefore = skopeoDigest(`${repo}:stable`);
    const r = await rollback('20260201', pub);
    expect(r.code).toBe(1);
    expect(errors(r).join('')).toMatch(
      new RegExp(`refusing ${repo.replace(/\./g, '\\.')}@${unsigned}: its signature does not verify`),
    );
    expect(skopeoDigest(`${repo}:stable`)).toBe(stableBefore);
    const wrongKey = await rollback('20260101', other);
    expect(wrongKey.code).toBe(1);
    expect(skopeoDigest(`${repo}:stable`)).toBe(stableBefore);
  });
});
