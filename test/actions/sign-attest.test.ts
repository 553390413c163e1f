// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { keygen } from '../../cli/commands/keygen.js';
import { silentLogger } from '../../actions/lib/log.js';
import { sha256, type RegistryClient } from '../../actions/lib/oci/client.js';
import { MT } from '../../actions/lib/oci/media.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { attTag } from '../../actions/lib/sign/attestation.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';
import { fetchVerifiers, runTool, type ToolResult, type Verifiers } from '../harness/verifiers.js';

/**
 * `sign` attestations, provenance and file signatures, and `verify attestation-types`, driven
 * through the bundles against a real registry; the independent judges are the real cosign 2.5
 * and 3.x (`verify-attestation`, `verify-blob`), which must accept what Keel writes and reject a
 * wrong key, a tampered statement and a tampered file.
 */
describe('sign: attestations, provenance and files (bundled, real registry, cosign 2 and 3)', () => {
  let reg: Registry;
  let v: Verifiers;
  let dir: string;
  let client: RegistryClient;
  let repo: string;
  let keyPem: string;
  let pubPath: string;
  let otherPubPath: string;
  const PW = 'attest password';
  const BASE_DIGEST = `sha256:${'b'.repeat(64)}`;
  const GITHUB_ENV = {
    GITHUB_REPOSITORY: 'acme/keel-os',
    GITHUB_SHA: 'c'.repeat(40),
    GITHUB_REF: 'refs/heads/main',
    GITHUB_WORKFLOW_REF: 'acme/keel-os/.github/workflows/build.yml@refs/heads/main',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '2',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY_ID: '101',
    GITHUB_REPOSITORY_OWNER_ID: '202',
    RUNNER_ENVIRONMENT: 'github-hosted',
  };
  const cosigns = () => [
    ['cosign 2.5', v.cosign],
    ['cosign 3', v.cosign3!],
  ];

  const push = (tag: string) => {
    const img = makeOciImage(path.join(dir, `img-${tag}`), {
      labels: {
        'org.opencontainers.image.base.name': 'ghcr.io/acme/base:13',
        'org.opencontainers.image.base.digest': BASE_DIGEST,
      },
    });
    return skopeoPush(`oci:${img.dir}:latest`, `${repo}:${tag}`);
  };
  const sign = (inputs: Record<string, string>, env: Record<string, string> = {}) =>
    runAction({
      action: 'sign',
      inputs: { 'tls-verify': 'false', 'private-key': keyPem, password: PW, 'public-key': pubPath, ...inputs },
      env,
      cwd: dir,
      event: { inputs: { 'base-image': 'ghcr.io/acme/base:13' } },
    });
  const verifyAttestation = (cosign: string, image: string, type: string, key = pubPath): ToolResult =>
    runTool(
      cosign,
      [
        'verify-attestation',
        '--key',
        key,
        '--type',
        type,
        '--insecure-ignore-tlog=true',
        '--allow-http-registry',
        image,
      ],
      {
        env: { HOME: dir },
      },
    );
  const verifyBlob = (cosign: string, file: string, key = pubPath): ToolResult =>
    runTool(cosign, ['verify-blob', '--key', key, '--signature', `${file}.sig`, '--insecure-ignore-tlog=true', file], {
      env: { HOME: dir },
    });
  /** The statements cosign printed (one DSSE envelope per line on stdout). */
  const statements = (r: ToolResult) =>
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(Buffer.from(JSON.parse(l).payload, 'base64').toString('utf8')));

  beforeAll(async () => {
    v = fetchVerifiers({ sid: true });
    reg = await startRegistry();
    dir = tmpdir('keel-attest-');
    repo = `${reg.host}/distro/os`;
    client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
    const k = await keygen({ outPrefix: path.join(dir, 'keel'), password: PW });
    keyPem = fs.readFileSync(k.privateKeyPath, 'utf8');
    pubPath = k.publicKeyPath;
    otherPubPath = (await keygen({ outPrefix: path.join(dir, 'other'), password: PW })).publicKeyPath;
    fs.writeFileSync(
      path.join(dir, 'sbom.cdx.json'),
      JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] }),
    );
    fs.writeFileSync(
      path.join(dir, 'sbom.spdx.json'),
      JSON.stringify({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'x' }),
    );
    fs.writeFileSync(path.join(dir, 'Containerfile'), 'FROM ghcr.io/acme/base:13\nRUN true\n');
  }, 600_000);
  afterAll(async () => {
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('attaches SBOMs and SLSA provenance that cosign 2.5 and 3 verify-attestation accept, and only with the right key', async () => {
    const d = push('candidate');
    const image = `${repo}@${d}`;
    const r = await sign(
      {
        'image-ref': image,
        attestations: 'cyclonedx=sbom.cdx.json\nspdxjson=sbom.spdx.json',
        provenance: 'true',
        containerfile: 'Containerfile',
      },
      GITHUB_ENV,
    );
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ verified: 'true', 'attestation-refs': `${repo}:${attTag(d)}` });
    for (const [name, cosign] of cosigns()) {
      for (const type of ['cyclonedx', 'spdxjson', 'slsaprovenance1']) {
        const ok = verifyAttestation(cosign!, image, type);
        expect([name, type, ok.ok, ok.ok ? '' : ok.stderr.slice(-400)]).toEqual([name, type, true, '']);
      }
      const wrong = verifyAttestation(cosign!, image, 'cyclonedx', otherPubPath);
      expect([name, wrong.ok]).toEqual([name, false]);
      const missing = verifyAttestation(cosign!, image, 'openvex');
      expect([name, missing.ok]).toEqual([name, false]);
    }
    // What cosign verified is what was asked for: the SBOM, and the run's provenance.
    const cdx = statements(verifyAttestation(v.cosign, image, 'cyclonedx'));
    expect(cdx).toHaveLength(1);
    expect(cdx[0]).toMatchObject({
      _type: 'https://in-toto.io/Statement/v1',
      predicateType: 'https://cyclonedx.org/bom',
      subject: [{ name: repo, digest: { sha256: d.slice(7) } }],
      predicate: JSON.parse(fs.readFileSync(path.join(dir, 'sbom.cdx.json'), 'utf8')),
    });
    const prov = statements(verifyAttestation(v.cosign3!, image, 'slsaprovenance1'))[0].predicate;
    expect(prov.buildDefinition).toMatchObject({
      buildType: 'https://actions.github.io/buildtypes/workflow/v1',
      externalParameters: {
        workflow: {
          ref: 'refs/heads/main',
          repository: 'https://github.com/acme/keel-os',
          path: '.github/workflows/build.yml',
        },
        inputs: { 'base-image': 'ghcr.io/acme/base:13' },
      },
      internalParameters: {
        github: { event_name: 'workflow_dispatch', repository_id: '101', runner_environment: 'github-hosted' },
      },
    });
    const deps = prov.buildDefinition.resolvedDependencies;
    expect(deps).toEqual([
      { uri: 'git+https://github.com/acme/keel-os@refs/heads/main', digest: { gitCommit: 'c'.repeat(40) } },
      expect.objectContaining({ name: 'base-image', digest: { sha256: 'b'.repeat(64) } }),
      {
        name: 'Containerfile',
        uri: `git+https://github.com/acme/keel-os@${'c'.repeat(40)}#Containerfile`,
        digest: {
          sha256: crypto
            .createHash('sha256')
            .update(fs.readFileSync(path.join(dir, 'Containerfile')))
            .digest('hex'),
        },
      },
    ]);
    expect(prov.runDetails).toEqual({
      builder: { id: 'https://github.com/acme/keel-os/.github/workflows/build.yml@refs/heads/main' },
      metadata: { invocationId: 'https://github.com/acme/keel-os/actions/runs/4242/attempts/2' },
    });

    // Re-running signs nothing twice.
    const layersBefore = await attLayers(d);
    const again = await sign({ 'image-ref': image, attestations: 'cyclonedx=sbom.cdx.json' }, GITHUB_ENV);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 added, 1 already present/);
    expect(await attLayers(d)).toEqual(layersBefore);

    // verify: attestation-types, through Keel's own checker (not cosign).
    const ok = await runAction({
      action: 'verify',
      inputs: {
        'image-ref': image,
        'public-key': pubPath,
        'tls-verify': 'false',
        'attestation-types': 'cyclonedx\nslsaprovenance1',
      },
    });
    expect(errors(ok)).toEqual([]);
    expect(ok.outputs.verified).toBe('true');
    expect(JSON.parse(ok.outputs.attestations!).map((t: { verified: boolean }) => t.verified)).toEqual([true, true]);
    const no = await runAction({
      action: 'verify',
      inputs: {
        'image-ref': image,
        'public-key': pubPath,
        'tls-verify': 'false',
        'attestation-types': 'cyclonedx\nopenvex',
      },
    });
    expect(no.code).not.toBe(0);
    expect(no.outputs.verified).toBe('false');
    expect(no.outputs.reason).toMatch(
      /^attestation openvex: none of the attestations matched the predicate type https:\/\/openvex.dev\/ns/,
    );
    const wrongKey = await runAction({
      action: 'verify',
      inputs: {
        'image-ref': image,
        'public-key': otherPubPath,
        'tls-verify': 'false',
        'fail-on-unverified': 'false',
        'attestation-types': 'cyclonedx',
      },
    });
    expect(wrongKey.outputs.verified).toBe('false');
  });

  it('a tampered statement (signature kept) is rejected by cosign 2.5, cosign 3 and verify', async () => {
    const d = push('tamper');
    const image = `${repo}@${d}`;
    const r = await sign({ 'image-ref': image, attestations: 'cyclonedx=sbom.cdx.json' });
    expect(r.code).toBe(0);
    for (const [, cosign] of cosigns()) expect(verifyAttestation(cosign!, image, 'cyclonedx').ok).toBe(true);
    // Swap the payload for another statement, keeping the signature: the registry copy is forged.
    const m = JSON.parse((await client.getManifest('distro/os', attTag(d), MT.ociManifest)).body.toString());
    const env = JSON.parse((await client.getBlob('distro/os', m.layers[0].digest)).toString());
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString());
    st.predicate.components = [{ type: 'library', name: 'backdoor', version: '1' }];
    env.payload = Buffer.from(JSON.stringify(st)).toString('base64');
    const forged = Buffer.from(JSON.stringify(env));
    await client.pushBlob('distro/os', { digest: sha256(forged), size: forged.length }, () => Readable.from([forged]));
    m.layers[0] = { ...m.layers[0], digest: sha256(forged), size: forged.length };
    await client.putManifest('distro/os', attTag(d), Buffer.from(JSON.stringify(m)), MT.ociManifest);
    for (const [name, cosign] of cosigns())
      expect([name, verifyAttestation(cosign!, image, 'cyclonedx').ok]).toEqual([name, false]);
    const keel = await runAction({
      action: 'verify',
      inputs: { 'image-ref': image, 'public-key': pubPath, 'tls-verify': 'false', 'attestation-types': 'cyclonedx' },
    });
    expect(keel.outputs.verified).toBe('false');
    expect(keel.outputs.reason).toMatch(/signature verification failed/);
  });

  it('signs files (no image) into <file>.sig that cosign verify-blob 2.5 and 3 accept; a tampered file or wrong key fails', async () => {
    fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${'e'.repeat(64)}  keel-os.iso\n`);
    fs.writeFileSync(path.join(dir, 'keel-os.iso'), crypto.randomBytes(3 * 1024 * 1024 + 17));
    const r = await sign({ files: 'SHA256SUMS\nkeel-os.iso' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({
      verified: 'true',
      'file-signatures': 'SHA256SUMS.sig\nkeel-os.iso.sig',
      'signed-digests': '',
    });
    for (const f of ['SHA256SUMS', 'keel-os.iso']) {
      const file = path.join(dir, f);
      expect(fs.readFileSync(`${file}.sig`, 'utf8')).toMatch(/^[A-Za-z0-9+/]+=*$/);
      for (const [name, cosign] of cosigns()) {
        const ok = verifyBlob(cosign!, file);
        expect([name, f, ok.ok, ok.ok ? '' : ok.stderr.slice(-300)]).toEqual([name, f, true, '']);
        expect([name, f, verifyBlob(cosign!, file, otherPubPath).ok]).toEqual([name, f, false]);
      }
    }
    fs.appendFileSync(path.join(dir, 'SHA256SUMS'), `${'f'.repeat(64)}  evil.iso\n`);
    for (const [name, cosign] of cosigns())
      expect([name, verifyBlob(cosign!, path.join(dir, 'SHA256SUMS')).ok]).toEqual([name, false]);
  });

  it('refuses bad attestation and file inputs before writing anything', async () => {
    const d = push('bad');
    fs.writeFileSync(path.join(dir, 'not.json'), 'this is not json');
    const cases: [Record<string, string>, RegExp][] = [
      [
        { 'image-ref': `${repo}@${d}`, attestations: 'sbom=sbom.cdx.json' },
        /Input 'attestations'.*TYPE "sbom" is neither/,
      ],
      [{ 'image-ref': `${repo}@${d}`, attestations: 'cyclonedx=not.json' }, /Input 'attestations'.*is not JSON/],
      [{ 'image-ref': `${repo}@${d}`, attestations: 'cyclonedx=missing.json' }, /Input 'attestations'.*does not exist/],
      [
        { attestations: 'cyclonedx=sbom.cdx.json' },
        /Input 'image-ref'.*attestations and provenance are statements about an image digest/,
      ],
      [{ files: 'nope.txt' }, /Input 'files'.*"nope.txt": does not exist/],
      [
        { files: 'SHA256SUMS', mode: 'keyless', 'private-key': '', 'public-key': '' },
        /Input 'files'.*signed with the key/,
      ],
    ];
    for (const [inputs, re] of cases) {
      const r = await sign(inputs);
      expect([JSON.stringify(inputs), r.code === 0]).toEqual([JSON.stringify(inputs), false]);
      expect(errors(r).join('\n')).toMatch(re);
    }
    expect(await client.headManifest('distro/os', attTag(d))).toBeUndefined();
    expect(await client.headManifest('distro/os', `${d.replace(':', '-')}.sig`)).toBeUndefined();
  });

  async function attLayers(d: string): Promise<string[]> {
    const m = JSON.parse((await client.getManifest('distro/os', attTag(d), MT.ociManifest)).body.toString());
    return m.layers.map((l: { digest: string }) => l.digest);
  }
});
