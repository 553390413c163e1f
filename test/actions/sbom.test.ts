// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { writeTar, type WriteEntry } from '../../actions/lib/tar/writer.js';
import { ensureExampleImage, type ExampleImage } from '../harness/example-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { makeOciImage, sh, skopeoPush, tarDir, tmpdir } from '../harness/tools.js';

/**
 * The bundled `sbom` action, the runner's way. Its package lists are checked against the
 * package tools themselves reading the same databases: dpkg-query on the example image
 * (mounted read-only by podman) and rpm -qa on an rpm database built with rpmbuild.
 * Run under the machine-wide lock (it builds the example image when stale):
 *   flock /var/tmp/keel-heavy.lock npm test -- test/actions/sbom.test.ts
 */

interface CdxComponent {
  name: string;
  version: string;
  type: string;
  purl?: string;
  licenses?: { license: { id?: string; name?: string } }[];
  properties?: { name: string; value: string }[];
}

const prop = (c: CdxComponent, k: string) => c.properties?.find((p) => p.name === k)?.value;
const packagesOf = (bom: { components?: CdxComponent[] }) => (bom.components ?? []).filter((c) => c.type === 'library');

async function tarOf(entries: WriteEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of writeTar(entries)) chunks.push(c);
  return Buffer.concat(chunks);
}
const dirEntry = (p: string): WriteEntry => ({
  header: { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0 },
});
const fileEntry = (p: string, body: string): WriteEntry => ({
  header: {
    path: p,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
    size: Buffer.byteLength(body),
  },
  body: Buffer.from(body),
});

/** An rpm database with two real packages (one noarch with an epoch, one x86_64), built by rpmbuild. */
function rpmFixture(w: string): string {
  const spec = (name: string, lines: string[]) => {
    fs.mkdirSync(path.join(w, 'rpmbuild/SPECS'), { recursive: true });
    const f = path.join(w, 'rpmbuild/SPECS', `${name}.spec`);
    fs.writeFileSync(
      f,
      [
        `Name: ${name}`,
        ...lines,
        'Summary: test',
        '%description',
        'test',
        '%install',
        `mkdir -p %{buildroot}/usr/share/${name}`,
        `echo ${name} > %{buildroot}/usr/share/${name}/file.txt`,
        '%files',
        `/usr/share/${name}/file.txt`,
        '',
      ].join('\n'),
    );
    sh('rpmbuild', ['--quiet', '--define', `_topdir ${w}/rpmbuild`, '-bb', f]);
  };
  spec('keel-alpha', [
    'Version: 2.1',
    'Release: 3.fc40',
    'Epoch: 4',
    'License: MIT AND (Apache-2.0 OR GPL-2.0-or-later)',
    'BuildArch: noarch',
  ]);
  spec('keel-beta', ['Version: 0.9', 'Release: 1', 'License: GPL-2.0-only']);
  const root = path.join(w, 'root');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/os-release'), 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n');
  sh('rpm', ['--root', root, '--dbpath', '/usr/lib/sysimage/rpm', '--initdb']);
  const rpms = fs
    .readdirSync(path.join(w, 'rpmbuild/RPMS'), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.rpm'))
    .map((f) => path.join(w, 'rpmbuild/RPMS', f));
  sh('rpm', [
    '--root',
    root,
    '--dbpath',
    '/usr/lib/sysimage/rpm',
    '-i',
    '--nodeps',
    '--justdb',
    '--ignorearch',
    ...rpms,
  ]);
  fs.rmSync(path.join(root, 'usr/lib/sysimage/rpm/.rpm.lock'), { force: true });
  return root;
}

describe('sbom (bundled)', () => {
  let example: ExampleImage;
  let work: string;
  let reg: Registry;
  const sbom = (inputs: Record<string, string>, runnerTemp?: string) =>
    runAction({ action: 'sbom', inputs: { 'tls-verify': 'false', ...inputs }, cwd: work, runnerTemp });

  beforeAll(
    async () => {
      example = await ensureExampleImage();
      work = tmpdir('keel-sbom-test-');
      reg = await startRegistry();
    },
    30 * 60 * 1000,
  );
  afterAll(async () => {
    await reg?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('lists exactly the packages dpkg-query lists for the example image, with purls, sources, licenses and the kernel', async () => {
    const r = await sbom({ 'image-ref': example.ociRef, formats: 'cyclonedx\nspdx', 'output-dir': 'example' });
    expect(errors(r)).toEqual([]);
    expect(r.code).toBe(0);
    const bom = JSON.parse(fs.readFileSync(r.outputs.cyclonedx!, 'utf8'));
    const spdx = JSON.parse(fs.readFileSync(r.outputs.spdx!, 'utf8'));
    expect(r.outputs.cyclonedx).toBe(path.join(work, 'example', 'sbom.cdx.json'));
    expect(r.outputs.databases).toMatch(/^dpkg:(usr\/lib\/sysimage|var\/lib)\/dpkg$/);

    // The reference: dpkg-query on the image's own filesystem (podman's read-only mount).
    const mnt = sh('podman', ['image', 'mount', example.name]).trim();
    let reference: string[];
    let bashCopyright: string;
    let osRelease: string;
    try {
      const q = sh('dpkg-query', [
        `--admindir=${mnt}/var/lib/dpkg`,
        '-W',
        '-f',
        '${Package}:${Architecture}=${Version}\\t${db:Status-Status}\\n',
      ]);
      reference = q
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t'))
        .filter(([, st]) => st !== 'config-files' && st !== 'not-installed')
        .map(([p]) => p!)
        .sort();
      bashCopyright = fs.readFileSync(path.join(mnt, 'usr/share/doc/bash/copyright'), 'utf8');
      osRelease = fs.readFileSync(path.join(mnt, 'etc/os-release'), 'utf8');
    } finally {
      spawnSync('podman', ['image', 'unmount', example.name]);
    }
    const pkgs = packagesOf(bom);
    const listed = pkgs.map((c) => `${c.name}:${prop(c, 'keel:package:architecture')}=${c.version}`).sort();
    expect(reference.length).toBeGreaterThan(100);
    expect(listed).toEqual(reference);
    expect(Number(r.outputs.packages)).toBe(reference.length);
    expect(
      spdx.packages.filter((p: { primaryPackagePurpose: string }) => p.primaryPackagePurpose === 'LIBRARY'),
    ).toHaveLength(reference.length);

    const id = /^ID=(.*)$/m.exec(osRelease)![1]!.replace(/"/g, '');
    const versionId = /^VERSION_ID=(.*)$/m.exec(osRelease)![1]!.replace(/"/g, '');
    const bash = pkgs.find((c) => c.name === 'bash')!;
    expect(bash.purl).toBe(`pkg:deb/${id}/bash@${bash.version}?arch=amd64&distro=${id}-${versionId}`);
    expect(prop(bash, 'keel:package:source')).toBe('bash');
    // The license comes from the DEP-5 copyright file: its `Files: *` license is among them.
    const filesStar = /^Files: \*\n(?:.+\n)*?License: (.+)$/m.exec(bashCopyright)![1]!;
    expect(bash.licenses!.map((l) => l.license.name ?? l.license.id)).toContain(filesStar);
    const kernel = bom.components.find((c: CdxComponent) => c.type === 'operating-system' && c.name === 'linux');
    expect(kernel.version).toBe(example.kernelVersion);
    expect(bom.metadata.component.version).toBe(r.outputs.digest);
    expect(r.summary).toMatch(/dpkg database/);
  });

  it('gives byte-identical files for the same image', async () => {
    const a = await sbom({ 'image-ref': example.ociRef, formats: 'cyclonedx\nspdx', 'output-dir': 'det-a' });
    const b = await sbom({ 'image-ref': example.ociRef, formats: 'cyclonedx\nspdx', 'output-dir': 'det-b' });
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(fs.readFileSync(b.outputs.cyclonedx!)).toEqual(fs.readFileSync(a.outputs.cyclonedx!));
    expect(fs.readFileSync(b.outputs.spdx!)).toEqual(fs.readFileSync(a.outputs.spdx!));
    const bom = JSON.parse(fs.readFileSync(a.outputs.cyclonedx!, 'utf8'));
    expect(bom.metadata.timestamp).toBe(new Date(example.labels['org.opencontainers.image.created']!).toISOString());
  });

  it('lists exactly what rpm -qa lists for an rpm database', async () => {
    const w = tmpdir('keel-sbom-rpm-');
    const root = rpmFixture(w);
    const img = makeOciImage(path.join(w, 'img'), { layers: [tarDir(root)] });
    const r = await sbom({ 'image-ref': `oci:${img.dir}:latest`, formats: 'cyclonedx\nspdx', 'output-dir': 'rpm' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.databases).toBe('rpm:usr/lib/sysimage/rpm');
    const reference = sh('rpm', [
      '--dbpath',
      path.join(root, 'usr/lib/sysimage/rpm'),
      '-qa',
      '--qf',
      '%{NAME} %{EPOCHNUM} %{VERSION}-%{RELEASE} %{ARCH}\\n',
    ])
      .split('\n')
      .filter(Boolean)
      .sort();
    const bom = JSON.parse(fs.readFileSync(r.outputs.cyclonedx!, 'utf8'));
    const listed = packagesOf(bom)
      .map((c) => {
        const [epoch, vr] = c.version.includes(':') ? c.version.split(':') : ['0', c.version];
        return `${c.name} ${epoch} ${vr} ${prop(c, 'keel:package:architecture')}`;
      })
      .sort();
    expect(reference).toHaveLength(2);
    expect(listed).toEqual(reference);
    const alpha = packagesOf(bom).find((c) => c.name === 'keel-alpha')!;
    expect(alpha.purl).toBe('pkg:rpm/fedora/keel-alpha@2.1-3.fc40?arch=noarch&distro=fedora-40&epoch=4');
    expect(alpha.licenses).toEqual([{ license: { name: 'MIT AND (Apache-2.0 OR GPL-2.0-or-later)' } }]);
    const spdx = JSON.parse(fs.readFileSync(r.outputs.spdx!, 'utf8'));
    expect(spdx.packages.find((p: { name: string }) => p.name === 'keel-alpha').licenseDeclared).toBe(
      'MIT AND (Apache-2.0 OR GPL-2.0-or-later)',
    );
    fs.rmSync(w, { recursive: true, force: true });
  });

  it('describes an image without a package database (the image only, and says so), read from a registry by digest', async () => {
    const img = makeOciImage(path.join(work, 'img-nodb'), {
      layers: [{ 'srv/hello.txt': 'hello' }],
      labels: { 'org.example': 'x' },
    });
    const digest = skopeoPush(`oci:${img.dir}:latest`, `${reg.host}/distro/nodb:v1`);
    const r = await sbom({
      'image-ref': `${reg.host}/distro/nodb@${digest}`,
      formats: 'cyclonedx\nspdx',
      'output-dir': 'nodb',
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ packages: '0', databases: '', digest });
    expect(r.summary).toMatch(/no package database found/);
    const bom = JSON.parse(fs.readFileSync(r.outputs.cyclonedx!, 'utf8'));
    expect(bom.components ?? []).toEqual([]);
    expect(bom.metadata.component).toMatchObject({
      type: 'container',
      name: `${reg.host}/distro/nodb`,
      version: digest,
    });
    expect(prop(bom.metadata.component, 'keel:package-databases')).toBe('none');
    expect(prop(bom.metadata.component, 'keel:label:org.example')).toBe('x');
    expect(bom.metadata.component.purl).toBe(
      `pkg:oci/nodb@${digest}?arch=amd64&repository_url=${encodeURIComponent(`${reg.host}/distro/nodb`)}`,
    );
  });

  it('refuses a malformed dpkg status file by name and writes nothing', async () => {
    const img = makeOciImage(path.join(work, 'img-bad-status'), {
      layers: [
        {
          'var/lib/dpkg/status':
            'Package: bash\nStatus: install ok installed\nVersion: 5.2\nthis line is not a field\n',
        },
      ],
    });
    const r = await sbom({ 'image-ref': `oci:${img.dir}:latest`, 'output-dir': 'bad-status' });
    expect(r.code).not.toBe(0);
    expect(errors(r).join('\n')).toMatch(
      /package database var\/lib\/dpkg\/status refused: line 4: expected "Field: value"/,
    );
    expect(fs.existsSync(path.join(work, 'bad-status'))).toBe(false);
  });

  it('refuses an rpm database path that leaves the database directory; nothing is written outside', async () => {
    const name = `escape-${process.pid}-${Date.now()}`;
    const tar = await tarOf([
      dirEntry('usr'),
      dirEntry('usr/lib'),
      dirEntry('usr/lib/sysimage'),
      dirEntry('usr/lib/sysimage/rpm'),
      fileEntry(`usr/lib/${name}`, 'planted by the image'),
      fileEntry(`usr/lib/sysimage/rpm/../../${name}`, 'planted by the image'),
    ]);
    const img = makeOciImage(path.join(work, 'img-rpm-escape'), { layers: [tar] });
    const temp = tmpdir('keel-sbom-temp-');
    const r = await sbom({ 'image-ref': `oci:${img.dir}:latest`, 'output-dir': 'rpm-escape' }, temp);
    expect(r.code).not.toBe(0);
    expect(errors(r).join('\n')).toMatch(
      new RegExp(
        `refusing the image: layer sha256:[0-9a-f]{64}, entry "usr/lib/sysimage/rpm/\\.\\./\\.\\./${name}": it has a "\\.\\." component`,
      ),
    );
    // The copy lives in <temp>/keel-sbom-*/keel-rpmdb-*: "../../<name>" would have landed in <temp>.
    const found = sh('find', [path.dirname(temp), '-maxdepth', '3', '-name', name]).trim();
    expect(found).toBe('');
    expect(fs.readdirSync(temp).filter((f) => f.startsWith('keel-sbom-'))).toEqual([]);
    expect(fs.existsSync(path.join(work, 'rpm-escape'))).toBe(false);
    fs.rmSync(temp, { recursive: true, force: true });
  });
});
