// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import { silentLogger } from '../../actions/lib/log.js';
import type { RegistryClient } from '../../actions/lib/oci/client.js';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { MT } from '../../actions/lib/oci/media.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { IndexSchema } from '../../actions/lib/oci/media.js';
import { generateKeyPair } from '../../actions/lib/sign/keys.js';
import { signImage } from '../../actions/sign/src/sign.js';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { packagesEmulator, type PackagesEmulator } from '../../emulators/github/packages.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { makeOciImage, sh, skopeoDigest, tmpdir } from '../harness/tools.js';

/**
 * The bundled cleanup against a real docker-registry (which, like every distribution 2.x, can
 * only delete manifests) and against GitHub Packages (the emulator, backed by the same registry):
 * what goes, what stays and why, signatures and index children with their image, dry runs that
 * send no DELETE, and re-runs that find nothing left to do.
 */
const TODAY = '20260315';
const CREATED = 'org.opencontainers.image.created';
const key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('cleanup (bundled, real registry)', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    client = connect(parseReference(`${reg.host}/x/y:z`), { 'tls-verify': false }, silentLogger);
  });
  afterAll(async () => {
    await proxy.close();
    await reg.stop();
  });

  /** Pushes a one-layer image by digest (through Keel's client) and tags it. */
  async function image(repo: string, tags: string[], opts: Parameters<typeof makeOciImage>[1] = {}): Promise<string> {
    const img = makeOciImage(tmpdir(), opts);
    const layout = OciLayout.open(img.dir);
    const m = JSON.parse(img.manifest.toString()) as {
      config: { digest: string; size: number };
      layers: { digest: string; size: number }[];
    };
    for (const b of [m.config, ...m.layers])
      await client.pushBlob(repo, b, (start) => layout.openBlob(b.digest, start));
    for (const t of [img.digest, ...tags]) await client.putManifest(repo, t, img.manifest, MT.ociManifest);
    return img.digest;
  }
  /** An index of two fresh images (linux/amd64, linux/arm64), tagged. */
  async function index(repo: string, tags: string[], labels: Record<string, string> = {}) {
    const children = [await image(repo, [], { labels }), await image(repo, [], { labels })];
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: await Promise.all(
          children.map(async (digest, i) => ({
            mediaType: MT.ociManifest,
            digest,
            size: (await client.getManifest(repo, digest)).body.length,
            platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
          })),
        ),
      }),
    );
    let digest = '';
    for (const t of tags) digest = await client.putManifest(repo, t, body, MT.ociIndex);
    return { digest, children };
  }
  const sign = (repo: string, digest: string) =>
    signImage(
      client,
      {
        ref: parseReference(`${reg.host}/${repo}@${digest}`),
        identities: [`${reg.host}/${repo}`],
        legacy: true,
        bundle: false,
        key,
      },
      silentLogger,
    );
  /** Legacy tags and cosign 3 bundles (with the referrers fallback index), by the bundled sign hop. */
  async function signBoth(repo: string, digest: string) {
    const pw = 'cleanup-test';
    const pair = await generateKeyPair(pw);
    const r = await runAction({
      action: 'sign',
      inputs: {
        'image-ref': `${reg.host}/${repo}@${digest}`,
        'private-key': pair.privatePem,
        password: pw,
        format: 'both',
        'tls-verify': 'false',
      },
    });
    expect(errors(r)).toEqual([]);
  }
  const tagsOf = (repo: string) =>
    (
      JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`])).Tags as string[]
    ).sort();
  const exists = async (repo: string, digest: string) => (await client.findManifest(repo, digest)) !== undefined;
  const att = (digest: string, suffix = '.sig') => `sha256-${digest.slice(7)}${suffix}`;
  const lines = (s: string | undefined) => (s ? s.split('\n').filter(Boolean) : []);
  const keptReason = (out: string | undefined, tag: string) =>
    lines(out)
      .find((l) => l.startsWith(`${tag} `))
      ?.slice(tag.length + 1);

  it('deletes closed and expired images with their signatures and children, keeps every released digest, and says why', async () => {
    const repo = 'keel/os';
    // Released: stable and its dated tags; the candidate it was promoted from still carries candidate.20260101.
    const S = await image(repo, ['stable', 'stable.20260101', '20260101', 'candidate.20260101'], {
      labels: { [CREATED]: '2026-01-01T06:00:00Z' },
    });
    await sign(repo, S);
    const C = await image(repo, ['candidate', 'candidate.20260314']);
    const X = await image(repo, ['candidate.20260110']);
    await sign(repo, X);
    const recent = await image(repo, ['candidate.20260301']);
    const P7 = await image(repo, ['pr-7'], { labels: { [CREATED]: '2026-03-14T10:00:00Z' } });
    const P7att = await image(repo, [att(P7, '.att')]);
    const P8 = await image(repo, ['pr-8'], { labels: { [CREATED]: '2026-01-02T10:00:00Z' } });
    const P9 = await image(repo, ['pr-9'], { created: '2026-03-01T10:00:00Z' });
    const P10 = await image(repo, ['pr-10']);
    const other = await image(repo, ['nvidia']);
    // An expired index signed in both formats (legacy tags and cosign 3 bundles with the fallback index).
    const I = await index(repo, ['candidate.20260105']);
    await signBoth(repo, I.digest);
    const fallback = IndexSchema.parse(JSON.parse((await client.getManifest(repo, att(I.digest, ''))).body.toString()));
    const bundles = fallback.manifests.map((m) => m.digest);
    // A released index whose child an expired pr tag also names.
    const J = await index(repo, ['stable.20260201'], { [CREATED]: '2026-01-01T00:00:00Z' });
    await client.putManifest(repo, 'pr-11', (await client.getManifest(repo, J.children[0]!)).body, MT.ociManifest);
    await sign(repo, J.digest);
    const before = tagsOf(repo);

    const run = (inputs: Record<string, string>, event?: Record<string, unknown>) =>
      runAction({
        action: 'cleanup',
        inputs: { image: `${proxy.host}/${repo}`, 'tls-verify': 'false', 'release-date': TODAY, ...inputs },
        eventName: event ? 'pull_request' : 'schedule',
        event,
      });
    const closed = { action: 'closed', number: 7, pull_request: { number: 7, labels: [] } };

    proxy.reset();
    const dry = await run({ 'dry-run': 'true' }, closed);
    expect(errors(dry)).toEqual([]);
    expect(proxy.log.filter((e) => e.method === 'DELETE')).toEqual([]);
    expect(tagsOf(repo)).toEqual(before);
    expect(dry.outputs.deleted).toBe('');
    const planned = lines(dry.outputs.planned);
    expect(dry.summary).toMatch(/Dry run: nothing was deleted/);

    proxy.reset();
    const real = await run({}, closed);
    expect(errors(real)).toEqual([]);
    const deleted = lines(real.outputs.deleted);
    expect(deleted.sort()).toEqual(planned.sort());
    expect(deleted.map((l) => l.split(' ')[0]).sort()).toEqual(
      [
        'candidate.20260110',
        att(X),
        'pr-7',
        att(P7, '.att'),
        'pr-8',
        'candidate.20260105',
        att(I.digest),
        att(I.digest, ''),
        ...I.children.flatMap((c) => [att(c), att(c, '')]),
      ].sort(),
    );
    expect(deleted).toContain(`pr-7 ${P7}`);
    expect(deleted).toContain(`${att(P7, '.att')} ${P7att}`);
    expect(tagsOf(repo)).toEqual(
      [
        'stable',
        'stable.20260101',
        '20260101',
        'candidate.20260101',
        att(S),
        'candidate',
        'candidate.20260314',
        'candidate.20260301',
        'pr-9',
        'pr-10',
        'nvidia',
        'stable.20260201',
        'pr-11',
        att(J.digest),
        ...J.children.map((c) => att(c)),
      ].sort(),
    );
    for (const d of [X, P7, P7att, P8, I.digest, ...I.children, ...bundles])
      expect([d, await exists(repo, d)]).toEqual([d, false]);
    for (const d of [S, C, recent, P9, P10, other, J.digest, ...J.children])
      expect([d, await exists(repo, d)]).toEqual([d, true]);
    // Nothing was deleted that a kept tag needs: every DELETE named a doomed digest.
    const sent = proxy.log.filter((e) => e.method === 'DELETE').map((e) => e.path.split('/manifests/')[1]);
    for (const d of [S, C, J.digest, ...J.children]) expect(sent).not.toContain(d);

    const kept = real.outputs.kept;
    expect(keptReason(kept, 'candidate.20260101')).toMatch(
      /^expired \(dated 73 days ago \(keep-days 30\)\), but sha256:\w+… is also tagged 20260101; this registry deletes manifests, not tags, so deleting it would remove that too$/,
    );
    expect(keptReason(kept, 'pr-11')).toMatch(
      /^expired \(built 73 days ago .*\), but .* is also referenced by an index that is tagged stable\.20260201;/,
    );
    expect(keptReason(kept, 'pr-9')).toBe('built 14 days ago, within keep-days 30');
    expect(keptReason(kept, 'pr-10')).toMatch(/^no build date/);
    expect(keptReason(kept, 'stable')).toBe('released: never deleted');
    expect(keptReason(kept, 'candidate')).toBe('the current candidate: never deleted');
    expect(keptReason(kept, 'nvidia')).toBe("not in Keel's tag grammar: never deleted");
    expect(real.summary).toMatch(/Deleted 12 tag\(s\) and 5 untagged manifest\(s\)/);

    // A re-run has nothing left to delete and sends no DELETE.
    proxy.reset();
    const again = await run({}, closed);
    expect(errors(again)).toEqual([]);
    expect(again.outputs.deleted).toBe('');
    expect(proxy.log.filter((e) => e.method === 'DELETE')).toEqual([]);
  });

  it('a pull_request event that is not closed deletes no pr image; pull-request deletes one now', async () => {
    const repo = 'keel/prs';
    await image(repo, ['stable']);
    await image(repo, ['pr-3'], { labels: { [CREATED]: '2026-03-14T00:00:00Z' } });
    await image(repo, ['pr-4'], { labels: { [CREATED]: '2026-03-14T00:00:00Z' } });
    const opened = await runAction({
      action: 'cleanup',
      inputs: { image: `${reg.host}/${repo}`, 'tls-verify': 'false', 'release-date': TODAY },
      eventName: 'pull_request',
      event: { action: 'synchronize', number: 3, pull_request: { number: 3 } },
    });
    expect(errors(opened)).toEqual([]);
    expect(tagsOf(repo)).toEqual(['pr-3', 'pr-4', 'stable']);
    const now = await runAction({
      action: 'cleanup',
      inputs: { image: `${reg.host}/${repo}`, 'tls-verify': 'false', 'release-date': TODAY, 'pull-request': '4' },
    });
    expect(errors(now)).toEqual([]);
    expect(tagsOf(repo)).toEqual(['pr-3', 'stable']);
    expect(now.outputs.deleted).toMatch(/^pr-4 sha256:/);
  });

  it('refuses bad input before any request, naming the input', async () => {
    proxy.reset();
    const noToken = await runAction({
      action: 'cleanup',
      inputs: { image: `${proxy.host}/keel/os`, backend: 'github-packages', 'tls-verify': 'false' },
    });
    expect(errors(noToken).join('')).toMatch(/Input 'token': the github-packages backend needs a token/);
    const plainApi = await runAction({
      action: 'cleanup',
      inputs: { image: `${proxy.host}/keel/os`, 'api-url': 'http://api.example.com', 'tls-verify': 'false' },
    });
    expect(errors(plainApi).join('')).toMatch(
      /Input 'api-url' .*plain http to api.example.com would send credentials unprotected: use https/,
    );
    // backend auto is GitHub Packages for ghcr.io, which needs the token: refused before any request.
    const ghcr = await runAction({ action: 'cleanup', inputs: { image: 'ghcr.io/acme/os' } });
    expect(errors(ghcr).join('')).toMatch(/Input 'token': the github-packages backend needs a token/);
    const tagged = await runAction({ action: 'cleanup', inputs: { image: `${proxy.host}/keel/os:stable` } });
    expect(errors(tagged).join('')).toMatch(/Input 'image'/);
    expect(proxy.log).toEqual([]);
  });

  describe('GitHub Packages backend (emulator over the same registry)', () => {
    const TOKEN = 'ghp_cleanupTestToken42';
    let emu: GithubEmulator;
    let pk: PackagesEmulator;
    beforeAll(async () => {
      pk = packagesEmulator({ registry: reg, accounts: { acme: 'Organization', bob: 'User' } });
      emu = await startGithubEmulator({ repos: {}, token: TOKEN, extensions: [pk.extension] });
    });
    afterAll(() => emu.close());

    const ghCleanup = (repo: string, inputs: Record<string, string> = {}) =>
      runAction({
        action: 'cleanup',
        inputs: {
          image: `${reg.host}/${repo}`,
          backend: 'github-packages',
          token: TOKEN,
          'api-url': emu.url,
          'tls-verify': 'false',
          'release-date': TODAY,
          ...inputs,
        },
      });

    it.each([
      ['acme', 'orgs'],
      ['bob', 'users'],
    ])(
      'deletes package versions of %s through /%s/…, asking the API which kind of owner it is',
      async (owner, kind) => {
        const repo = `${owner}/os`;
        const S = await image(repo, ['stable', 'candidate.20260101']);
        await sign(repo, S);
        const X = await image(repo, ['candidate.20260110']);
        await sign(repo, X);
        const xSig = (await client.headManifest(repo, att(X)))!.digest;
        const J = await index(repo, ['20260201']);
        await client.putManifest(repo, 'pr-12', (await client.getManifest(repo, J.children[1]!)).body, MT.ociManifest);
        const P = await image(repo, ['pr-13'], { labels: { [CREATED]: '2026-01-01T00:00:00Z' } });
        emu.state.requests.length = 0;
        const dry = await ghCleanup(repo, { 'dry-run': 'true' });
        expect(errors(dry)).toEqual([]);
        expect(emu.state.requests.filter((r) => r.method === 'DELETE')).toEqual([]);
        const r = await ghCleanup(repo, { token: TOKEN });
        expect(errors(r)).toEqual([]);
        expect(r.masked).toContain(TOKEN);
        expect(r.stdout.replace(`::add-mask::${TOKEN}`, '')).not.toContain(TOKEN);
        expect(pk.deleted.filter((d) => d.startsWith(`${repo}@`)).sort()).toEqual(
          [X, xSig, P].map((d) => `${repo}@${d}`).sort(),
        );
        const paths = emu.state.requests.map((q) => `${q.method} ${q.path.split('?')[0]}`);
        expect(paths).toContain(`GET /users/${owner}`);
        expect(
          paths
            .filter((p) => p.startsWith('DELETE'))
            .every((p) => p.startsWith(`DELETE /${kind}/${owner}/packages/container/os/versions/`)),
        ).toBe(true);
        expect(paths.some((p) => p.includes(`/${kind === 'orgs' ? 'users' : 'orgs'}/${owner}/packages`))).toBe(false);
        expect(tagsOf(repo)).toEqual(['20260201', 'candidate.20260101', 'pr-12', att(S), 'stable'].sort());
        expect(keptReason(r.outputs.kept, 'candidate.20260101')).toMatch(
          /a package version carries every tag of its manifest, so deleting it would remove that too$/,
        );
        expect(skopeoDigest(`${reg.host}/${repo}:stable`)).toBe(S);
      },
    );
  });
});
