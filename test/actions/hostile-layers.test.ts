// test-kind: integration
import { afterEach, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errors, runAction } from '../harness/run-action.js';
import { rawTar, type RawEntry } from '../harness/raw-tar.js';
import { makeOciImage, tmpdir } from '../harness/tools.js';

/**
 * Crafted images against the bundles, driven the runner's way: each must fail naming the
 * hostile entry and its layer digest, and nothing may be written where the entry points, in the
 * runner temp, or next to the output.
 */
interface Case {
  what: string;
  /** The layers, given the unique marker name and a directory the symlink cases point at. */
  layers: (marker: string, target: string) => RawEntry[][];
  /** The entry the refusal must name, and the index of its layer. */
  entry: (marker: string) => string;
  layer: number;
  /** Where a write would land, besides the symlink target. */
  alsoCheck?: (marker: string) => string;
}

const dir = (name: string): RawEntry => ({ name, type: '5' });
const RPM = 'usr/lib/sysimage/rpm';

const CASES: Case[] = [
  {
    what: 'an entry named ../<marker>',
    layers: (m) => [[dir('usr'), { name: `../${m}`, body: 'x' }]],
    entry: (m) => `../${m}`,
    layer: 0,
  },
  {
    what: 'an entry named /<marker>',
    layers: (m) => [[dir('usr'), { name: `/${m}`, body: 'x' }]],
    entry: (m) => `/${m}`,
    layer: 0,
  },
  {
    what: 'an rpm database with an entry climbing to /tmp',
    layers: (m) => [
      [
        dir('usr'),
        dir('usr/lib'),
        dir('usr/lib/sysimage'),
        dir(RPM),
        { name: `${RPM}/rpmdb.sqlite`, body: 'not a database' },
        { name: 'placeholder', body: 'written to /tmp', pax: { path: `${RPM}/../../../../../../../../tmp/${m}` } },
      ],
    ],
    entry: (m) => `${RPM}/../../../../../../../../tmp/${m}`,
    layer: 0,
    alsoCheck: (m) => path.join('/tmp', m),
  },
  {
    what: 'a symlink and a write through it in the same layer',
    layers: (m, target) => [
      [dir('usr'), { name: 'evil', type: '2', linkname: target }, { name: `evil/${m}`, body: 'x' }],
    ],
    entry: (m) => `evil/${m}`,
    layer: 0,
  },
  {
    what: 'a symlink in one layer and a write through it in the next',
    layers: (m, target) => [
      [dir('usr'), { name: 'evil', type: '2', linkname: target }],
      [{ name: `evil/${m}`, body: 'x' }],
    ],
    entry: (m) => `evil/${m}`,
    layer: 1,
  },
  {
    what: 'PAX size=abc',
    layers: (m) => [[dir('usr'), { name: `usr/${m}`, body: 'x'.repeat(600), pax: { size: 'abc' } }]],
    entry: (m) => `usr/${m}`,
    layer: 0,
  },
  {
    what: 'PAX size=-5',
    layers: (m) => [[dir('usr'), { name: `usr/${m}`, body: 'x'.repeat(600), pax: { size: '-5' } }]],
    entry: (m) => `usr/${m}`,
    layer: 0,
  },
];

/** Every path under `root` (the step must leave only the runner's own files there). */
function tree(root: string): string[] {
  return fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();
}

/** The runner temp holds the harness's own files (outputs, summary, event) and nothing else. */
const harnessFile = /^(output|summary)-[0-9a-f-]{36}$|^event-[0-9a-f-]{36}\.json$/;

const made: string[] = [];
const scratch = (prefix: string): string => {
  const d = tmpdir(prefix);
  made.push(d);
  return d;
};
afterEach(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function hostileImage(c: Case, marker: string, target: string): { ref: string; digests: string[] } {
  const img = scratch('keel-hostile-img-');
  const { manifest } = makeOciImage(img, {
    layers: c.layers(marker, target).map(rawTar),
    created: '2026-12-01T00:00:00Z',
  });
  const digests = (JSON.parse(manifest.toString()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
  return { ref: `oci:${img}:latest`, digests };
}

describe.each(['rechunk', 'validate'])('%s refuses hostile layers by name and writes nothing', (hop) => {
  it.each(CASES.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const marker = `keel-hostile-${crypto.randomUUID().slice(0, 8)}`;
    const target = scratch('keel-hostile-target-');
    const { ref, digests } = hostileImage(c, marker, target);
    const runnerTemp = scratch('keel-hostile-runner-');
    const outParent = scratch('keel-hostile-out-');
    const inputs: Record<string, string> =
      hop === 'rechunk' ? { image: ref, output: path.join(outParent, 'oci') } : { image: ref };
    const r = await runAction({ action: hop, inputs, runnerTemp });

    expect(r.code).not.toBe(0);
    const message = errors(r).join('\n');
    expect(message).toContain(JSON.stringify(c.entry(marker)));
    expect(message).toContain(digests[c.layer]!);

    expect(fs.readdirSync(target)).toEqual([]);
    expect(tree(outParent)).toEqual([]);
    expect(tree(runnerTemp).filter((p) => !harnessFile.test(p))).toEqual([]);
    for (const parent of [path.dirname(runnerTemp), os.tmpdir(), '/tmp'])
      expect(fs.readdirSync(parent).filter((n) => n.includes(marker))).toEqual([]);
    if (c.alsoCheck) expect(fs.existsSync(c.alsoCheck(marker))).toBe(false);
  });
});
