// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { SETTING_NAMES } from '../../actions/lib/settings.js';
import { run } from '../../actions/settings/src/main.js';
import { repoRoot } from '../../workflows-src/action-specs.js';
import { tmpdir } from '../harness/tools.js';

/**
 * settings' run(): the caller's declarations give each setting, a non-empty input overrides it,
 * and an override the declarations schema would refuse fails naming the input before any output.
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const example = path.join(repoRoot, 'declarations/distro.yaml');
const exampleText = fs.readFileSync(example, 'utf8');

/** A declarations file: the example's, with `extra` appended (a section given twice is refused, so replace). */
function declarations(extra: Record<string, string> = {}): string {
  const dir = tmpdir('keel-settings-');
  dirs.push(dir);
  let text = exampleText;
  for (const [section, body] of Object.entries(extra))
    text = text.replace(new RegExp(`^${section}:\\n(?:  .*\\n|\\s*\\n)*`, 'm'), `${section}:\n${body}\n`);
  const file = path.join(dir, 'distro.yaml');
  fs.writeFileSync(file, text);
  return file;
}

async function settings(inputs: Record<string, string>) {
  const io = recordingIO(inputs);
  await run(io);
  return io;
}

describe('settings run()', () => {
  it('gives the declarations’ values, lists newline-separated, the schema’s defaults where the file is silent', async () => {
    const io = await settings({ declarations: example });
    expect(io.outputs).toEqual({
      backend: 'direct',
      memory: '2048',
      cpus: '2',
      'boot-timeout': '900',
      'update-test': 'true',
      'kernel-args': '',
      'success-pattern': '',
      'failure-pattern': '',
      checks: 'all',
      'warn-checks': 'initramfs-size',
      'min-initramfs-mb': '30',
      'require-ostree-module': 'auto',
      'initramfs-modules': 'virtio_blk\next4\nsquashfs\noverlay',
      'repo-globs': '',
      'var-allow': '',
      'iso-name': 'keel-os',
      'iso-label': 'KEEL_OS_LIVE',
      'iso-type': 'iso',
      'iso-backend': 'live',
      'iso-boot-test': 'true',
      'iso-boot-timeout': '1200',
      'publish-untested': 'false',
      'ia-identifier': 'keel-os-live-iso-{date}',
      'ia-metadata': [
        'mediatype:software',
        'collection:opensource',
        'title:Keel OS live ISO {date}',
        'description:Live ISO of Keel OS built from image {digest}',
        'subject:linux',
        'subject:debian',
        'subject:bootc',
        'subject:keel',
        'creator:Keel project',
        'licenseurl:https://www.apache.org/licenses/LICENSE-2.0',
      ].join('\n'),
      'ia-torrent-timeout': '3600',
      'ia-require-torrent': 'false',
      'site-repository': 'keel-project/keel-site',
      'site-files': 'src/lib/release.ts',
      'site-base': 'main',
      'site-branch-prefix': 'keel/release-',
      'site-auto-merge': 'true',
      // site.constants: the first one, and the others as NAME=value lines (the site-bump hop's inputs).
      'site-constant': 'LATEST_ISO_DATE',
      'site-value': '{date}',
      'site-extra-constants': 'LATEST_ISO_FILE={file}',
    });
    expect(Object.keys(io.outputs).sort()).toEqual([...SETTING_NAMES].sort());
  });

  it('reads the escape hatches and boot settings a caller declares', async () => {
    const file = declarations({
      validate: '  checks: [one-kernel, kernel-files, passwd]\n  warn-checks: [none]\n  var-allow: [/var/lib/flatpak]',
      'smoke-boot': '  backend: uefi\n  kernel-args: "console=ttyS0 quiet"\n  update-test: false',
    });
    const io = await settings({ declarations: file });
    expect(io.outputs).toMatchObject({
      checks: 'one-kernel\nkernel-files\npasswd',
      'warn-checks': 'none',
      'var-allow': '/var/lib/flatpak',
      backend: 'uefi',
      'kernel-args': 'console=ttyS0 quiet',
      'update-test': 'false',
      'min-initramfs-mb': '50',
      memory: '2048',
    });
  });

  it('a non-empty input overrides; empty, and 0 for a number, leave the declarations’ value', async () => {
    const io = await settings({
      declarations: example,
      memory: '4096',
      cpus: '0',
      'boot-timeout': '',
      'require-ostree-module': 'true',
      checks: 'one-kernel\npasswd',
      'kernel-args': 'quiet',
    });
    expect(io.outputs).toMatchObject({
      memory: '4096',
      cpus: '2',
      'boot-timeout': '900',
      'require-ostree-module': 'true',
      checks: 'one-kernel\npasswd',
      'kernel-args': 'quiet',
    });
    expect(io.summaries.join('\n')).toMatch(/`memory` \| `4096` \| input/);
  });

  it.each([
    ['memory', 'lots', /input memory: expected a number, got "lots"/],
    ['memory', '128', /input memory: .*256.*\(as declarations smoke-boot\.memory\)/],
    ['backend', 'kvm', /input backend: .*\(as declarations smoke-boot\.backend\)/],
    ['checks', 'one-kernel\nno-such-check', /input checks: .*\(as declarations validate\.checks\)/],
    ['var-allow', '/etc/passwd', /input var-allow: .*a path under \/var/],
    ['update-test', 'yes', /input update-test: expected true or false/],
    ['require-ostree-module', 'maybe', /input require-ostree-module: expected true, false or auto/],
  ])('a bad %s override (%j) fails naming the input, before any output', async (name, value, message) => {
    const io = recordingIO({ declarations: example, [name]: value });
    await expect(run(io)).rejects.toThrow(message);
    expect(io.outputs).toEqual({});
  });

  it('a section the declarations leave out gives empty settings, unless an input sets them (checked where set)', async () => {
    const text = exampleText.replace(/^(iso|internet-archive|site):\n(?: {2}.*\n|\s*\n)*/gm, '');
    const dir = tmpdir('keel-settings-bare-');
    dirs.push(dir);
    const file = path.join(dir, 'distro.yaml');
    fs.writeFileSync(file, text);
    const io = await settings({
      declarations: file,
      'ia-identifier': 'my-os-{date}',
      'ia-metadata': 'subject:a\nsubject:b',
    });
    expect(io.outputs).toMatchObject({
      'iso-name': '',
      'iso-boot-test': '',
      'site-repository': '',
      'site-constant': '',
      'ia-identifier': 'my-os-{date}',
      'ia-metadata': 'subject:a\nsubject:b',
      // A section an input brings in has the schema's defaults for the rest.
      'ia-torrent-timeout': '3600',
    });
    await expect(run(recordingIO({ declarations: file, 'ia-identifier': 'my os' }))).rejects.toThrow(
      /input ia-identifier: .*\(as declarations internet-archive\.identifier\)/,
    );
    await expect(run(recordingIO({ declarations: file, 'ia-metadata': 'no colon here' }))).rejects.toThrow(
      /input ia-metadata: expected key:value lines/,
    );
  });

  it('site constants: the declared list, or the inputs that replace its parts', async () => {
    const io = await settings({ declarations: example, 'site-constant': 'ISO_DATE', 'site-extra-constants': '' });
    expect(io.outputs).toMatchObject({
      'site-constant': 'ISO_DATE',
      'site-value': '{date}',
      'site-extra-constants': 'LATEST_ISO_FILE={file}',
    });
  });

  it.each([
    [
      'site-constant',
      { 'site-constant': 'ISO DATE' },
      /^input site-constant: "ISO DATE": expected an identifier \(as declarations site\.constants\)$/,
    ],
    [
      'site-extra-constants',
      { 'site-extra-constants': 'LATEST_ISO_FILE={file}\n9LIVES=x' },
      /^input site-extra-constants: "9LIVES": expected an identifier/,
    ],
    [
      'site-extra-constants',
      { 'site-extra-constants': 'no equals sign' },
      /^input site-extra-constants: expected NAME=value lines, got "no equals sign"$/,
    ],
  ])(
    'a bad %s override fails in the settings step, before any output (not after publishing)',
    async (_input, overrides, message) => {
      const io = recordingIO({ declarations: example, ...overrides });
      await expect(run(io)).rejects.toThrow(message);
      expect(io.outputs).toEqual({});
    },
  );

  it('a required setting that comes out empty fails naming where to set it, before any output', async () => {
    const bare = path.join(tmpdir('keel-settings-noiso-'), 'distro.yaml');
    dirs.push(path.dirname(bare));
    fs.writeFileSync(bare, exampleText.replace(/^iso:\n(?: {2}.*\n)*/m, ''));
    const io = recordingIO({ declarations: bare, required: 'iso-name\nmemory' });
    await expect(run(io)).rejects.toThrow(
      'iso-name is empty: set iso.name in your declarations, or the input iso-name',
    );
    expect(io.outputs).toEqual({});
    const given = await settings({ declarations: bare, required: 'iso-name', 'iso-name': 'my-os' });
    expect(given.outputs['iso-name']).toBe('my-os');
    await expect(run(recordingIO({ declarations: example, required: 'no-such' }))).rejects.toThrow(
      /Input 'required'.*no-such/,
    );
  });

  it('a declarations path that does not exist fails naming the input', async () => {
    const io = recordingIO({ declarations: path.join(tmpdir('keel-settings-none-'), 'distro.yaml') });
    await expect(run(io)).rejects.toThrow(/declarations/);
    expect(io.outputs).toEqual({});
  });

  it('without a declarations file the defaults apply, with a notice', async () => {
    const cwd = process.cwd();
    const empty = tmpdir('keel-settings-cwd-');
    dirs.push(empty);
    process.chdir(empty);
    try {
      const io = await settings({ memory: '3072' });
      expect(io.outputs).toMatchObject({
        memory: '3072',
        'boot-timeout': '1800',
        'min-initramfs-mb': '50',
        backend: 'direct',
      });
      expect(io.logs.filter((l) => l.level === 'notice').map((l) => l.message)).toEqual([
        "no declarations/distro.yaml: the settings are Keel's defaults and the inputs",
      ]);
    } finally {
      process.chdir(cwd);
    }
  });
});
