import { InputError } from '../../lib/errors.js';
import type { ActionIO } from '../../lib/io.js';
import { int, list, oneOf, readInputs, registryInputs, releaseDate, repository, str } from '../../lib/inputs.js';
import { openSource, sourceProblem } from '../../lib/oci/source.js';
import { planFromLayout, pushPlan } from '../../lib/oci/push.js';
import { connect } from '../../lib/registry.js';
import { code, seconds, table } from '../../lib/summary.js';
import { buildTags, pullRequestOf, releaseDateOf, streamFromEvent, tagProblem } from '../../lib/tags.js';

export const inputs = {
  source: str({ required: true, expected: 'oci:DIR[:TAG] or containers-storage:REF' }),
  image: repository(true),
  tags: list({ item: tagProblem }),
  stream: oneOf(['', 'candidate', 'pr'] as const, ''),
  'candidate-tag': str({ default: 'candidate', pattern: /^[a-z][a-z0-9-]*$/, expected: 'a lowercase tag word' }),
  'pr-label': str({ default: 'vm-test', expected: 'a label name' }),
  'release-date': releaseDate(),
  retries: int({ default: 5, min: 1, max: 20 }),
  'mount-from': list({ expected: 'newline-separated repository paths on the same registry' }),
  ...registryInputs,
};

/** push: upload once, alias every tag, read back, output the digest. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const problem = sourceProblem(inp.source);
  if (problem) throw new InputError('source', inp.source, problem);
  const date = inp['release-date'] ?? releaseDateOf(io.context.now());
  const tags = inp.tags.length
    ? inp.tags
    : buildTags({
        stream: inp.stream || streamFromEvent(io.context.eventName),
        releaseDate: date,
        candidateTag: inp['candidate-tag'],
        pr: pullRequestOf(io.context),
        prLabel: inp['pr-label'],
      });
  const dest = inp.image;
  const started = Date.now();
  const runner = io.runner;
  const src = await io.group('open the source', () =>
    openSource(inp.source, { runner, tmpDir: io.context.runnerTemp, log: io }),
  );
  try {
    const plan = planFromLayout(src.layout, src.tag);
    const client = connect(dest, inp, io, { retry: { attempts: inp.retries } });
    const res = await io.group(`push to ${dest.name}`, () =>
      pushPlan(client, dest.repository, src.layout, plan, { tags, log: io, mountFrom: inp['mount-from'] }),
    );
    const pinned = dest.withDigest(res.digest).toString();
    io.setOutput('digest', res.digest);
    io.setOutput('image-ref', pinned);
    io.setOutput('tags', res.tags.join('\n'));
    io.info(`pushed ${pinned} as ${res.tags.join(', ')}`);
    await io.summary(
      `### push\n\n${table(
        ['image', 'digest', 'tags', 'blobs uploaded / already there / mounted', 'bytes uploaded', 'time'],
        [
          [
            code(dest.name),
            code(res.digest),
            res.tags.map(code).join(' '),
            `${res.blobs.uploaded} / ${res.blobs.skipped} / ${res.blobs.mounted}`,
            res.blobs.bytesUploaded,
            seconds(Date.now() - started),
          ],
        ],
      )}${plan.children.length ? `\nMulti-arch index with ${plan.children.length} child manifests.\n` : ''}`,
    );
  } finally {
    src.dispose();
  }
}
