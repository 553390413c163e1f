import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { asRoot, type CommandRunner } from '../../lib/exec.js';
import type { Logger } from '../../lib/log.js';
import { theKernel } from '../../lib/rootfs/kernel.js';
import type { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { joinInside } from '../../lib/safe-path.js';
import { featureFile, transferFile } from '../../lib/sysext/sysupdate.js';
import { makeExt4, usageOf } from '../../lib/vm/disk.js';
import { chooseAccel } from '../../lib/vm/probe.js';
import { bootWithRetry, TEST_CONSOLE_ARGS, type BootResult } from '../../lib/vm/qemu.js';
import { removeTree, unpackRootfs } from '../../lib/vm/unpack.js';
import { DEFAULT_FAILURE, VerdictMatcher } from '../../lib/vm/verdict.js';
import {
  PROBE_DIR,
  PROBE_UNIT,
  probePatterns,
  probeReport,
  probeScript,
  probeUnit,
  type ProbeReport,
} from './probe.js';

/**
 * The boot test of an extension: the pinned base booted for real (direct kernel boot of an ext4
 * copy of its root, as smoke-boot does), with the extension in /var/lib/extensions/ of that
 * throw-away disk and a probe unit that reports from inside the guest (see probe.ts). Where the
 * merged guest has systemd-sysupdate, QEMU's user network lets it fetch the published directory
 * from a loopback HTTP server on the host (10.0.2.2 in the guest). QEMU is reaped on every path
 * (bootAndWatch), the server is closed and the work directory removed by the caller.
 */
export interface SysextBootRequest {
  base: LayeredRootfs;
  /** The extension image and its published directory (SHA256SUMS, signature, transfer files). */
  image: string;
  publishDir: string;
  name: string;
  version: string;
  architecture: string;
  probeCommand: string;
  /** The guest can run systemd-sysupdate after the merge (in the base or the extension). */
  sysupdate: boolean;
  signed: boolean;
  /** Binary public key for /etc/systemd/import-pubring.gpg (signed only). */
  publicKey?: string;
  accel: 'auto' | 'kvm' | 'tcg';
  memoryMiB: number;
  timeoutMs: number;
  workDir: string;
  serialLog: string;
}

export interface SysextBootOutcome extends BootResult {
  attempts: number;
  accel: 'kvm' | 'tcg';
  accelWhy: string;
  probe: ProbeReport;
  /** Files the guest fetched from the loopback server. */
  fetched: string[];
}

/** Serves exactly the files of `dir` (by basename, GET/HEAD) on 127.0.0.1; records what was fetched. */
async function serveDirectory(dir: string): Promise<{ port: number; fetched: string[]; close: () => Promise<void> }> {
  const files = new Map(fs.readdirSync(dir).map((n) => [`/${encodeURIComponent(n)}`, path.join(dir, n)]));
  const fetched: string[] = [];
  const server = http.createServer((req, res) => {
    const file = files.get(new URL(req.url ?? '/', 'http://x').pathname);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !file) {
      res.writeHead(404).end();
      return;
    }
    fetched.push(path.basename(file));
    res.writeHead(200, { 'content-length': fs.statSync(file).size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    fetched,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Writes a file into the unpacked (root-owned) guest tree; `rel` may not pass a symlink of the image. */
async function put(
  root: string,
  rel: string,
  content: string | Buffer,
  mode: string,
  runner: CommandRunner,
  scratch: string,
) {
  const dest = joinInside(root, rel);
  const src = path.join(scratch, `put-${crypto.randomUUID()}`);
  fs.writeFileSync(src, content);
  const [cmd, args] = asRoot('install', ['-D', '-m', mode, '-o', '0', '-g', '0', src, dest]);
  await runner.run(cmd, args);
  fs.rmSync(src, { force: true });
}

async function link(root: string, rel: string, target: string, runner: CommandRunner) {
  const dest = joinInside(root, rel);
  const [mk, mkArgs] = asRoot('mkdir', ['-p', path.dirname(dest)]);
  await runner.run(mk, mkArgs);
  const [cmd, args] = asRoot('ln', ['-sfn', target, dest]);
  await runner.run(cmd, args);
}

export async function bootWithExtension(
  req: SysextBootRequest,
  runner: CommandRunner,
  log: Logger,
): Promise<SysextBootOutcome> {
  const index = await req.base.index();
  const kver = theKernel(index, { files: ['vmlinuz', 'initramfs.img'], refusal: 'cannot boot the base' });
  const scratch = path.join(req.workDir, 'boot');
  fs.mkdirSync(scratch, { recursive: true });
  const kernel = path.join(scratch, 'vmlinuz');
  const initrd = path.join(scratch, 'initramfs.img');
  const files = await req.base.readFiles([`usr/lib/modules/${kver}/vmlinuz`, `usr/lib/modules/${kver}/initramfs.img`]);
  fs.writeFileSync(kernel, files.get(`usr/lib/modules/${kver}/vmlinuz`)!);
  fs.writeFileSync(initrd, files.get(`usr/lib/modules/${kver}/initramfs.img`)!);

  const server = req.sysupdate ? await serveDirectory(req.publishDir) : undefined;
  try {
    const root = path.join(scratch, 'rootfs');
    await unpackRootfs(req.base, root, runner, log);
    const nonce = crypto.randomBytes(8).toString('hex');
    const file = path.basename(req.image);
    const [cp, cpArgs] = asRoot('install', [
      '-D',
      '-m',
      '0444',
      '-o',
      '0',
      '-g',
      '0',
      req.image,
      joinInside(root, `var/lib/extensions/${file}`),
    ]);
    await runner.run(cp, cpArgs);
    await put(
      root,
      `${PROBE_DIR}/probe.sh`,
      probeScript({
        nonce,
        name: req.name,
        version: req.version,
        file,
        probeCommand: req.probeCommand,
        sysupdate: req.sysupdate,
        signed: req.signed,
      }),
      '0755',
      runner,
      scratch,
    );
    if (req.probeCommand)
      await put(root, `${PROBE_DIR}/probe-command`, `${req.probeCommand}\n`, '0644', runner, scratch);
    await put(root, `etc/systemd/system/${PROBE_UNIT}`, probeUnit(), '0644', runner, scratch);
    await link(root, `etc/systemd/system/multi-user.target.wants/${PROBE_UNIT}`, `../${PROBE_UNIT}`, runner);
    if (server) {
      // The same transfer the client gets, pointed at the loopback server, its feature enabled.
      const transfer = transferFile({
        name: req.name,
        architecture: req.architecture,
        baseUrl: `http://10.0.2.2:${server.port}/`,
      });
      await put(root, `etc/sysupdate.d/${req.name}.transfer`, transfer, '0644', runner, scratch);
      await put(
        root,
        `etc/sysupdate.d/${req.name}.feature`,
        featureFile({ name: req.name, description: req.name }),
        '0644',
        runner,
        scratch,
      );
      await put(
        root,
        `etc/sysupdate.d/${req.name}.feature.d/keel-probe.conf`,
        '[Feature]\nEnabled=true\n',
        '0644',
        runner,
        scratch,
      );
      if (req.publicKey) {
        // systemd 257 reads import-pubring.gpg; later versions import-pubring.pgp.
        for (const n of ['import-pubring.gpg', 'import-pubring.pgp'])
          await put(root, `etc/systemd/${n}`, fs.readFileSync(req.publicKey), '0644', runner, scratch);
      }
    }
    const usage = usageOf(index);
    usage.bytes += fs.statSync(req.image).size;
    usage.inodes += 32;
    const disk = path.join(scratch, 'disk.img');
    await makeExt4(root, disk, runner, { label: 'root', usage });
    await removeTree(root, runner);

    const accel = await chooseAccel(req.accel, kernel, path.join(scratch, 'kvm-probe'), log, { runner });
    const { pass, fail } = probePatterns(nonce);
    const lines: string[] = [];
    log.info(`booting the base with ${file} (${accel.accel.toUpperCase()}: ${accel.why})`);
    const r = await bootWithRetry(
      {
        accel: accel.accel,
        memoryMiB: req.memoryMiB,
        cpus: 2,
        kernel: { path: kernel, initrd, append: `root=/dev/vda rw rd.timeout=90 ${TEST_CONSOLE_ARGS}` },
        drives: [{ file: disk, format: 'raw', interface: 'virtio' }],
        userNet: Boolean(server),
      },
      {
        timeoutMs: req.timeoutMs,
        quietMs: 300_000,
        matcher: new VerdictMatcher([pass], [fail, ...DEFAULT_FAILURE]),
        logFile: req.serialLog,
        log,
        onLine: (l) => lines.push(l),
        workDir: scratch,
        runner,
      },
    );
    return {
      ...r,
      accel: accel.accel,
      accelWhy: accel.why,
      probe: probeReport(nonce, lines),
      fetched: server?.fetched ?? [],
    };
  } finally {
    await server?.close();
  }
}
