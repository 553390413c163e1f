// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asRoot } from '../../actions/lib/exec.js';
import { recordingIO } from '../../actions/lib/io.js';
import type { RunContext } from '../../actions/lib/context.js';
import { run } from '../../actions/push/src/main.js';
import { startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';
import { makeOciImage } from '../harness/tools.js';

/**
 * push's run() through recordingIO and a fake runner: the event decides the tags (Keel's grammar),
 * a containers-storage source is exported with the exact skopeo argv, every tag lands on the
 * one digest, and bad input fails before any request.
 */
let reg: FakeRegistry;
let work: string;
let layout: { dir: string; digest: string };
const NOW = new Date('2025-03-04T05:06:07Z');
beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-push-'));
  layout = makeOciImage(path.join(work, 'oci'), { tag: 'keel' });
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const pr = (labels: string[]): Partial<RunContext> => ({
  eventName: 'pull_request',
  event: { pull_request: { number: 7, labels: labels.map((name) => ({ name })) } },
});

/** Plays `skopeo copy containers-storage:… oci:DIR:TAG`: writes the layout skopeo would. */
const skopeoExport = (call: Call) => {
  const dest = call.args.find((a) => a.startsWith('oci:'))!;
  const [, dir, tag] = /^oci:(.*):([^:]+)$/.exec(dest)!;
  makeOciImage(dir!, { tag, layers: [{ 'etc/os-release': 'ID=keel\n' }] });
  return '';
};

describe('push run()', () => {
  it.each([
    ['a push event', { eventName: 'push' }, {}, ['candidate', 'candidate.20250304']],
    [
      'a dispatch with another candidate word',
      { eventName: 'workflow_dispatch' },
      { 'candidate-tag': 'nightly' },
      ['nightly', 'nightly.20250304'],
    ],
    ['a labelled pull request', pr(['vm-test']), {}, ['pr-7']],
    ['explicit tags', { eventName: 'push' }, { tags: 'v1\nv1.2' }, ['v1', 'v1.2']],
    [
      'an explicit release date',
      { eventName: 'schedule' },
      { 'release-date': '20240229' },
      ['candidate', 'candidate.20240229'],
    ],
  ])('%s: pushes once and tags the one digest', async (_what, context, extra, tags) => {
    const repo = `keel/push-${tags.join('-').replace(/\./g, '')}-${Object.keys(extra).length}`;
    const runner = fakeRunner();
    const io = recordingIO(
      { source: `oci:${layout.dir}:keel`, image: `${reg.host}/${repo}`, 'tls-verify': 'false', ...extra },
      { now: () => NOW, runnerTemp: work, ...context },
      runner,
    );
    await run(io);
    expect(io.outputs).toEqual({
      digest: layout.digest,
      'image-ref': `${reg.host}/${repo}@${layout.digest}`,
      tags: tags.join('\n'),
    });
    expect(io.groups).toEqual(['open the source', `push to ${reg.host}/${repo}`]);
    expect(reg.tags(repo)).toEqual(Object.fromEntries(tags.map((t) => [t, layout.digest])));
    expect(runner.calls).toEqual([]);
  });

  it('exports a containers-storage source with skopeo, then pushes the export', async () => {
    const runner = fakeRunner(skopeoExport);
    const io = recordingIO(
      { source: 'containers-storage:localhost/keel-os:candidate', image: `${reg.host}/keel/cs`, 'tls-verify': 'false' },
      { now: () => NOW, runnerTemp: work, eventName: 'push' },
      runner,
    );
    await run(io);
    const [cmd, args] = asRoot('skopeo', ['copy', '--quiet', '--', 'containers-storage:localhost/keel-os:candidate']);
    expect(runner.calls[0]!.cmd).toBe(cmd);
    expect(runner.calls[0]!.args.slice(0, args.length)).toEqual(args);
    expect(runner.calls[0]!.args.at(-1)).toMatch(new RegExp(`^oci:${work}/keel-export-[^/]+:keel-export$`));
    expect(reg.tags('keel/cs')).toEqual({ candidate: io.outputs.digest, 'candidate.20250304': io.outputs.digest });
    // The temporary export is gone.
    expect(fs.readdirSync(work).filter((d) => d.startsWith('keel-export-'))).toEqual([]);
  });

  it.each([
    ['an unlabelled pull request', pr([]), {}, /refusing to push: pull request #7 does not carry the 'vm-test' label/],
    [
      'a bad source',
      { eventName: 'push' },
      { source: 'docker://x' },
      /^Input 'source' has value "docker:\/\/x": expected oci:DIR\[:TAG\] or containers-storage:REF/,
    ],
    ['latest', { eventName: 'push' }, { tags: 'latest' }, /Input 'tags'.*Keel never writes 'latest'/],
    [
      'an impossible date',
      { eventName: 'push' },
      { 'release-date': '20250230' },
      /^Input 'release-date'.*a real calendar day/,
    ],
  ])('refuses %s before any request', async (_what, context, extra, message) => {
    const before = reg.requests.length;
    const io = recordingIO(
      { source: `oci:${layout.dir}:keel`, image: `${reg.host}/keel/refused`, 'tls-verify': 'false', ...extra },
      { now: () => NOW, runnerTemp: work, ...context },
      fakeRunner(),
    );
    await expect(run(io)).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(io.outputs).toEqual({});
  });
});
