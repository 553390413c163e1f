import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { asRoot, type CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';

/**
 * Bootable disks from an unpacked rootfs, without root-only loop devices: ext4 via
 * `mke2fs -d`, a FAT EFI system partition via mtools, GPT via sfdisk on a plain file.
 * Used by smoke-boot (direct and uefi backends) and build-disk (qcow2/raw).
 */
const MiB = 1024 * 1024;
export const GPT_ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const GPT_ROOT_X86_64 = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';

/** A stable UUID derived from a seed (so the same image gives the same disk). */
export function seededUuid(seed: string): string {
  const h = crypto.createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export interface Usage {
  bytes: number;
  inodes: number;
}

/** What a layered image's final filesystem needs (from its index: no root-only walk needed). */
export function usageOf(index: Map<string, { type: string; size: number }>): Usage {
  let bytes = 0;
  for (const e of index.values()) if (e.type === 'file') bytes += e.size;
  return { bytes, inodes: index.size };
}

/** Bytes and inodes a directory tree needs (apparent sizes); needs to read every directory. */
export function treeUsage(dir: string): Usage {
  let bytes = 0;
  let inodes = 0;
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    inodes++;
    if (st.isFile()) bytes += st.size;
    else if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return { bytes, inodes };
}

export async function makeExt4(
  rootDir: string,
  out: string,
  runner: CommandRunner,
  opts: { label?: string; uuid?: string; headroomMiB?: number; usage?: Usage } = {},
): Promise<{ size: number }> {
  // An unpacked rootfs has root-only directories: callers that are not root pass the usage
  // computed from the image index.
  const { bytes, inodes } = opts.usage ?? treeUsage(rootDir);
  // Metadata, journal and free space for the first boot (journald, tmpfiles, machine-id).
  const size = Math.ceil((bytes * 1.25 + (opts.headroomMiB ?? 512) * MiB) / MiB) * MiB;
  fs.rmSync(out, { force: true });
  const args = [
    '-q',
    '-F',
    '-t',
    'ext4',
    '-L',
    opts.label ?? 'root',
    '-N',
    String(Math.ceil(inodes * 1.5) + 8192),
    '-E',
    'root_owner=0:0',
  ];
  if (opts.uuid) args.push('-U', opts.uuid);
  args.push('-d', rootDir, out, `${size / 1024}k`);
  const [cmd, a] = asRoot('mke2fs', args);
  await runner.run(cmd, a, { env: { E2FSPROGS_FAKE_TIME: '1' } });
  if (process.getuid?.() !== 0) await runner.run('sudo', ['-n', 'chown', String(process.getuid?.()), out]);
  return { size };
}

export async function makeEsp(
  out: string,
  files: { src: string; dest: string }[],
  runner: CommandRunner,
  opts: { label?: string; volumeId?: string } = {},
): Promise<{ size: number }> {
  const payload = files.reduce((n, f) => n + fs.statSync(f.src).size, 0);
  const size = Math.max(64, Math.ceil((payload * 1.2) / MiB) + 16) * MiB;
  fs.rmSync(out, { force: true });
  await runner.run('mkfs.vfat', [
    '-C',
    '-F',
    '32',
    '-n',
    opts.label ?? 'ESP',
    '-i',
    opts.volumeId ?? '4b45454c',
    out,
    String(size / 1024),
  ]);
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.dest.replace(/^\/+/, '').split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const env = { MTOOLS_SKIP_CHECK: '1' };
  for (const d of [...dirs].sort()) await runner.run('mmd', ['-i', out, `::/${d}`], { env });
  for (const f of files)
    await runner.run('mcopy', ['-i', out, '-o', f.src, `::/${f.dest.replace(/^\/+/, '')}`], { env });
  return { size };
}

export interface GptPart {
  image: string;
  type: string;
  uuid: string;
  name: string;
}

/** Lays partition images out on a GPT disk image (1 MiB aligned) with sfdisk. */
export async function assembleGpt(
  out: string,
  parts: GptPart[],
  runner: CommandRunner,
  diskUuid: string,
): Promise<{ offsets: number[] }> {
  const align = (n: number) => Math.ceil(n / MiB) * MiB;
  let off = MiB;
  const offsets: number[] = [];
  const lines = ['label: gpt', `label-id: ${diskUuid}`, 'unit: sectors', 'first-lba: 2048'];
  for (const p of parts) {
    const size = align(fs.statSync(p.image).size);
    offsets.push(off);
    lines.push(`start=${off / 512}, size=${size / 512}, type=${p.type}, uuid=${p.uuid}, name="${p.name}"`);
    off += size;
  }
  const total = off + MiB;
  fs.rmSync(out, { force: true });
  fs.closeSync(fs.openSync(out, 'w'));
  fs.truncateSync(out, total);
  await runner.run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', out], { input: `${lines.join('\n')}\n` });
  for (let i = 0; i < parts.length; i++) {
    await pipeline(
      fs.createReadStream(parts[i]!.image, { highWaterMark: 4 * MiB }),
      fs.createWriteStream(out, { flags: 'r+', start: offsets[i] }),
    );
  }
  return { offsets };
}

export interface UefiDiskSpec {
  rootfsDir: string;
  usage?: Usage;
  kernel: string;
  initrd: string;
  /** Kernel command line (root=PARTUUID=… is added). */
  cmdline: string;
  out: string;
  workDir: string;
  seed: string;
  title: string;
}

/** A GPT disk: an ESP with systemd-boot, kernel, initramfs and one entry, plus the ext4 root. */
export async function buildUefiDisk(
  spec: UefiDiskSpec,
  runner: CommandRunner,
  log: Logger,
): Promise<{ rootPartUuid: string }> {
  const boot = ['/usr/lib/systemd/boot/efi/systemd-bootx64.efi', '/usr/lib/systemd-boot/systemd-bootx64.efi'].find(
    (p) => fs.existsSync(p),
  );
  if (!boot) throw new Error('systemd-bootx64.efi not found: install systemd-boot-efi');
  const rootUuid = seededUuid(`${spec.seed}/root`);
  fs.mkdirSync(spec.workDir, { recursive: true });
  const loaderConf = path.join(spec.workDir, 'loader.conf');
  const entry = path.join(spec.workDir, 'keel.conf');
  fs.writeFileSync(loaderConf, 'default keel.conf\ntimeout 0\nconsole-mode keep\n');
  fs.writeFileSync(
    entry,
    `title ${spec.title}\nlinux /keel/vmlinuz\ninitrd /keel/initramfs.img\noptions root=PARTUUID=${rootUuid} rw ${spec.cmdline}\n`,
  );
  const esp = path.join(spec.workDir, 'esp.img');
  const root = path.join(spec.workDir, 'root.img');
  await makeEsp(
    esp,
    [
      { src: boot, dest: 'EFI/BOOT/BOOTX64.EFI' },
      { src: loaderConf, dest: 'loader/loader.conf' },
      { src: entry, dest: 'loader/entries/keel.conf' },
      { src: spec.kernel, dest: 'keel/vmlinuz' },
      { src: spec.initrd, dest: 'keel/initramfs.img' },
    ],
    runner,
  );
  await makeExt4(spec.rootfsDir, root, runner, {
    label: 'root',
    uuid: seededUuid(`${spec.seed}/rootfs`),
    usage: spec.usage,
  });
  await assembleGpt(
    spec.out,
    [
      { image: esp, type: GPT_ESP, uuid: seededUuid(`${spec.seed}/esp`), name: 'ESP' },
      { image: root, type: GPT_ROOT_X86_64, uuid: rootUuid, name: 'root' },
    ],
    runner,
    seededUuid(`${spec.seed}/disk`),
  );
  fs.rmSync(esp, { force: true });
  fs.rmSync(root, { force: true });
  log.info(
    `built GPT disk ${spec.out} (${(fs.statSync(spec.out).size / MiB).toFixed(0)} MiB): ESP with systemd-boot + ext4 root PARTUUID=${rootUuid}`,
  );
  return { rootPartUuid: rootUuid };
}
