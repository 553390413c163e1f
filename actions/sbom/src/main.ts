import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomically } from '../../lib/atomic.js';
import { onCleanup } from '../../lib/cleanup.js';
import { describeLocation, locateInput, type ImageLocation } from '../../lib/image/open.js';
import type { ActionIO } from '../../lib/io.js';
import { list, readInputs, registryInputs, str } from '../../lib/inputs.js';
import { readImageInventory } from '../../lib/packages/index.js';
import { code, seconds, table } from '../../lib/summary.js';
import { cyclonedxJson } from './cyclonedx.js';
import { spdxJson } from './spdx.js';
import { buildDocument } from './subject.js';

const FORMATS = ['cyclonedx', 'spdx'] as const;

export const inputs = {
  'image-ref': str({
    required: true,
    expected: 'the pinned image: REGISTRY/REPO@sha256:…, oci:DIR[:TAG] or containers-storage:REF',
  }),
  formats: list({
    default: 'cyclonedx',
    item: (s) => ((FORMATS as readonly string[]).includes(s) ? undefined : `expected one of: ${FORMATS.join(', ')}`),
    expected: `newline-separated formats (${FORMATS.join(', ')})`,
  }),
  'output-dir': str({ default: 'sbom-out', expected: 'a directory to write the SBOM files into' }),
  ...registryInputs,
};

/** The repository an SBOM names the image by (undefined for an OCI layout). */
function repositoryOf(loc: ImageLocation): string | undefined {
  if (loc.kind === 'registry') return loc.ref.name;
  if (loc.kind === 'containers-storage') return loc.ref.replace(/@.*$/, '').replace(/:[^:/]+$/, '');
  return undefined;
}

/** sbom: the pinned image's package databases → CycloneDX 1.6 (and SPDX 2.3) JSON, validated, deterministic. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const loc = locateInput('image-ref', inp['image-ref']);
  const formats = new Set(inp.formats.length ? inp.formats : ['cyclonedx']);
  const started = Date.now();
  const workDir = fs.mkdtempSync(path.join(io.context.runnerTemp, 'keel-sbom-'));
  const unregister = onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  try {
    const img = await io.group(`read the package databases of ${describeLocation(loc)}`, () =>
      readImageInventory(loc, { access: inp, log: io, runner: io.runner, tmpDir: workDir }),
    );
    const repository = repositoryOf(loc);
    const doc = buildDocument(img, repository, img.labels['org.opencontainers.image.title'] ?? describeLocation(loc));
    // Both documents are rendered and checked before either is written.
    const out: [string, string, string][] = [];
    if (formats.has('cyclonedx')) out.push(['cyclonedx', 'sbom.cdx.json', cyclonedxJson(doc)]);
    if (formats.has('spdx')) out.push(['spdx', 'sbom.spdx.json', spdxJson(doc)]);
    const dir = path.resolve(io.context.workspace, inp['output-dir']);
    fs.mkdirSync(dir, { recursive: true });
    for (const [output, name, text] of out) {
      const file = path.join(dir, name);
      writeFileAtomically(file, text);
      if (output === 'cyclonedx') io.setOutput('cyclonedx', file);
      else io.setOutput('spdx', file);
      io.info(`${output}: ${file} (${text.length} bytes)`);
    }
    const found = doc.databases.map((d) => `${d.kind}:${d.dir}`).join(' ');
    io.setOutput('packages', String(doc.packages.length));
    io.setOutput('databases', found);
    io.setOutput('digest', doc.image.digest);
    const dbLine = doc.databases.length
      ? doc.databases.map((d) => `${d.kind} database ${code(d.dir)}: ${d.packages} packages`).join(', ')
      : '**no package database found** (dpkg or rpm): the SBOM describes the image only';
    await io.summary(
      `### sbom\n\n${table(
        ['image', 'digest', 'distribution', 'kernel', 'packages', 'formats', 'time'],
        [
          [
            code(doc.image.name),
            code(doc.image.digest),
            doc.os ? `${doc.os.id} ${doc.os.versionId ?? ''}`.trim() : 'unknown',
            doc.kernels.map((k) => k.version).join(', ') || 'none',
            doc.packages.length,
            out.map((o) => o[0]).join(', '),
            seconds(Date.now() - started),
          ],
        ],
      )}\n${dbLine}\n`,
    );
  } finally {
    unregister();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
