import type { ActionIO } from '../../lib/io.js';
import { imageRef, readInputs, registryInputs } from '../../lib/inputs.js';
import { connect, resolveDigest } from '../../lib/registry.js';
import { code, table } from '../../lib/summary.js';

export const inputs = {
  image: imageRef(true),
  ...registryInputs,
};

/** resolve: tag (or digest) → digest, once. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const ref = inp.image;
  const started = Date.now();
  const client = connect(ref, inp, io);
  const digest = await resolveDigest(client, ref);
  const pinned = ref.withDigest(digest).toString();
  io.setOutput('digest', digest);
  io.setOutput('image-ref', pinned);
  io.setOutput('repository', ref.name);
  io.info(`${ref.toString()} → ${pinned}`);
  await io.summary(
    `### resolve\n\n${table(
      ['input', 'digest', 'pinned reference', 'time'],
      [[code(ref.toString()), code(digest), code(pinned), `${Date.now() - started} ms`]],
    )}`,
  );
}
