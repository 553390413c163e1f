import fs from 'node:fs';
import { withFailureSummary } from '../../lib/action.js';
import { loadDeclarations } from '../../lib/declarations.js';
import { errorMessage, InputError } from '../../lib/errors.js';
import { requireTools } from '../../lib/exec.js';
import type { ActionIO } from '../../lib/io.js';
import {
  bool,
  existingPath,
  keyValues,
  list,
  oneOf,
  optionalImageRef,
  readInputs,
  registryInputs,
  releaseDate,
  str,
} from '../../lib/inputs.js';
import { code, esc, seconds, table } from '../../lib/summary.js';
import { tagProblem } from '../../lib/tags.js';
import { parseReference } from '../../lib/oci/reference.js';
import { buildImage, type BuildState } from './build.js';
import { parseSecretLine, takePassedSecrets, unreadPassedSecrets, type SecretSource } from './plan.js';

export const DEFAULT_DECLARATIONS = 'declarations/distro.yaml';

export const inputs = {
  containerfile: existingPath('file', { default: 'Containerfile' }),
  context: existingPath('dir', { default: '.' }),
  image: str({ expected: 'a local image name such as localhost/my-os or localhost/my-os:candidate' }),
  tags: list({
    expected: 'newline-separated extra local tags (tag words or full local names)',
    item: (t) => (t.includes('/') || t.includes(':') ? undefined : tagProblem(t)),
  }),
  'base-image': optionalImageRef(),
  'build-args': keyValues('='),
  target: str({
    default: '',
    pattern: /^(?:[A-Za-z0-9][A-Za-z0-9_.-]*)?$/,
    expected: 'a build stage name (FROM ... AS <name>), or empty for the last stage',
  }),
  labels: keyValues('='),
  secrets: list({
    expected: 'newline-separated id=path or id=env:VAR lines',
    item: (line) => {
      const r = parseSecretLine(line);
      return typeof r === 'string' ? r : undefined;
    },
  }),
  'storage-driver': str({
    default: 'overlay',
    pattern: /^[a-z0-9]+$/,
    expected: 'a containers-storage driver name (overlay, vfs, btrfs, ...)',
  }),
  'root-storage': bool(true),
  isolation: oneOf(['chroot', 'oci', 'rootless'] as const, 'chroot'),
  'release-date': releaseDate(),
  version: str({
    pattern: /^[A-Za-z0-9][A-Za-z0-9._+-]*$/,
    expected: 'a version such as candidate.20250101 (letters, digits, . _ + -)',
  }),
  declarations: existingPath('file'),
  'credentials-for': str({
    expected: 'the registry or repository the credentials belong to (e.g. ghcr.io/my-org/my-os)',
  }),
  ...registryInputs,
};

/**
 * username/password are only sent to the registry they belong to: with `credentials-for` set
 * (e.g. the push target ghcr.io/my-org/my-os, whose token the workflow passes), a base image on
 * another registry is pulled without them (auth file or anonymous), so a GITHUB_TOKEN never
 * reaches quay.io or docker.io.
 */
export function credentialsForBase<A extends { username: string; password: string }>(
  access: A,
  credentialsFor: string | undefined,
  baseRegistry: string | undefined,
  log: { info(m: string): void },
): A {
  if (!credentialsFor || !baseRegistry || !(access.username || access.password)) return access;
  if (credentialsFor === baseRegistry) return access;
  log.info(`credentials are for ${credentialsFor}; the base comes from ${baseRegistry}: pulling it without them`);
  return { ...access, username: '', password: '' };
}

/** build: buildah build from the base resolved once, kernel read from the result, labels stamped. */
export async function run(io: ActionIO, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const passedSecrets = takePassedSecrets(env, (v) => io.setSecret(v));
  const inp = readInputs(io, inputs);
  const declFile = inp.declarations || (fs.existsSync(DEFAULT_DECLARATIONS) ? DEFAULT_DECLARATIONS : '');
  const declarations = declFile ? loadDeclarations(declFile) : undefined;
  const unread = unreadPassedSecrets(declarations, passedSecrets);
  if (unread.length)
    io.warning(`BUILD_SECRETS passes ${unread.join(', ')}, which no build.secrets entry reads: not used`);
  const secrets: SecretSource[] | undefined = inp.secrets.length
    ? inp.secrets.map((l) => parseSecretLine(l) as SecretSource)
    : undefined;
  requireTools(
    inp['root-storage'] && process.getuid?.() !== 0 ? { buildah: 'buildah', sudo: 'sudo' } : { buildah: 'buildah' },
    io.runner,
  );
  const baseGiven = inp['base-image']?.toString() || declarations?.base.image;
  let baseRegistry: string | undefined;
  try {
    baseRegistry = baseGiven ? parseReference(baseGiven).registry : undefined;
  } catch {
    baseRegistry = undefined; // a local name without tag: resolved later, never with credentials
  }
  let credFor: string | undefined;
  if (inp['credentials-for']) {
    const v = inp['credentials-for'];
    try {
      credFor = v.includes('/') ? parseReference(v, { requireTagOrDigest: false }).registry : v;
    } catch (e) {
      throw new InputError('credentials-for', v, `expected a registry or repository: ${errorMessage(e)}`);
    }
  }
  const access = credentialsForBase(inp, credFor, baseRegistry, io);
  if (declFile) io.info(`declarations: ${declFile}`);

  const state: BuildState = { timings: {} };
  const started = Date.now();
  await withFailureSummary(
    () =>
      io.group('build the image', () =>
        buildImage(
          {
            containerfile: inp.containerfile,
            ...(inp.target ? { target: inp.target } : {}),
            context: inp.context,
            image: inp.image,
            tags: inp.tags,
            baseImage: inp['base-image']?.toString() ?? '',
            buildArgs: inp['build-args'],
            labels: inp.labels,
            secrets,
            storageDriver: inp['storage-driver'],
            rootStorage: inp['root-storage'],
            isolation: inp.isolation,
            releaseDate: inp['release-date'],
            version: inp.version || undefined,
            declarations,
            registry: access,
          },
          {
            runner: io.runner,
            log: io,
            context: io.context,
            mask: (v) => io.setSecret(v),
            env: { ...env, ...passedSecrets },
          },
          state,
        ),
      ),
    async (failure) => {
      setKnownOutputs(io, state);
      await io.summary(summary(state, Date.now() - started, failure));
    },
  );
}

/** Known outputs are set on every path (a failed kernel check still names the image it built). */
function setKnownOutputs(io: ActionIO, state: BuildState): void {
  if (state.imageId) io.setOutput('image-id', state.imageId);
  if (state.localRef) io.setOutput('local-ref', state.localRef);
  if (state.kernelVersion) io.setOutput('kernel-version', state.kernelVersion);
  if (state.labels) io.setOutput('labels', JSON.stringify(state.labels));
  if (state.digest) io.setOutput('digest', state.digest);
  if (state.base) io.setOutput('base-digest', state.base.digest);
  if (state.base) io.setOutput('base-image-ref', state.base.pinned);
  if (state.created) io.setOutput('created', state.created);
  if (state.version) io.setOutput('version', state.version);
  if (state.releaseDate) io.setOutput('release-date', state.releaseDate);
}

function summary(s: BuildState, ms: number, failure?: string): string {
  const rows: (string | number)[][] = [
    ['image', s.image ? code(s.image) : '-'],
    ['image ID', s.imageId ? code(s.imageId) : '-'],
    ['base', s.base ? `${code(s.base.given)} → ${code(s.base.pinned)}` : '-'],
    ['kernel (ostree.linux)', s.kernelVersion ? code(s.kernelVersion) : '-'],
    ['version', s.version ? code(s.version) : '-'],
    ['created', s.created ?? '-'],
    ['build inputs', s.inputs ? `${s.inputs.files} files, ${code(s.inputs.digest)}` : '-'],
    [
      'time',
      `${seconds(ms)} (base ${seconds(s.timings.resolve ?? 0)}, build ${seconds(s.timings.build ?? 0)}, kernel ${seconds(s.timings.kernel ?? 0)}, label pass ${seconds(s.timings.label ?? 0)})`,
    ],
  ];
  let md = `### build${failure ? ' — failed' : ''}\n\n`;
  if (failure) md += `**${esc(failure.split('\n')[0] ?? '')}**\n\n`;
  md += table(['', ''], rows);
  if (s.labels) {
    md += `\n<details><summary>labels (${Object.keys(s.labels).length})</summary>\n\n${table(
      ['label', 'value'],
      Object.entries(s.labels).map(([k, v]) => [code(k), v]),
    )}\n</details>\n`;
  }
  return md;
}
