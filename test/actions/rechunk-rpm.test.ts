// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { errors, runAction } from '../harness/run-action.js';
import { makeOciImage, sh, tarDir, tmpdir } from '../harness/tools.js';

/**
 * Fedora-style images: file ownership comes from the rpm database (sqlite, under
 * /usr/lib/sysimage/rpm), read through the real `rpm` tool. A real package is built with
 * rpmbuild and registered in the fixture's database.
 */
describe('rechunk groups files by rpm package', () => {
  it('puts the files an rpm owns in that package layer and the rpmdb in its own', async () => {
    const w = tmpdir('keel-rpm-');
    fs.mkdirSync(path.join(w, 'rpmbuild/SPECS'), { recursive: true });
    fs.writeFileSync(
      path.join(w, 'rpmbuild/SPECS/keeltest.spec'),
      [
        'Name: keeltest',
        'Version: 1.0',
        'Release: 1',
        'Summary: test',
        'License: MIT',
        'BuildArch: noarch',
        '%description',
        'test',
        '%install',
        'mkdir -p %{buildroot}/usr/share/keeltest',
        'echo hello > %{buildroot}/usr/share/keeltest/hello.txt',
        'echo world > %{buildroot}/usr/share/keeltest/world.txt',
        '%files',
        '/usr/share/keeltest/hello.txt',
        '/usr/share/keeltest/world.txt',
        '',
      ].join('\n'),
    );
    sh('rpmbuild', ['--quiet', '--define', `_topdir ${w}/rpmbuild`, '-bb', `${w}/rpmbuild/SPECS/keeltest.spec`]);
    const root = path.join(w, 'root');
    fs.mkdirSync(path.join(root, 'usr/share/keeltest'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/share/keeltest/hello.txt'), 'hello\n');
    fs.writeFileSync(path.join(root, 'usr/share/keeltest/world.txt'), 'world\n');
    fs.mkdirSync(path.join(root, 'usr/share/unowned'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/share/unowned/notes'), 'no package\n');
    sh('rpm', ['--root', root, '--dbpath', '/usr/lib/sysimage/rpm', '--initdb']);
    const rpmFile = fs.readdirSync(path.join(w, 'rpmbuild/RPMS/noarch'))[0]!;
    sh('rpm', [
      '--root',
      root,
      '--dbpath',
      '/usr/lib/sysimage/rpm',
      '-i',
      '--nodeps',
      '--justdb',
      path.join(w, 'rpmbuild/RPMS/noarch', rpmFile),
    ]);
    fs.rmSync(path.join(root, 'usr/lib/sysimage/rpm/.rpm.lock'), { force: true });
    const img = tmpdir('keel-rpm-img-');
    makeOciImage(img, { layers: [tarDir(root)], labels: { 'containers.bootc': '1' } });
    const out = tmpdir('keel-rpm-out-');
    const r = await runAction({
      action: 'rechunk',
      inputs: { image: `oci:${img}:latest`, output: out, 'max-layers': '8' },
    });
    expect(errors(r)).toEqual([]);
    expect(r.stdout).toMatch(/rpm: \d+ paths owned \(usr\/lib\/sysimage\/rpm\)/);
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    const layerOf = (c: string) => report.layers.find((l: { components: string[] }) => l.components.includes(c));
    expect(layerOf('pkg:keeltest')?.files).toBe(2);
    expect(layerOf('db:usr/lib/sysimage/rpm')?.id).toBe('c:db:usr/lib/sysimage/rpm');
    expect(layerOf('dir:usr/share/unowned')).toBeDefined();
  });
});
