// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { recordingIO } from '../../actions/lib/io.js';
import { MT } from '../../actions/lib/oci/media.js';
import { run } from '../../actions/resolve/src/main.js';
import { startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner } from '../harness/fake-runner.js';

/** resolve's run() through recordingIO: inputs → outputs (or the error), and what reached the registry. */
let reg: FakeRegistry;
let digest: string;
beforeAll(async () => {
  reg = await startFakeRegistry();
  const config = reg.putBlob('keel/os', '{}');
  digest = reg.putManifest(
    'keel/os',
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: config, size: 2 },
      layers: [],
    },
    MT.ociManifest,
    'candidate',
  );
});
afterAll(() => reg.close());

const image = (ref: string) => `${reg.host}/keel/os${ref}`;

describe('resolve run()', () => {
  it.each([
    ['a tag', () => image(':candidate')],
    ['a digest that exists', () => image(`@${digest}`)],
  ])('resolves %s to the digest, once', async (_what, ref) => {
    const runner = fakeRunner();
    const io = recordingIO({ image: ref(), 'tls-verify': 'false' }, {}, runner);
    const before = reg.requests.length;
    await run(io);
    expect(io.outputs).toEqual({
      digest,
      'image-ref': `${reg.host}/keel/os@${digest}`,
      repository: `${reg.host}/keel/os`,
    });
    expect(reg.requests.slice(before).filter((r) => r.includes('/manifests/'))).toHaveLength(1);
    expect(io.summaries.join('')).toContain(digest);
    expect(runner.calls).toEqual([]);
  });

  it.each([
    ['a missing tag', { image: 'X:nope' }, /keel\/os:nope does not exist in the registry \(manifest unknown\)/, true],
    [
      'a malformed reference',
      { image: 'Not A Ref' },
      /^Input 'image' has value "Not A Ref": not a valid image reference/,
      false,
    ],
    [
      'a bad tls-verify',
      { image: 'X:candidate', 'tls-verify': 'maybe' },
      /^Input 'tls-verify' has value "maybe": expected true or false/,
      false,
    ],
  ])('fails on %s', async (_what, inputs, message, asks) => {
    const io = recordingIO({ 'tls-verify': 'false', ...inputs, image: inputs.image.replace('X', image('')) });
    const before = reg.requests.length;
    await expect(run(io)).rejects.toThrow(message);
    expect(reg.requests.length > before).toBe(asks);
    expect(io.outputs).toEqual({});
  });

  it('masks the registry password before anything else', async () => {
    const io = recordingIO({ image: image(':candidate'), 'tls-verify': 'false', username: 'u', password: 's3cret' });
    await run(io);
    expect(io.secrets).toEqual(['s3cret']);
    expect(JSON.stringify(io.logs)).not.toContain('s3cret');
  });
});
