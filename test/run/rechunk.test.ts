// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FreeSpaceProbe } from '../../actions/lib/disk-space.js';
import { recordingIO } from '../../actions/lib/io.js';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { run } from '../../actions/rechunk/src/main.js';
import { fakeRunner } from '../harness/fake-runner.js';
import { makeOciImage } from '../harness/tools.js';

/**
 * rechunk's run() through recordingIO: an OCI fixture in, a rechunked layout out; rows of inputs
 * → outputs (oci-dir, oci-ref, layers, digest, report) and the properties the inputs promise
 * (layer cap, extra labels, the same digest for the same input and epoch); bad input fails first.
 */
let work: string;
let source: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-rechunk-'));
  const files: Record<string, string> = {
    'usr/lib/os-release': 'ID=table\n',
    'etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
  };
  for (let i = 0; i < 12; i++) files[`usr/share/pkg${i}/data.txt`] = `package ${i}\n`.repeat(200);
  const img = makeOciImage(path.join(work, 'src'), {
    layers: [files, { 'usr/bin/tool': 'tool' }],
    labels: { 'containers.bootc': '1' },
  });
  source = `oci:${img.dir}:latest`;
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function rechunk(extra: Record<string, string>) {
  const temp = fs.mkdtempSync(path.join(work, 'temp-'));
  const runner = fakeRunner();
  const io = recordingIO({ image: source, ...extra }, { runnerTemp: temp }, runner);
  await run(io);
  return { io, temp, runner };
}

const configOf = (dir: string, tag: string) => {
  const layout = OciLayout.open(dir);
  const m = JSON.parse(layout.readBlob(layout.resolve(tag).digest).toString());
  return JSON.parse(layout.readBlob(m.config.digest).toString()) as { config: { Labels: Record<string, string> } };
};

describe('rechunk run()', () => {
  it.each([
    ['the defaults', {}, 'keel', 127],
    ['an output directory, a tag and a layer cap', { output: 'OUT', tag: 'v1', 'max-layers': '3' }, 'v1', 3],
  ])('%s', async (_what, extra, tag, cap) => {
    const out = path.join(work, `out-${tag}`);
    const ex = Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, v === 'OUT' ? out : v]));
    const { io, temp, runner } = await rechunk(ex);
    const dir = 'output' in ex ? out : path.join(temp, 'keel-rechunk', 'oci');
    expect(io.outputs).toMatchObject({ 'oci-dir': dir, 'oci-ref': `oci:${dir}:${tag}` });
    const layers = Number(io.outputs.layers);
    expect(layers).toBeGreaterThan(0);
    expect(layers).toBeLessThanOrEqual(cap);
    const layout = OciLayout.open(dir);
    expect(layout.resolve(tag).digest).toBe(io.outputs.digest);
    const report = JSON.parse(fs.readFileSync(io.outputs.report!, 'utf8'));
    expect(report).toMatchObject({
      output: { digest: io.outputs.digest },
      maxLayers: cap,
      postCheck: { mismatches: 0 },
    });
    expect(configOf(dir, tag).config.Labels['containers.bootc']).toBe('1');
    expect(io.groups).toEqual(['open the image', 'rechunk']);
    expect(io.summaries.join('')).toMatch(/### rechunk/);
    expect(runner.calls).toEqual([]);
  });

  it('adds the extra labels and is reproducible for one source-date-epoch', async () => {
    const a = await rechunk({ labels: 'org.example.flavour=table', 'source-date-epoch': '1700000000' });
    const b = await rechunk({ labels: 'org.example.flavour=table', 'source-date-epoch': '1700000000' });
    expect(a.io.outputs.digest).toBe(b.io.outputs.digest);
    expect(configOf(a.io.outputs['oci-dir']!, 'keel').config.Labels['org.example.flavour']).toBe('table');
  });

  it.each([
    ['a layer cap of 1', { 'max-layers': '1' }, /^Input 'max-layers' has value "1": expected an integer >= 2 <= 127/],
    ['a bad tag', { tag: '-x' }, /^Input 'tag' has value "-x": expected a tag for the image inside the layout/],
    ['a negative epoch', { 'source-date-epoch': '-1' }, /^Input 'source-date-epoch' has value "-1"/],
    ['a bad image', { image: 'docker://x' }, /^Input 'image' has value "docker:\/\/x"/],
    ['a bad previous image', { 'previous-image': 'Not A Ref' }, /^Input 'previous-image' has value "Not A Ref"/],
  ])('refuses %s before any work', async (_what, extra, message) => {
    const temp = fs.mkdtempSync(path.join(work, 'temp-'));
    const io = recordingIO({ image: source, ...extra }, { runnerTemp: temp }, fakeRunner());
    await expect(run(io)).rejects.toThrow(message);
    expect(io.outputs).toEqual({});
    expect(fs.readdirSync(temp)).toEqual([]);
  });
});

describe('rechunk run(), disk space checked first', () => {
  const tiny: FreeSpaceProbe = () => ({ bytes: 64 * 1024 ** 2, filesystem: 'tiny' });

  it('an OCI layout input: refuses before reading it, naming the store and the output, and leaves nothing', async () => {
    const temp = fs.mkdtempSync(path.join(work, 'temp-'));
    const io = recordingIO({ image: source }, { runnerTemp: temp, freeSpace: tiny }, fakeRunner());
    await expect(run(io)).rejects.toThrow(
      /^not enough disk space: rechunk needs \d+\.\d GiB in .* \(for the store of its files \(estimated\) .* \+ the rechunked layout \(estimated\) .*\), 0\.1 GiB free/,
    );
    expect(io.outputs).toEqual({});
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  it('a local image: mounted in place (no export), only the output counted; refused, then unmounted', async () => {
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const id = crypto.createHash('sha256').update(config).digest('hex');
    const runner = fakeRunner(({ cmd, args }) => {
      const a = (cmd === 'sudo' ? args.slice(1) : [cmd, ...args]).join(' ');
      if (a.startsWith('podman image inspect')) return JSON.stringify([{ Id: id, Size: 10 * 1024 ** 3 }]);
      if (a.startsWith('podman image mount')) return '/var/lib/containers/storage/overlay/x/merged\n';
      if (a.startsWith('skopeo inspect --config')) return { code: 0, stdout: config, stderr: '' };
      return '';
    });
    const temp = fs.mkdtempSync(path.join(work, 'temp-'));
    const io = recordingIO({ image: 'localhost/table:1' }, { runnerTemp: temp, freeSpace: tiny }, runner);
    await expect(run(io)).rejects.toThrow(
      /^not enough disk space: rechunk needs 7\.0 GiB in .* \(for the rechunked layout \(estimated\) 6\.0 GiB, and a 1 GiB margin \(space-margin-gib\)\), 0\.1 GiB free/,
    );
    const lines = runner.lines().map((l) => l.replace(/^sudo -n /, ''));
    expect(lines).toEqual([
      'podman image inspect --format json -- localhost/table:1',
      `podman image mount -- ${id}`,
      `skopeo inspect --config --raw -- containers-storage:${id}`,
      `podman image unmount -- ${id}`,
    ]);
    expect(fs.readdirSync(temp)).toEqual([]);
  });
});
