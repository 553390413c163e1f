import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from '../../lib/cleanup.js';
import { estimateUnpacked, requireSpace, type SpaceCheckOptions } from '../../lib/disk-space.js';
import { locateInput, openImage, type ImageLocation } from '../../lib/image/open.js';
import type { ActionIO } from '../../lib/io.js';
import { int, keyValues, optionalInt, readInputs, registryInputs, spaceInputs, str } from '../../lib/inputs.js';
import type { RegistryAccess } from '../../lib/registry.js';
import { layeredSource, rechunk, type RechunkSource } from '../../lib/rechunk/write.js';
import { mountStorageImage, readTreeFiles, scanTree, storageConfig } from '../../lib/rootfs/storage.js';
import { code, seconds, table } from '../../lib/summary.js';
import { readPrevious } from './previous.js';

export const inputs = {
  image: str({
    required: true,
    expected: 'containers-storage:REF, localhost/NAME:TAG, oci:DIR[:TAG], or a registry reference',
  }),
  output: str({ expected: 'a directory for the OCI image layout' }),
  tag: str({
    default: 'keel',
    pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
    expected: 'a tag for the image inside the layout',
  }),
  'max-layers': int({ default: 127, min: 2, max: 127 }),
  'previous-image': str({ expected: 'a registry reference or oci:DIR[:TAG] of the last published image' }),
  labels: keyValues('='),
  'source-date-epoch': optionalInt({ min: 0 }),
  'large-file-mb': int({ default: 16, min: 1 }),
  ...registryInputs,
  ...spaceInputs,
};

/** Compressed output per uncompressed input byte, for the space estimate (bootc images: ~0.4-0.65). */
const OUTPUT_PER_INPUT_BYTE = 0.6;

interface OpenedSource {
  source: RechunkSource;
  digest?: string;
  dispose(): Promise<void>;
}

/**
 * A local image is read in place (a read-only mount: no export, no store of its files); a
 * registry image or an OCI layout through its layers. The space the run needs is checked
 * before anything is written.
 */
async function openSource(
  loc: ImageLocation,
  at: { access: RegistryAccess; workDir: string; output: string; space: SpaceCheckOptions },
  io: ActionIO,
): Promise<OpenedSource> {
  const runner = io.runner;
  if (loc.kind === 'containers-storage') {
    const img = await mountStorageImage(loc.ref, runner);
    try {
      const config = await storageConfig(img.id, runner);
      const output = img.size * OUTPUT_PER_INPUT_BYTE;
      requireSpace([{ dir: at.output, bytes: output, what: 'the rechunked layout (estimated)' }], at.space);
      io.info(`reading ${img.id} in place: ${img.root} (read-only podman image mount; no copy)`);
      const source: RechunkSource = {
        labels: { ...(config.config?.Labels ?? {}) },
        config,
        describe: `local image ${img.id.slice(0, 12)}, read in place`,
        entries: () => scanTree(img.root, runner),
        readFiles: (paths) => readTreeFiles(img.root, paths, runner),
      };
      return { source, digest: img.digest, dispose: img.unmount };
    } catch (e) {
      await img.unmount();
      throw e;
    }
  }
  const image = await openImage(loc, {
    access: at.access,
    log: io,
    runner,
    tmpDir: at.workDir,
    beforeDownload: (bytes, dir) => requireSpace([{ dir, bytes, what: 'the image layers' }], at.space),
  });
  const compressed = image.manifest.layers.reduce((n, l) => n + l.size, 0);
  try {
    requireSpace(
      [
        { dir: at.workDir, bytes: estimateUnpacked(compressed), what: 'the store of its files (estimated)' },
        { dir: at.output, bytes: compressed, what: 'the rechunked layout (estimated)' },
      ],
      at.space,
    );
  } catch (e) {
    image.dispose();
    throw e;
  }
  return { source: layeredSource(image), digest: image.manifestDigest, dispose: async () => image.dispose() };
}

/** rechunk: regroup the filesystem into content-grouped, reproducible layers. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const loc = locateInput('image', inp.image);
  const prevLoc = inp['previous-image'] ? locateInput('previous-image', inp['previous-image']) : undefined;
  const envEpoch = process.env.SOURCE_DATE_EPOCH;
  const epoch = inp['source-date-epoch'] ?? (envEpoch && /^\d+$/.test(envEpoch) ? Number(envEpoch) : 0);
  const temp = io.context.runnerTemp;
  const output = inp.output || path.join(temp, 'keel-rechunk', 'oci');
  const started = Date.now();
  const runner = io.runner;
  const workDir = fs.mkdtempSync(path.join(temp, 'keel-rechunk-work-'));
  const unregister = onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  try {
    const previous = prevLoc
      ? await io.group('read the previous image', () => readPrevious(prevLoc, inp, io))
      : undefined;
    const space = { hop: 'rechunk', margin: inp['space-margin-gib'], probe: io.context.freeSpace, log: io };
    const image = await io.group('open the image', () => openSource(loc, { access: inp, workDir, output, space }, io));
    let result;
    try {
      result = await io.group('rechunk', () =>
        rechunk({
          input: image.source,
          outputDir: output,
          tag: inp.tag,
          maxLayers: inp['max-layers'],
          previous,
          extraLabels: inp.labels,
          sourceDateEpoch: epoch,
          largeFileBytes: inp['large-file-mb'] * 1024 * 1024,
          workDir,
          log: io,
          runner,
        }),
      );
    } finally {
      await image.dispose();
    }
    const report = {
      input: { image: inp.image, digest: image.digest },
      output: { ociRef: `oci:${output}:${inp.tag}`, digest: result.manifestDigest },
      sourceDateEpoch: epoch,
      maxLayers: inp['max-layers'],
      previous: previous ? { source: previous.source, hadPlan: Boolean(previous.plan) } : undefined,
      planNotes: result.planNotes,
      fallback: result.fallbackReason,
      update: result.update,
      postCheck: { entries: result.postCheck.entries, mismatches: result.postCheck.mismatches.length },
      labels: result.labels,
      layers: result.layers,
      seconds: (Date.now() - started) / 1000,
    };
    const reportPath = path.join(temp, 'keel-rechunk-report.json');
    fs.writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
    io.setOutput('oci-dir', output);
    io.setOutput('oci-ref', `oci:${output}:${inp.tag}`);
    io.setOutput('layers', String(result.layers.length));
    io.setOutput('report', reportPath);
    io.setOutput('digest', result.manifestDigest);
    const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    const u = result.update;
    const top = [...result.layers].sort((a, b) => b.size - a.size).slice(0, 15);
    await io.summary(
      `### rechunk\n\n${code(inp.image)} → ${code(`oci:${output}:${inp.tag}`)} (${code(result.manifestDigest)}), ${seconds(Date.now() - started)}\n\n` +
        `${result.layers.length} layers (max ${inp['max-layers']}), ${mb(result.layers.reduce((n, l) => n + l.size, 0))} compressed; ` +
        `post-check compared ${result.postCheck.entries} entries: identical. ${result.kernelVersion ? `ostree.linux=${result.kernelVersion}.` : ''}\n\n` +
        (u
          ? `Against the previous image: ${u.reusedLayers} layers reused, ${u.newLayers} new — a client downloads ${mb(u.downloadBytes)} of ${mb(u.totalBytes)}.\n\n`
          : '') +
        (result.fallbackReason ? `⚠️ ${result.fallbackReason}\n\n` : '') +
        table(
          ['layer', 'components', 'files', 'compressed', 'reused'],
          top.map((l) => [
            code(l.id),
            l.components.length,
            l.files,
            mb(l.size),
            l.reused === undefined ? '—' : l.reused ? 'yes' : 'no',
          ]),
        ),
    );
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
    unregister();
  }
}
