import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomically } from '../../lib/atomic.js';
import { onCleanup } from '../../lib/cleanup.js';
import { InputError } from '../../lib/errors.js';
import { describeLocation, locateInput, type ImageLocation } from '../../lib/image/open.js';
import type { ActionIO } from '../../lib/io.js';
import { readInputs, registryInputs, str } from '../../lib/inputs.js';
import { parseReference } from '../../lib/oci/reference.js';
import { diffInventories, readImageInventory, type ImageInventoryOptions } from '../../lib/packages/index.js';
import { connect, type RegistryAccess } from '../../lib/registry.js';
import { tagProblem } from '../../lib/tags.js';
import { changelogJson, changelogMarkdown } from './render.js';

export const inputs = {
  'image-ref': str({
    required: true,
    expected: 'the new image: REGISTRY/REPO@sha256:…, oci:DIR[:TAG] or containers-storage:REF',
  }),
  'previous-image': str({
    expected: 'a tag or digest of the same repository (stable, sha256:…), or a full image reference',
  }),
  'output-dir': str({
    default: 'changelog-out',
    expected: 'a directory to write changelog.md and changelog.json into',
  }),
  ...registryInputs,
};

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * The previous image: empty → `<repository>:stable`; a bare tag or digest → that of the
 * image's repository; anything else → an image reference of its own.
 */
export function previousLocation(value: string, image: ImageLocation): ImageLocation {
  const repo = image.kind === 'registry' ? image.ref.name : undefined;
  const bare = value === '' || DIGEST.test(value) || (!value.includes('/') && !value.includes(':'));
  if (!bare) return locateInput('previous-image', value);
  if (!repo) {
    throw new InputError(
      'previous-image',
      value,
      'image-ref is not a registry reference, so there is no repository to take a tag or digest from: give a full reference',
    );
  }
  const v = value || 'stable';
  if (!DIGEST.test(v) && tagProblem(v))
    throw new InputError('previous-image', value, `expected a tag: ${tagProblem(v)}`);
  return { kind: 'registry', ref: parseReference(DIGEST.test(v) ? `${repo}@${v}` : `${repo}:${v}`) };
}

/** Whether a registry image exists (a missing one is a first release; other failures are errors). */
async function exists(loc: ImageLocation, access: RegistryAccess, io: ActionIO): Promise<boolean> {
  if (loc.kind !== 'registry') return true;
  return (await connect(loc.ref, access, io).headManifest(loc.ref.repository, loc.ref.reference)) !== undefined;
}

/** changelog: the package sets of image-ref and previous-image compared (kernel first), as Markdown and JSON. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const image = locateInput('image-ref', inp['image-ref']);
  const prevLoc = previousLocation(inp['previous-image'], image);
  const workDir = fs.mkdtempSync(path.join(io.context.runnerTemp, 'keel-changelog-'));
  const unregister = onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  try {
    // One blob cache for both images: the layers they share are downloaded once.
    const opts: ImageInventoryOptions = { access: inp, log: io, runner: io.runner, tmpDir: workDir };
    const current = await io.group(`read ${describeLocation(image)}`, () => readImageInventory(image, opts));
    const prevRef = describeLocation(prevLoc);
    const previous = await io.group(`read ${prevRef}`, async () =>
      (await exists(prevLoc, inp, io)) ? await readImageInventory(prevLoc, opts) : undefined,
    );
    if (!previous) io.info(`${prevRef} does not exist: this is the first release`);
    const facts = {
      image: { ref: describeLocation(image), digest: current.manifestDigest },
      previous: previous ? { ref: prevRef, digest: previous.manifestDigest } : undefined,
      previousWanted: prevRef,
      diff: diffInventories(previous?.inventory, current.inventory),
      packages: current.inventory.packages.length,
    };
    const markdown = changelogMarkdown(facts);
    const json = changelogJson(facts);
    const dir = path.resolve(io.context.workspace, inp['output-dir']);
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomically(path.join(dir, 'changelog.md'), markdown);
    writeFileAtomically(path.join(dir, 'changelog.json'), json);
    io.setOutput('markdown', path.join(dir, 'changelog.md'));
    io.setOutput('json', path.join(dir, 'changelog.json'));
    io.setOutput('added', String(facts.diff.added.length));
    io.setOutput('removed', String(facts.diff.removed.length));
    io.setOutput('changed', String(facts.diff.changed.length));
    io.setOutput('previous-digest', previous?.manifestDigest ?? '');
    io.setOutput('first-release', String(!previous));
    io.setOutput('kernel-changed', String(facts.diff.kernel.changed));
    io.info(
      previous
        ? `${facts.diff.changed.length} changed, ${facts.diff.added.length} added, ${facts.diff.removed.length} removed since ${prevRef}`
        : `first release: ${facts.packages} packages`,
    );
    await io.summary(`### changelog\n\n${markdown}`);
  } finally {
    unregister();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
