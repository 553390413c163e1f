// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { ImageManifestSchema, layerCompression } from '../../actions/lib/oci/media.js';
import { LayeredRootfs } from '../../actions/lib/rootfs/layered.js';
import { ensureExampleImage, type ExampleImage } from '../harness/example-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { derivedImage, makeTar, sh, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * The bundled `changelog` action against a real registry holding two images derived from the
 * example distro: v2 changes bash's version, drops adduser, adds a package and replaces the
 * kernel. Run under the machine-wide lock (the example image is built when stale):
 *   flock /var/tmp/keel-heavy.lock npm test -- test/actions/changelog.test.ts
 */

/** The example's dpkg status file: its real path inside the image and its text. */
async function exampleStatus(ociDir: string): Promise<{ file: string; text: string }> {
  const layout = OciLayout.open(ociDir);
  const m = ImageManifestSchema.parse(JSON.parse(layout.readBlob(layout.resolve('latest').digest).toString()));
  const rootfs = new LayeredRootfs(
    m.layers.map((l) => ({
      digest: l.digest,
      compression: layerCompression(l.mediaType),
      open: () => layout.openBlob(l.digest),
    })),
  );
  const file = (await rootfs.resolve('var/lib/dpkg/status'))!;
  return { file, text: (await rootfs.readFiles([file])).get(file)!.toString('utf8') };
}

/** The status text with `pkg`'s Version replaced. */
function withVersion(status: string, pkg: string, version: string): string {
  return status
    .split('\n\n')
    .map((p) => (p.startsWith(`Package: ${pkg}\n`) ? p.replace(/^Version: .*$/m, `Version: ${version}`) : p))
    .join('\n\n');
}

describe('changelog (bundled, real registry)', () => {
  let example: ExampleImage;
  let reg: Registry;
  let work: string;
  let repo: string;
  let v1: string;
  let v2: string;
  let oldBash: string;
  const NEW_KERNEL = '6.99.0-keel-test';
  const changelog = (inputs: Record<string, string>) =>
    runAction({ action: 'changelog', inputs: { 'tls-verify': 'false', ...inputs }, cwd: work });
  const read = (p: string) => fs.readFileSync(p, 'utf8');

  beforeAll(
    async () => {
      example = await ensureExampleImage();
      reg = await startRegistry();
      work = tmpdir('keel-changelog-');
      repo = `${reg.host}/distro/os`;
      const { file, text } = await exampleStatus(example.ociDir);
      oldBash = /^Package: bash\n(?:.+\n)*?Version: (.+)$/m.exec(text)![1]!;
      const status = withVersion(text, 'bash', '99.9-keel1')
        .split('\n\n')
        .filter((p) => !p.startsWith('Package: adduser\n'))
        .join('\n\n')
        .replace(
          /\n*$/,
          '\n\nPackage: keel-extra\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n',
        );
      const layer = makeTar({
        [file]: status,
        [`usr/lib/modules/.wh.${example.kernelVersion}`]: '',
        [`usr/lib/modules/${NEW_KERNEL}/vmlinuz`]: 'not a real kernel',
      });
      const v2Ref = derivedImage(example.ociDir, 'latest', layer);
      v1 = skopeoPush(example.ociRef, `${repo}:candidate`);
      v2 = skopeoPush(v2Ref, `${repo}:next`);
    },
    30 * 60 * 1000,
  );
  afterAll(async () => {
    await reg?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('says it is the first release when the repository has no stable yet', async () => {
    const r = await changelog({ 'image-ref': `${repo}@${v1}`, 'output-dir': 'first' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ 'first-release': 'true', 'previous-digest': '', removed: '0', changed: '0' });
    const j = JSON.parse(read(r.outputs.json!));
    expect(j.firstRelease).toBe(true);
    expect(j.previous).toBeNull();
    expect(Number(r.outputs.added)).toBeGreaterThan(100);
    expect(j.added).toHaveLength(Number(r.outputs.added));
    expect(j.kernel.to).toEqual([example.kernelVersion]);
    const md = read(r.outputs.markdown!);
    expect(md).toMatch(new RegExp(`^## First release\\n\\nThere is no previous image at \`${repo}:stable\``));
    expect(r.summary).toContain('## First release');
  });

  it('lists the kernel change first, then changed, added and removed packages against stable', async () => {
    sh('skopeo', [
      'copy',
      '-q',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${repo}:candidate`,
      `docker://${repo}:stable`,
    ]);
    const r = await changelog({ 'image-ref': `${repo}@${v2}`, 'output-dir': 'v2' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({
      'first-release': 'false',
      'previous-digest': v1,
      added: '1',
      removed: '1',
      changed: '1',
      'kernel-changed': 'true',
    });
    const j = JSON.parse(read(r.outputs.json!));
    expect(j.kernel).toEqual({ from: [example.kernelVersion], to: [NEW_KERNEL], changed: true });
    expect(j.changed).toEqual([{ type: 'deb', name: 'bash', architecture: 'amd64', from: oldBash, to: '99.9-keel1' }]);
    expect(j.added).toEqual([{ type: 'deb', name: 'keel-extra', architecture: 'amd64', version: '1.0-1' }]);
    expect(j.removed).toEqual([expect.objectContaining({ type: 'deb', name: 'adduser', architecture: 'all' })]);
    expect(j.previous).toEqual({ ref: `${repo}:stable`, digest: v1 });
    const md = read(r.outputs.markdown!);
    const at = (s: string) => md.indexOf(s);
    expect(at(`**Kernel:** \`${example.kernelVersion}\` → \`${NEW_KERNEL}\``)).toBeGreaterThan(0);
    expect(at('**Kernel:**')).toBeLessThan(at('### Changed'));
    expect(at('### Changed')).toBeLessThan(at('### Added'));
    expect(at('### Added')).toBeLessThan(at('### Removed'));
    expect(md).toContain(`| bash | ${oldBash} | 99.9-keel1 |`);
    expect(r.summary).toContain('### Changed');
  });

  it('takes previous-image as a digest of the same repository, and reports no change against itself', async () => {
    const r = await changelog({ 'image-ref': `${repo}@${v1}`, 'previous-image': v1, 'output-dir': 'same' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({
      added: '0',
      removed: '0',
      changed: '0',
      'kernel-changed': 'false',
      'previous-digest': v1,
    });
    expect(read(r.outputs.markdown!)).toContain('No package changed.');
  });

  it('refuses a bare tag for previous-image when image-ref is not in a registry, before reading anything', async () => {
    const r = await changelog({ 'image-ref': example.ociRef, 'previous-image': 'stable', 'output-dir': 'bad' });
    expect(r.code).not.toBe(0);
    expect(errors(r).join('\n')).toMatch(
      /Input 'previous-image' has value "stable": image-ref is not a registry reference/,
    );
    expect(fs.existsSync(path.join(work, 'bad'))).toBe(false);
  });
});
