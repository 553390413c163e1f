import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from '../../lib/cleanup.js';
import { UserError } from '../../lib/errors.js';
import { writeSha256Sums } from '../../lib/checksums.js';
import { requireSpace, type SpaceCheckOptions } from '../../lib/disk-space.js';
import { openImage, registryLayerBytes } from '../../lib/image/open.js';
import type { ActionIO } from '../../lib/io.js';
import {
  bool,
  digestRef,
  existingPath,
  int,
  oneOf,
  readInputs,
  registryInputs,
  releaseDate,
  secret,
  spaceInputs,
  str,
} from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { requireSignatureGate, signatureGateInputs } from '../../lib/signature-gate.js';
import { code, fence, table } from '../../lib/summary.js';
import { releaseDateOf } from '../../lib/tags.js';
import { BIB_IMAGE, BIB_ROOTFS, bibSpaceNeeds, requireLoginPairs } from '../../lib/vm/bib.js';
import { removeTree } from '../../lib/vm/unpack.js';
import { bibBuild, liveDisk, liveIso, liveSpaceNeeds, type BootTest } from './build.js';
import { theKernel } from '../../lib/rootfs/kernel.js';
import { usageOf } from '../../lib/vm/disk.js';

export const inputs = {
  'image-ref': digestRef('install media must come from the exact digest that was tested'),
  type: oneOf(['iso', 'qcow2', 'raw'] as const, 'iso'),
  backend: oneOf(['live', 'bib'] as const, 'live'),
  'output-dir': str({ default: 'disk-out', expected: 'a directory for the artefact and SHA256SUMS' }),
  name: str({ pattern: /^[A-Za-z0-9._-]*$/, expected: 'a file-name stem of letters, digits, . _ -' }),
  config: existingPath('file'),
  'boot-test': bool(true),
  'release-date': releaseDate(),
  label: str({ pattern: /^[A-Z0-9_-]{0,32}$/, expected: 'an ISO volume label of A-Z 0-9 _ - (at most 32)' }),
  title: str({ expected: 'a boot menu title' }),
  'kernel-args': str({ pattern: /^[^\n]*$/, expected: 'kernel arguments on one line' }),
  'compression-level': int({ default: 15, min: 1, max: 22 }),
  'boot-timeout': int({ default: 1200, min: 30 }),
  accel: oneOf(['auto', 'kvm', 'tcg'] as const, 'auto'),
  memory: int({ default: 2048, min: 512 }),
  'bib-image': str({
    default: BIB_IMAGE,
    pattern: /@sha256:[0-9a-f]{64}$/,
    expected: 'a bootc-image-builder image pinned by digest',
  }),
  'bib-rootfs': oneOf(BIB_ROOTFS, 'btrfs'),
  'bib-username': str({ expected: "a user name for the bootc-image-builder image's registry" }),
  'bib-password': secret(),
  ...signatureGateInputs,
  ...registryInputs,
  ...spaceInputs,
};

/** The boot-passed output: a skipped test (boot-test: false, a bib medium) is never `true`. */
export type BootVerdict = 'true' | 'false' | 'skipped';

/** build-disk: install media from the pinned digest, boot-tested, with a flat SHA256SUMS. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const ref = inp['image-ref'];
  if (inp.backend === 'live' && inp.config)
    throw new UserError("Input 'config': only the bib backend reads a bootc-image-builder config");
  if (inp.backend === 'bib') requireLoginPairs(inp);
  const gate = await requireSignatureGate(inp, io, 'build-disk');
  // Install media only from a digest whose signature verifies, whichever backend builds them.
  const client = connect(ref, inp, io);
  const signature = await gate.check(client, ref, io);
  const date = inp['release-date'] ?? releaseDateOf(io.context.now());
  const repoName = ref.repository.split('/').pop()!;
  const name = inp.name || `${repoName}-${date}`;
  const ext = inp.type === 'iso' ? 'iso' : inp.type;
  const outDir = path.resolve(io.context.workspace, inp['output-dir']);
  fs.mkdirSync(outDir, { recursive: true });
  const artefact = path.join(outDir, `${name}.${ext}`);
  const runner = io.runner;
  const temp = io.context.runnerTemp;
  const space: SpaceCheckOptions = {
    hop: 'build-disk',
    margin: inp['space-margin-gib'],
    probe: io.context.freeSpace,
    log: io,
  };
  const workDir = fs.mkdtempSync(path.join(temp, 'keel-disk-'));
  const unregister = onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  const started = Date.now();
  let boot: BootTest | undefined;
  let skipped = '';
  let detail = '';
  try {
    if (inp.backend === 'bib') {
      requireSpace(bibSpaceNeeds(await registryLayerBytes(client, ref), workDir, inp.type), space);
      skipped = inp['boot-test']
        ? 'bootc-image-builder media are not boot-tested by build-disk (boot the digest with smoke-boot backend: bib)'
        : 'boot-test: false';
      detail = await bibBuild(
        {
          ref: ref.toString(),
          type: inp.type,
          outDir,
          artefact,
          config: inp.config || undefined,
          bibImage: inp['bib-image'],
          rootfs: inp['bib-rootfs'],
          workDir,
          logins: [
            { image: ref.toString(), username: inp.username, password: inp.password },
            { image: inp['bib-image'], username: inp['bib-username'], password: inp['bib-password'] },
          ],
        },
        runner,
        io,
      );
    } else {
      if (!inp['boot-test']) skipped = 'boot-test: false';
      ({ boot, detail } = await liveMedia(inp, { name, repoName, artefact, outDir, workDir, space }, io));
    }
  } finally {
    await removeTree(workDir, runner).catch(() => undefined);
    unregister();
  }
  const sums = await writeSha256Sums([artefact], path.join(outDir, 'SHA256SUMS'));
  const sha256 = sums.entries[0]!.sha256;
  const verdict: BootVerdict = boot ? (boot.passed ? 'true' : 'false') : 'skipped';
  io.setOutput('path', artefact);
  io.setOutput('sha256', sha256);
  io.setOutput('sha256sums', sums.path);
  io.setOutput('name', path.basename(artefact));
  io.setOutput('boot-passed', verdict);
  if (boot) {
    io.setOutput('boot-seconds', boot.seconds.toFixed(1));
    io.setOutput('serial-log', boot.serialLog);
  } else {
    io.notice(`build-disk: boot test skipped (${skipped}): boot-passed is 'skipped', never 'true'`);
  }
  const size = fs.statSync(artefact).size;
  await io.summary(
    `### build-disk ${boot && !boot.passed ? '❌' : boot ? '✅' : '⏭️ (not boot-tested)'}\n\n${table(
      ['image', 'signature', 'artefact', 'size', 'sha256', 'boot test', 'time'],
      [
        [
          code(ref.toString()),
          signature,
          code(path.basename(artefact)),
          `${(size / 1048576).toFixed(0)} MiB`,
          code(sha256),
          boot
            ? `${boot.passed ? 'passed' : 'failed'} in ${boot.seconds.toFixed(1)} s (${boot.accel}): ${boot.reason}`
            : `skipped: ${skipped}`,
          `${((Date.now() - started) / 1000).toFixed(0)} s`,
        ],
      ],
    )}\n${detail}\nSHA256SUMS lists basenames only: \`sha256sum -c SHA256SUMS\` works wherever the two files sit side by side.\n${
      boot && !boot.passed ? `\nLast lines of the boot test:\n\n${fence(boot.tail.join('\n'))}` : ''
    }`,
  );
  if (boot && !boot.passed) throw new UserError(`the boot test of ${path.basename(artefact)} failed: ${boot.reason}`);
}

/** The live backend: download, index, space check, then the ISO or the disk, boot-tested. */
async function liveMedia(
  inp: ReturnType<typeof readInputs<typeof inputs>>,
  at: { name: string; repoName: string; artefact: string; outDir: string; workDir: string; space: SpaceCheckOptions },
  io: ActionIO,
): Promise<{ boot?: BootTest; detail: string }> {
  const ref = inp['image-ref'];
  const { runner } = io;
  const image = await openImage(
    { kind: 'registry', ref },
    {
      access: inp,
      log: io,
      runner,
      tmpDir: at.workDir,
      beforeDownload: (bytes, dir) => requireSpace([{ dir, bytes, what: 'the image layers' }], at.space),
    },
  );
  try {
    const rootfs = new LayeredRootfs(image.layers);
    const index = await rootfs.index();
    const kver = theKernel(index, {
      files: inp.type === 'iso' ? ['vmlinuz'] : ['vmlinuz', 'initramfs.img'],
      refusal: 'refusing to build install media',
    });
    const usage = usageOf(index);
    requireSpace(liveSpaceNeeds(usage, inp.type, at.workDir, at.outDir), at.space);
    const common = {
      rootfs,
      kver,
      index,
      usage,
      workDir: at.workDir,
      artefact: at.artefact,
      bootTest: inp['boot-test'],
      accel: inp.accel,
      memoryMiB: inp.memory,
      bootTimeoutMs: inp['boot-timeout'] * 1000,
      temp: io.context.runnerTemp,
      id: ref.digest!.slice(7, 19),
      runner,
    };
    if (inp.type === 'iso') {
      const label =
        inp.label ||
        at.name
          .toUpperCase()
          .replace(/[^A-Z0-9_-]/g, '_')
          .slice(0, 32);
      const title = inp.title || `${at.repoName} (live)`;
      const iso = {
        ...common,
        label,
        title,
        compressionLevel: inp['compression-level'],
        kernelArgs: inp['kernel-args'],
      };
      return await liveIso(iso, runner, io);
    }
    const disk = {
      ...common,
      format: inp.type,
      title: inp.title || at.repoName,
      kernelArgs: inp['kernel-args'],
      seed: ref.toString(),
    };
    return await liveDisk(disk, runner, io);
  } finally {
    image.dispose();
  }
}
