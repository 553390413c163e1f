// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asRoot, processRunner } from '../../actions/lib/exec.js';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/validate/src/main.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';
import { makeOciImage } from '../harness/tools.js';

/**
 * validate's run() through recordingIO and a fake runner: fixture images (OCI layouts, or a
 * "mounted" containers-storage image played by a fake podman) → outputs, report, log levels,
 * and the podman argv; input problems fail before anything runs.
 */
const K = '6.12.0-table';
let work: string;

/** A newc cpio archive holding `members` (each file's content is its name). */
function newc(members: string[]): Buffer {
  const parts: Buffer[] = [];
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const entry = (name: string, data: Buffer, mode: number) => {
    const fields = [1, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0];
    const head = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
    const nameBuf = Buffer.from(`${name}\0`);
    parts.push(head, nameBuf, pad4(head.length + nameBuf.length), data, pad4(data.length));
  };
  for (const m of members) entry(m, Buffer.from(m), 0o100644);
  entry('TRAILER!!!', Buffer.alloc(0), 0);
  return Buffer.concat(parts);
}

const initramfs = (extra: string[] = []) =>
  newc([
    `usr/lib/modules/${K}/virtio_blk.ko`,
    `usr/lib/modules/${K}/ext4.ko`,
    'usr/lib/ostree/ostree-prepare-root',
    ...extra,
  ]);

function files(over: Record<string, string | Buffer> = {}): Record<string, string | Buffer> {
  return {
    [`usr/lib/modules/${K}/vmlinuz`]: 'kernel',
    [`usr/lib/modules/${K}/initramfs.img`]: initramfs(),
    'usr/lib/os-release': 'NAME="Table"\nID=table\n',
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
    'usr/bin/ostree': 'ostree',
    ...over,
  };
}

let n = 0;
function oci(over: Record<string, string | Buffer> = {}, labels: Record<string, string> = {}): string {
  const img = makeOciImage(path.join(work, `img-${++n}`), {
    layers: [files(over)],
    labels: { 'containers.bootc': '1', 'ostree.linux': K, ...labels },
  });
  return `oci:${img.dir}:latest`;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-validate-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function validate(image: string, extra: Record<string, string> = {}, runner = fakeRunner()) {
  const io = recordingIO({ image, ...extra }, { runnerTemp: fs.mkdtempSync(path.join(work, 'temp-')) }, runner);
  let error: Error | undefined;
  await run(io).catch((e: Error) => void (error = e));
  const report = io.outputs.report ? JSON.parse(fs.readFileSync(io.outputs.report, 'utf8')) : undefined;
  const status = Object.fromEntries(
    (report?.checks ?? []).map((c: { id: string; status: string }) => [c.id, c.status]),
  );
  const lines = (level: string) => io.logs.filter((l) => l.level === level).map((l) => l.message);
  return { io, error, report, status, lines, runner };
}

describe('validate run()', () => {
  it.each([
    [
      'a generic image with the defaults',
      {},
      {},
      {},
      'true',
      { 'initramfs-generic': 'pass', 'initramfs-size': 'warn' },
    ],
    [
      'a host-only initramfs',
      { [`usr/lib/modules/${K}/initramfs.img`]: initramfs(['usr/lib/dracut/hostonly-files']) },
      {},
      {},
      'false',
      { 'initramfs-generic': 'fail' },
    ],
    [
      'a host-only initramfs (loaded-kernel-modules.txt, no usr merge)',
      { [`usr/lib/modules/${K}/initramfs.img`]: initramfs(['lib/dracut/loaded-kernel-modules.txt']) },
      {},
      {},
      'false',
      { 'initramfs-generic': 'fail' },
    ],
    [
      'a missing bootc label in the warn tier',
      {},
      { 'containers.bootc': '' },
      { 'warn-checks': 'bootc-label\ninitramfs-size' },
      'true',
      { 'bootc-label': 'warn' },
    ],
    ['the size hint made gating', {}, {}, { 'warn-checks': 'none' }, 'false', { 'initramfs-size': 'fail' }],
    [
      'a size hint the image meets',
      {},
      {},
      { 'min-initramfs-mb': '0.0001', 'warn-checks': 'none' },
      'true',
      { 'initramfs-size': 'pass' },
    ],
  ])('%s', async (_what, over, labels, extra, passed, expected) => {
    const r = await validate(oci(over, labels), extra);
    expect(r.io.outputs.passed).toBe(passed);
    expect(r.status).toMatchObject(expected);
    expect(r.report.checks).toHaveLength(14);
    expect(r.status['install-media']).toBe('skip');
    expect(r.error === undefined).toBe(passed === 'true');
    for (const [id, s] of Object.entries(expected)) {
      const level = s === 'fail' ? 'error' : s === 'warn' ? 'warning' : 'info';
      expect(r.lines(level).some((l) => l.startsWith(`${s.toUpperCase()} ${id}:`))).toBe(true);
    }
    if (r.status['initramfs-generic'] === 'fail')
      expect(r.error?.message).toMatch(/initramfs-generic \(host-only initramfs: dracut wrote /);
    expect(r.io.groups).toEqual(['open the image', 'run the checks']);
    expect(r.runner.calls).toEqual([]);
  });

  describe('install-media: the declared media, judged before any push', () => {
    const LIVE = {
      'usr/bin/dracut': '#!/bin/bash',
      'usr/bin/bash': 'bash',
      'usr/lib/dracut/modules.d/90dmsquash-live/module-setup.sh': 'instmods squashfs loop iso9660 overlay',
      'tmp/.keep': '',
      [`usr/lib/modules/${K}/kernel/fs/squashfs/squashfs.ko.xz`]: 'm',
      [`usr/lib/modules/${K}/kernel/drivers/block/loop.ko.zst`]: 'm',
      [`usr/lib/modules/${K}/kernel/fs/overlayfs/overlay.ko`]: 'm',
      [`usr/lib/modules/${K}/modules.builtin`]: 'kernel/fs/isofs/isofs.ko\n',
    };
    const drop = (p: string) => Object.fromEntries(Object.entries(LIVE).filter(([k]) => k !== p));
    const media = async (m: string, over: Record<string, string | Buffer>, only = ['install-media']) => {
      const r = await validate(oci(over), { 'install-media': m, checks: only.join('\n') });
      return { ...r, evidence: r.report.checks[0].evidence as string };
    };

    it('live-iso passes with dracut, dmsquash-live, /tmp and the live modules (module or built in)', async () => {
      const r = await media('live-iso', LIVE);
      expect([r.status['install-media'], r.io.outputs.passed]).toEqual(['pass', 'true']);
      expect(r.evidence).toMatch(
        /^live-iso: the kernel .*, dracut, bash, dracut’s dmsquash-live module, \/tmp, kernel modules squashfs, loop, isofs, overlay$/,
      );
    });

    it.each([
      [
        'dmsquash-live',
        'usr/lib/dracut/modules.d/90dmsquash-live/module-setup.sh',
        /missing dracut’s dmsquash-live module \(\/usr\/lib\/dracut\/modules\.d\/\*dmsquash-live is missing; Debian and Fedora: install dracut-live\)/,
      ],
      ['dracut', 'usr/bin/dracut', /missing dracut \(build-disk runs the image’s own dracut/],
      [
        'the squashfs module',
        `usr/lib/modules/${K}/kernel/fs/squashfs/squashfs.ko.xz`,
        /kernel modules squashfs are neither in usr\/lib\/modules\/6\.12\.0-table nor built in/,
      ],
      ['/tmp', 'tmp/.keep', /missing \/tmp \(dracut builds the initramfs under \/tmp\)/],
    ])('live-iso fails without %s, by check name, before any push', async (_what, gone, evidence) => {
      const r = await media('live-iso', drop(gone), ['all']);
      expect([r.status['install-media'], r.io.outputs.passed]).toEqual(['fail', 'false']);
      const check = r.report.checks.find((c: { id: string }) => c.id === 'install-media');
      expect(check.evidence).toMatch(evidence);
      expect(r.error?.message).toMatch(/install-media \(live-iso: missing /);
      expect(r.lines('error')).toContainEqual(expect.stringMatching(/^FAIL install-media: live-iso: missing/));
    });

    it('disk needs the initramfs next to the kernel', async () => {
      expect((await media('disk', {})).status['install-media']).toBe('pass');
      const without = makeOciImage(path.join(work, 'no-initramfs'), {
        layers: [Object.fromEntries(Object.entries(files()).filter(([p]) => !p.endsWith('initramfs.img')))],
      });
      const r = await validate(`oci:${without.dir}:latest`, { 'install-media': 'disk', checks: 'install-media' });
      expect(r.report.checks[0]).toMatchObject({
        status: 'fail',
        evidence: expect.stringMatching(
          /^disk: missing the initramfs \/usr\/lib\/modules\/<kver>\/initramfs\.img \(the disk boots the image’s own initramfs\); present: the kernel/,
        ),
      });
    });

    it('bib-iso needs bootc and a Fedora/CentOS/RHEL-family os-release', async () => {
      const debian = await media('bib-iso', { 'usr/lib/os-release': 'ID=keel-os\nID_LIKE="debian"\n' });
      expect(debian.status['install-media']).toBe('fail');
      expect(debian.evidence).toMatch(
        /missing bootc \(bootc-image-builder installs the image with bootc install\); .*ID=keel-os ID_LIKE="debian" is not in the fedora\/centos\/rhel family/,
      );
      const fedora = await media('bib-iso', {
        'usr/lib/os-release': 'ID=acme\nID_LIKE="rhel centos fedora"\n',
        'usr/bin/bootc': 'bootc',
      });
      expect(fedora.status['install-media']).toBe('pass');
    });

    it('refuses an unknown install-media value naming the input', async () => {
      const r = await validate(oci(), { 'install-media': 'usb-stick' });
      expect(r.error?.message).toBe(
        `Input 'install-media' has value "usb-stick": expected one of: none, live-iso, bib-iso, disk`,
      );
      expect(r.io.outputs).toEqual({});
    });
  });

  it('runs only the checks asked for', async () => {
    const r = await validate(oci(), { checks: 'one-kernel\nos-release' });
    expect(r.report.checks.map((c: { id: string }) => c.id)).toEqual(['one-kernel', 'os-release']);
    expect(r.io.outputs.passed).toBe('true');
  });

  it('mounts a local image read-only and runs bootc container lint in it (podman argv)', async () => {
    const root = path.join(work, 'mounted');
    for (const [p, c] of Object.entries(files({ 'usr/bin/bootc': 'bootc' }))) {
      fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
      fs.writeFileSync(path.join(root, p), c);
    }
    const id = 'e'.repeat(64);
    // podman plays the storage; the mounted tree is a real directory, read by the real find and
    // tar when this test is not root (through `sudo -n`, dropped here: the tree is the test's own).
    const playStorage = (c: Call) => {
      const [cmd, args] = c.cmd === 'sudo' ? [c.args[1]!, c.args.slice(2)] : [c.cmd, c.args];
      if (cmd === 'find' || cmd === 'tar') return processRunner().run(cmd, args, c.opts);
      const a = args.join(' ');
      if (a.includes('image inspect'))
        return JSON.stringify([
          { Id: id, Labels: { 'containers.bootc': '1', 'ostree.linux': K }, Digest: 'sha256:' + 'd'.repeat(64) },
        ]);
      if (a.includes('image mount')) return `${root}\n`;
      if (a.includes('container lint')) return 'Checks passed: 9';
      return '';
    };
    const r = await validate(
      'containers-storage:localhost/table:1',
      { 'warn-checks': 'initramfs-size' },
      fakeRunner(playStorage),
    );
    expect(r.io.outputs.passed).toBe('true');
    expect(r.status['bootc-lint']).toBe('pass');
    const lint = asRoot('podman', [
      'run',
      '--rm',
      '--pull=never',
      '--net=none',
      '--entrypoint',
      'bootc',
      '--',
      'localhost/table:1',
      'container',
      'lint',
    ]);
    const lines = r.runner.lines().map((l) => l.replace(/^sudo -n /, ''));
    expect(lines).toContain([lint[0], ...lint[1]].join(' ').replace(/^sudo -n /, ''));
    // Mounted by ID (a moved tag cannot race), read in place: nothing exported.
    expect(lines.slice(0, 2)).toEqual([
      'podman image inspect --format json -- localhost/table:1',
      `podman image mount -- ${id}`,
    ]);
    expect(lines.filter((l) => l.startsWith('skopeo'))).toEqual([]);
    expect(lines.at(-1)).toBe(`podman image unmount -- ${id}`);
  });

  it.each([
    [
      'an unknown check',
      { checks: 'one-kernel\nno-such' },
      /^Input 'checks' has value .*item "no-such": expected all or one of one-kernel/,
    ],
    [
      'an unknown warn check',
      { 'warn-checks': 'sizes' },
      /^Input 'warn-checks' has value "sizes": item "sizes": expected none or one of one-kernel/,
    ],
    [
      'a zero size hint',
      { 'min-initramfs-mb': '0' },
      /^Input 'min-initramfs-mb' has value "0": expected a positive number of megabytes/,
    ],
    ['a bad image', { image: 'docker://x' }, /^Input 'image' has value "docker:\/\/x"/],
  ])('refuses %s before anything runs', async (_what, extra, message) => {
    const r = await validate(oci(), extra);
    expect(r.error?.message).toMatch(message);
    expect(r.io.outputs).toEqual({});
    expect(r.runner.calls).toEqual([]);
  });
});
