import type { Distro } from '../../actions/lib/declarations.js';
import {
  checkout,
  Params,
  registryToken,
  registryUser,
  releaseDate,
  shq,
  uploadHandoff,
  writeHandoff,
  type Mode,
} from '../common.js';
import { and, callOutput, concat, contains, eq, github, lit, ne, or, secret, type Expr } from '../expr.js';
import { job, keel, runStep, type RunStep, type Triggers, type Workflow } from '../model.js';

/**
 * build.yml: build → validate → rechunk → push in one job (they share containers-storage), then
 * sign as its own job (re-runnable alone, signing the digest the build job pushed). The release
 * date is computed once, first, and handed to every hop; the pushed digest is left as an
 * artifact of the run for smoke-boot.
 */
export const BUILD_SOURCE = 'workflows-src/workflows/build.ts';
export const buildWorkflowName = (decl: Distro, mode: Mode) =>
  mode === 'dogfood' ? `Keel build (${decl.image.name})` : 'Keel build (reusable)';

/** The push trigger's allow-list: what shapes the image, computed, never a hand-kept ignore list. */
export function buildPaths(decl: Distro, file: string, hops: string[]): string[] {
  const paths = [
    ...decl.build.inputs,
    'dist/**',
    ...hops.map((h) => `actions/${h}/action.yml`),
    `.github/workflows/${file}`,
  ];
  return [...new Set(paths)];
}

/** containers-storage driver of the base hand-over (the build hop's default, `storage-driver`). */
const STORAGE_DRIVER = 'overlay';

/** The base bootstrap of the example distro (declarations base.bootstrap), dogfood only. */
export function bootstrapStep(decl: Distro): RunStep | undefined {
  const b = decl.base.bootstrap;
  if (!b) return undefined;
  const script = 'build_files/base/bootstrap.sh';
  // The argv of build_files/base/bootstrap.sh (its usage header), from the declarations.
  const args = [
    '--image',
    decl.base.image,
    '--suite',
    b.suite,
    ...(b.mirror ? ['--mirror', b.mirror] : []),
    ...b.packages.flatMap((p) => ['--package', p]),
  ];
  return runStep({
    name: 'Bootstrap the base image from Debian packages',
    env: { BASE_IMAGE: decl.base.image, STORAGE_DRIVER },
    run: [
      "# mmdebstrap needs root and the Debian keyring. The base lands in root's containers-storage,",
      '# where the build hop (root-storage: true, buildah through sudo) and the later hops read it.',
      'sudo timeout 600 apt-get update -qq',
      'sudo DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends mmdebstrap debian-archive-keyring',
      `sudo ${[script, ...args, '--storage-driver', STORAGE_DRIVER].map(shq).join(' ')}`,
      'sudo STORAGE_DRIVER="$STORAGE_DRIVER" buildah images --quiet "$BASE_IMAGE" >/dev/null',
    ].join('\n'),
    local: { local: 'bootstrap-base', script, args, image: decl.base.image },
  });
}

export function buildWorkflow(decl: Distro, mode: Mode): Workflow {
  const p = new Params(mode);
  const file = mode === 'dogfood' ? 'build.yml' : 'reusable-build.yml';
  const image = p.v('image', `${decl.image.registry}/${decl.image.name}`, {
    description: 'Destination repository, registry/name without tag (e.g. ghcr.io/my-org/my-os).',
    required: true,
  });
  const declarations = p.v('declarations', 'declarations/distro.yaml', {
    description:
      'Path of your distro declarations (image name, labels, OS identity, base, build-args): read by the build hop.',
    default: 'declarations/distro.yaml',
  });
  const candidate = p.v('candidate-tag', decl.tags.candidate, {
    description: 'Candidate tag word.',
    default: 'candidate',
  });
  const stable = p.v('stable-tag', decl.tags.stable, {
    description: 'Stable tag word (the rechunk plan is reused from <image>:<stable-tag>).',
    default: 'stable',
  });
  const prLabel = p.v('pr-label', decl.tags['pr-label'], {
    description: 'Label a pull request needs to be built (as pr-<N>).',
    default: 'vm-test',
  });
  const runsOn = p.runsOn();
  const user = registryUser();
  const token = registryToken();

  // Pull requests build only from this repository (a fork's token cannot push) and only with
  // the label: when it is added, or on a new commit while it is there.
  const gate = or(
    ne(github('event_name'), 'pull_request'),
    and(
      eq(github('event.pull_request.head.repo.full_name'), github('repository')),
      or(
        and(eq(github('event.action'), 'labeled'), eq(github('event.label.name'), prLabel)),
        and(ne(github('event.action'), 'labeled'), contains(github('event.pull_request.labels.*.name'), prLabel)),
      ),
    ),
  );

  const date = releaseDate();
  const buildSecretsEnv: Record<string, Expr> = {};
  if (!p.reusable) {
    for (const s of decl.build.secrets)
      if (s['github-secret'] && s.env) buildSecretsEnv[s.env] = secret(s['github-secret']);
  }
  const build = keel.build(
    'build',
    {
      containerfile: p.v('containerfile', decl.build.containerfile, {
        description: 'Containerfile path.',
        default: 'Containerfile',
      }),
      context: p.v('context', decl.build.context, { description: 'Build context directory.', default: '.' }),
      'base-image': p.v('base-image', decl.base.image, {
        description: 'Base image; empty: declarations base.image.',
        default: '',
      }),
      declarations,
      'release-date': date.outputs['release-date'],
      // The token belongs to the push registry: never send it to a base on another registry.
      'credentials-for': image,
      username: user,
      password: token,
    },
    { name: 'Build the image', ...(Object.keys(buildSecretsEnv).length ? { env: buildSecretsEnv } : {}) },
  );
  const localRef = build.outputs['local-ref'];
  const v = decl.validate;
  const validate = keel.validate(
    'validate',
    {
      image: localRef,
      'min-initramfs-mb': p.v('min-initramfs-mb', v['min-initramfs-mb'], {
        description: 'Smallest acceptable initramfs (MB).',
        default: 50,
      }),
      'require-ostree-module': p.v('require-ostree-module', String(v['require-ostree-module']), {
        description: 'Require ostree-prepare-root in the initramfs: true, false or auto.',
        default: 'auto',
      }),
      'initramfs-modules': p.v('initramfs-modules', v['initramfs-modules'].join('\n'), {
        description: 'Kernel modules a generic boot needs (newline-separated).',
        default: 'virtio_blk\next4',
      }),
      ...(p.reusable
        ? {
            'repo-globs': p.input('repo-globs', {
              description: 'Forbidden leftover repository files (globs, newline-separated); empty: defaults.',
              default: '',
            }),
          }
        : v['repo-globs']
          ? { 'repo-globs': v['repo-globs'].join('\n') }
          : {}),
    },
    { name: 'Validate the image (before any push)' },
  );
  const rechunkOn = p.v('rechunk', decl.rechunk.enabled, {
    description: 'Rechunk into content-grouped layers before pushing.',
    default: true,
  });
  const rechunk =
    rechunkOn.kind === 'literal' && rechunkOn.value === false
      ? undefined
      : keel.rechunk(
          'rechunk',
          {
            image: localRef,
            'max-layers': p.v('max-layers', decl.rechunk['max-layers'], {
              description: 'Upper bound on the number of layers.',
              default: 64,
            }),
            'previous-image': concat(image, ':', stable),
            username: user,
            password: token,
          },
          {
            name: 'Rechunk (reusing the published layer plan)',
            ...(rechunkOn.kind === 'literal' ? {} : { if: rechunkOn }),
          },
        );
  const push = keel.push(
    'push',
    {
      source: rechunk
        ? rechunkOn.kind === 'literal'
          ? rechunk.outputs['oci-ref']
          : or(rechunk.outputs['oci-ref'], localRef)
        : localRef,
      image,
      'candidate-tag': candidate,
      'pr-label': prLabel,
      'release-date': date.outputs['release-date'],
      username: user,
      password: token,
    },
    { name: 'Push (every tag checked to resolve to one digest)' },
  );

  const buildJob = job('build', {
    name: 'Build, validate, rechunk, push',
    if: gate,
    runsOn,
    timeoutMinutes: 120,
    // Per ref, newest wins. On the job, not the workflow: a run whose build is skipped (a PR
    // labelled with something else, a push without the label) must not cancel a running build.
    // The workflow name keeps two callers of the reusable apart (and differs from a caller's own
    // `<workflow>-<ref>` group, which would deadlock).
    concurrency: {
      group: concat(lit('keel-build-'), github('workflow'), lit('-'), github('ref')),
      cancelInProgress: true,
    },
    permissions: { contents: 'read', packages: 'write' },
    outputs: {
      digest: push.outputs.digest,
      'image-ref': push.outputs['image-ref'],
      tags: push.outputs.tags,
      'release-date': date.outputs['release-date'],
    },
    steps: [
      checkout(),
      date,
      !p.reusable && bootstrapStep(decl),
      build,
      validate,
      rechunk,
      push,
      writeHandoff({
        imageRef: push.outputs['image-ref'],
        digest: push.outputs.digest,
        releaseDate: date.outputs['release-date'],
      }),
      uploadHandoff(),
    ],
  });

  const publicKey = p.v('public-key', decl.signing?.['public-key'] ?? '', {
    description:
      'Cosign public key (path in your repository, or PEM): the signatures are verified with it right after signing.',
    default: '',
  });
  const identity = p.v('signing-identity', decl.signing?.identity ?? 'repository', {
    description: 'Signed identity: repository or tags.',
    default: 'repository',
  });
  const signJob = job('sign', {
    name: 'Sign the pushed digest',
    needs: [buildJob],
    runsOn,
    timeoutMinutes: 15,
    permissions: { contents: 'read', packages: 'write' },
    outputs: {},
    steps: [
      checkout(),
      keel.sign(
        'sign',
        {
          'image-ref': buildJob.refs['image-ref'],
          'private-key': secret('COSIGN_PRIVATE_KEY'),
          password: secret('COSIGN_PASSWORD'),
          mode: 'key',
          identity,
          ...(publicKey.kind === 'literal' && publicKey.value === '' ? {} : { 'public-key': publicKey }),
          username: user,
          'registry-password': token,
        },
        { name: 'Sign (by digest, verified after writing)' },
      ),
    ],
  });

  const hops = ['build', 'validate', ...(rechunk ? ['rechunk'] : []), 'push', 'sign'];
  const paths = buildPaths(decl, file, hops);
  const on: Triggers = p.reusable
    ? {
        workflow_call: {
          inputs: p.callInputs,
          secrets: {
            COSIGN_PRIVATE_KEY: { description: 'Cosign private key (cosign.key contents).', required: true },
            COSIGN_PASSWORD: { description: 'Password of the cosign key (may be empty).', required: false },
          },
          outputs: {
            digest: { description: 'Manifest digest pushed (sha256:<hex>).', value: callOutput(buildJob.refs.digest) },
            'image-ref': {
              description: 'registry/repo@sha256:<hex> pushed and signed.',
              value: callOutput(buildJob.refs['image-ref']),
            },
            tags: { description: 'Tags written (newline-separated).', value: callOutput(buildJob.refs.tags) },
            'release-date': {
              description: 'Release date of the run (YYYYMMDD).',
              value: callOutput(buildJob.refs['release-date']),
            },
          },
        },
      }
    : {
        push: { branches: ['main'], paths },
        pull_request: { types: ['labeled', 'synchronize'], branches: ['main'], paths },
        schedule: [{ cron: '0 4 * * 0' }],
        workflow_dispatch: {},
      };
  return {
    file,
    source: BUILD_SOURCE,
    name: buildWorkflowName(decl, mode),
    on,
    permissions: {},
    actions: p.reusable ? 'remote' : 'local',
    jobs: [buildJob, signJob],
  };
}
