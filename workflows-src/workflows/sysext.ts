import type { Distro } from '../../actions/lib/declarations.js';
import {
  aptInstall,
  checkout,
  enableKvm,
  Params,
  registryToken,
  registryUser,
  VM_PACKAGES,
  type GenerateOptions,
} from '../common.js';
import { and, concat, eq, github, lines, lit, matrix, ne, or, secret, type Expr } from '../expr.js';
import { job, keel, type Triggers, type Workflow } from '../model.js';
import { smokeBootWorkflow } from './smoke-boot.js';

/**
 * sysext.yml: the system extensions of declarations `sysexts:`, built for the current stable.
 * After a promotion (a successful smoke-boot run of main), when an extension tree changes on
 * main, or on dispatch: `stable` is pinned to its digest once (job `base`), then one matrix leg
 * per declared extension builds it against exactly that digest with the sysext hop (the base's
 * signature verified first), signs SHA256SUMS with the release GPG key, boot-tests it in the
 * base, and publishes the output directory to its own Internet Archive item (one item per
 * extension: the flat file layout systemd-sysupdate reads; `base-url` in the .transfer file is
 * the item's download URL).
 *
 * Dogfood only: the matrix is the declarations' list, known when the workflow is generated.
 */
export const SYSEXT_SOURCE = 'workflows-src/workflows/sysext.ts';
export const SYSEXT_DIR = 'sysext-out';
export const SYSEXT_GPG_SECRETS = { key: 'SYSEXT_GPG_PRIVATE_KEY', passphrase: 'SYSEXT_GPG_PASSPHRASE' } as const;
/** Tools of the sysext hop: the VM boot test, the image formats, gpg, buildah for package builds. */
export const SYSEXT_PACKAGES = [...VM_PACKAGES, 'squashfs-tools', 'erofs-utils', 'gnupg', 'buildah'];

export const SMOKE_RUN_GUARDS = [
  "workflow_run runs with this repository's token and the release environment's secrets on behalf",
  'of a smoke-boot run. Guards:',
  '- the base job runs only for a successful smoke-boot run of this repository that was not a pull',
  '  request (conclusion, event and head_repository checked in its if:), and the build job needs it;',
  '- nothing of that run is read: stable is resolved anew and its signature verified before any',
  '  extension is built on it; the extension sources come from this checkout of main.',
];

/** The Internet Archive item of an extension: declared, or <image name>-sysext-<name>. */
export const sysextIdentifier = (decl: Distro, s: Distro['sysexts'][number]) =>
  s['ia-identifier'] ?? `${decl.image.name}-sysext-${s.name}`;

/** One matrix leg per declared extension: every value a string (lists as lines, absent as ''). */
export function sysextLegs(decl: Distro): Record<string, string>[] {
  return decl.sysexts.map((s) => {
    const identifier = sysextIdentifier(decl, s);
    return {
      name: s.name,
      tree: s.tree ?? '',
      packages: (s.packages ?? []).join('\n'),
      version: s.version ?? '',
      format: s.format,
      'probe-command': s['probe-command'] ?? '',
      exclude: s.exclude.join('\n'),
      'allow-overrides': s['allow-overrides'].join('\n'),
      identifier,
      'base-url': s['base-url'] ?? `https://archive.org/download/${identifier}/`,
    };
  });
}

/** Item metadata, key:value lines: applied when the item is created (the first version). */
function itemMetadata(decl: Distro, baseRef: Expr): Expr {
  const collection = decl['internet-archive']?.metadata.collection;
  const collections = collection === undefined ? [] : Array.isArray(collection) ? collection : [collection];
  return lines(
    'mediatype:software',
    concat('title:', matrix('name'), `: a system extension of ${decl.image.title}`),
    concat(
      'description:systemd system extension ',
      matrix('name'),
      ` for ${decl.image.title}, built for and boot-tested on `,
      baseRef,
      '; a directory systemd-sysupdate reads (SHA256SUMS signed into SHA256SUMS.gpg).',
    ),
    ...collections.map((c) => `collection:${c}`),
    `creator:${decl.image.vendor}`,
  );
}

/** Push to main changing what an extension is built from. */
function sysextPaths(decl: Distro, file: string): string[] {
  const trees = decl.sysexts.flatMap((s) => (s.tree ? [`${s.tree.replace(/\/+$/, '')}/**`] : []));
  return [...new Set([...trees, 'declarations/**', `.github/workflows/${file}`])];
}

export function sysextWorkflow(decl: Distro, opts: GenerateOptions = {}): Workflow {
  const p = new Params('dogfood', opts);
  const file = 'sysext.yml';
  if (!decl.sysexts.length) throw new Error('sysext.yml needs declarations sysexts');
  if (!decl.signing) throw new Error('sysext.yml verifies the base: declarations signing.public-key is required');
  const image = `${decl.image.registry}/${decl.image.name}`;
  const publicKey = decl.signing['public-key'];
  const identity = decl.signing.identity;
  const user = registryUser();
  const token = registryToken();
  const runsOn = p.runsOn();

  // A promotion of main (smoke-boot succeeded), never a pull request's run; or push/dispatch.
  const gate = or(
    ne(github('event_name'), 'workflow_run'),
    and(
      eq(github('event.workflow_run.conclusion'), 'success'),
      ne(github('event.workflow_run.event'), 'pull_request'),
      eq(github('event.workflow_run.head_repository.full_name'), github('repository')),
    ),
  );
  const resolve = keel.resolve(
    'stable',
    { image: `${image}:${decl.tags.stable}`, username: user, password: token },
    { name: 'Pin stable to its digest' },
  );
  const baseJob = job('base', {
    name: 'Pin stable',
    if: gate,
    runsOn,
    timeoutMinutes: 10,
    permissions: { contents: 'read', packages: 'read' },
    outputs: { 'image-ref': resolve.outputs['image-ref'] },
    steps: [checkout(), resolve],
  });

  const baseRef = baseJob.refs['image-ref'];
  const sysext = keel.sysext(
    'sysext',
    {
      'base-image-ref': baseRef,
      name: matrix('name'),
      packages: matrix('packages'),
      'source-dir': matrix('tree'),
      version: matrix('version'),
      format: matrix('format'),
      'probe-command': matrix('probe-command'),
      exclude: matrix('exclude'),
      'allow-overrides': matrix('allow-overrides'),
      'output-dir': SYSEXT_DIR,
      'boot-test': true,
      'gpg-private-key': secret(SYSEXT_GPG_SECRETS.key),
      'gpg-passphrase': secret(SYSEXT_GPG_SECRETS.passphrase),
      'base-url': matrix('base-url'),
      'public-key': publicKey,
      identity,
      username: user,
      password: token,
    },
    { name: 'Build, sign and boot-test the extension on the pinned stable' },
  );
  const ia = keel['ia-upload'](
    'ia',
    {
      identifier: matrix('identifier'),
      // The flat directory systemd-sysupdate reads; SHA256SUMS goes last.
      files: lines(
        sysext.outputs.path,
        sysext.outputs['transfer-file'],
        sysext.outputs['feature-file'],
        `${SYSEXT_DIR}/SHA256SUMS.gpg`,
        sysext.outputs.sha256sums,
      ),
      sha256sums: sysext.outputs.sha256sums,
      metadata: itemMetadata(decl, baseRef),
      'access-key': secret('IA_ACCESS_KEY'),
      'secret-key': secret('IA_SECRET_KEY'),
      // A directory for systemd-sysupdate, not a download: no torrent to wait for.
      derive: false,
    },
    { name: 'Publish the directory to its Internet Archive item' },
  );
  const buildJob = job('sysext', {
    name: 'System extension',
    needs: [baseJob],
    runsOn,
    timeoutMinutes: 60,
    permissions: { contents: 'read', packages: 'read' },
    // Reads the GPG signing key and the IA keys: release secrets, main only.
    environment: p.environment(decl),
    // One publication per extension at a time, never cancelled; extensions do not wait on each other.
    concurrency: { group: concat(lit(`keel-sysext-${image}-`), matrix('name')), cancelInProgress: false },
    strategy: { include: sysextLegs(decl) },
    steps: [checkout(), enableKvm(), aptInstall(SYSEXT_PACKAGES), sysext, ia],
  });

  const on: Triggers = {
    push: { branches: ['main'], paths: sysextPaths(decl, file) },
    workflow_dispatch: {},
    workflow_run: {
      workflows: [smokeBootWorkflow(decl, 'dogfood', opts).name],
      types: ['completed'],
      branches: ['main'],
    },
  };
  return {
    file,
    source: SYSEXT_SOURCE,
    name: `Keel sysext (${decl.image.name})`,
    on,
    triggerGuards: { workflow_run: SMOKE_RUN_GUARDS },
    permissions: {},
    actions: p.actionSource(),
    jobs: [baseJob, buildJob],
  };
}
