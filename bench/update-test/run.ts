// bench/update-test — Keel's update-test on the example distro (tag → verdict: resolve, verify,
// pull, install the previous release with ostree, three boots judged from the console), against
// the same three boots run by hand: plain QEMU on a machine prepared beforehand (not timed), each
// boot started with its BLS entry's kernel, initrd and options and ended by the probe's own
// shutdown. Prints the time to prepare the machine and the ratios; asserts nothing.
//   Run: npm run bench:update-test   (boots VMs: run it under flock /var/tmp/keel-heavy.lock)
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { processRunner } from '../../actions/lib/exec.js';
import { openImage } from '../../actions/lib/image/open.js';
import { silentLogger } from '../../actions/lib/log.js';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { ImageManifestSchema } from '../../actions/lib/oci/media.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { LayeredRootfs } from '../../actions/lib/rootfs/layered.js';
import { readBootEntries } from '../../actions/lib/vm/bls.js';
import { Ext4Image } from '../../actions/lib/vm/ext4-image.js';
import { TEST_CONSOLE_ARGS } from '../../actions/lib/vm/qemu.js';
import { prepareMachine } from '../../actions/update-test/src/machine.js';
import { startRegistry } from '../../cli/services/registry.js';
import { ensureExampleImage } from '../../test/harness/example-image.js';
import { runAction } from '../../test/harness/run-action.js';
import { derivedImage, skopeoPush, tarDir, tmpdir } from '../../test/harness/tools.js';

const img = await ensureExampleImage({ oci: true });
const reg = await startRegistry();
const work = tmpdir('keel-bench-update-');
try {
  const repo = `${reg.host}/bench/os`;
  const stable = skopeoPush(img.ociRef, `${repo}:stable`);
  // The candidate: the example plus one file and a new image version (as the tests derive it).
  const layout = OciLayout.open(img.ociDir);
  const m = ImageManifestSchema.parse(JSON.parse(layout.readBlob(layout.resolve('latest').digest).toString()));
  const rootfs = new LayeredRootfs(
    m.layers.map((l) => ({ digest: l.digest, compression: 'gzip' as const, open: () => layout.openBlob(l.digest) })),
  );
  const info = (await rootfs.readFiles(['usr/lib/keel/image-info.env'])).get('usr/lib/keel/image-info.env')!.toString();
  const layerDir = path.join(work, 'layer');
  fs.mkdirSync(path.join(layerDir, 'usr/lib/keel'), { recursive: true });
  fs.writeFileSync(
    path.join(layerDir, 'usr/lib/keel/image-info.env'),
    info.replace(/^IMAGE_VERSION=.*$/m, 'IMAGE_VERSION=bench'),
  );
  const candidate = skopeoPush(derivedImage(img.ociDir, 'latest', tarDir(layerDir)), `${repo}:candidate`);

  const t0 = Date.now();
  const r = await runAction({
    action: 'update-test',
    runnerTemp: path.join(work, 'temp'),
    inputs: { 'image-ref': `${repo}@${candidate}`, 'allow-unsigned': 'true', 'tls-verify': 'false' },
  });
  const keelTotal = (Date.now() - t0) / 1000;
  if (r.outputs.passed !== 'true') throw new Error(`update-test did not pass: ${r.outputs.reason}`);
  const boots = JSON.parse(r.outputs.boots!) as { boot: number; seconds: number; 'multi-user-seconds': number }[];
  const keelBoots = boots.reduce((s, b) => s + b.seconds, 0);
  const prepare = Number(/Prepared the machine in ([\d.]+) s/.exec(r.summary)?.[1] ?? NaN);

  // By hand: the same machine (prepared by the same code, not timed), three plain QEMU runs.
  const runner = processRunner();
  const open = (digest: string) =>
    openImage(
      { kind: 'registry', ref: parseReference(`${repo}@${digest}`) },
      { access: { 'tls-verify': false }, log: silentLogger, runner, tmpDir: work, cacheDir: path.join(work, 'blobs') },
    );
  const machine = await prepareMachine(
    {
      previous: await open(stable),
      candidate: await open(candidate),
      workDir: path.join(work, 'machine'),
      nonce: crypto.randomBytes(4).toString('hex'),
      token: crypto.randomBytes(8).toString('hex'),
      rollback: true,
      timeoutMs: () => 1_800_000,
    },
    runner,
    silentLogger,
  );
  const disk = new Ext4Image(machine.disk, runner);
  const plain: number[] = [];
  for (const n of [1, 2, 3]) {
    const entry = (await readBootEntries(disk))[0]!;
    const kernel = path.join(work, `vmlinuz-${n}`);
    const initrd = path.join(work, `initrd-${n}`);
    await disk.copyOut(`/boot${entry.linux}`, kernel, 1 << 30);
    await disk.copyOut(`/boot${entry.initrd[0]}`, initrd, 1 << 30);
    const drives = [
      '-drive',
      `file=${machine.disk},format=raw,if=virtio`,
      ...(n === 1 ? ['-drive', `file=${machine.candidateDisk},format=raw,if=virtio,readonly=on`] : []),
    ];
    const t = Date.now();
    await new Promise<void>((resolve, reject) => {
      const q = spawn(
        'qemu-system-x86_64',
        [
          ...['-machine', 'q35,accel=tcg', '-cpu', 'max', '-m', '2048', '-smp', '2', '-display', 'none'],
          ...['-serial', `file:${path.join(work, `plain-${n}.log`)}`, '-monitor', 'none', '-nic', 'none', '-no-reboot'],
          ...['-kernel', kernel, '-initrd', initrd],
          ...['-append', `${entry.options} ${TEST_CONSOLE_ARGS} rd.timeout=90 keel.update-test=${n}`],
          ...drives,
        ],
        { stdio: 'ignore' },
      );
      const timer = setTimeout(() => q.kill('SIGKILL'), 1_200_000);
      q.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`plain boot ${n}: QEMU exited with ${code}`));
      });
    });
    plain.push((Date.now() - t) / 1000);
  }
  const plainSum = plain.reduce((s, x) => s + x, 0);
  console.log(`\nbench/update-test — example distro → a derived candidate, TCG (${r.outputs.reason})`);
  console.log(
    `Keel update-test, tags → verdict:      ${keelTotal.toFixed(1)} s  (preparing the machine ${prepare.toFixed(1)} s, boots ${boots.map((b) => b.seconds.toFixed(0)).join(' + ')} = ${keelBoots.toFixed(1)} s)`,
  );
  console.log(
    `plain QEMU, the same three boots:      ${plain.map((s) => s.toFixed(0)).join(' + ')} = ${plainSum.toFixed(1)} s (machine prepared beforehand, not timed)`,
  );
  console.log(
    `ratio: boots ${(keelBoots / plainSum).toFixed(2)}×, tags → verdict ${(keelTotal / plainSum).toFixed(2)}× the plain boots`,
  );
} finally {
  await reg.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
