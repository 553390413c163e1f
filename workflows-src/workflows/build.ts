import { DEFAULT_WARN_CHECKS } from '../../actions/lib/check-ids.js';
import type { Distro } from '../../actions/lib/declarations.js';
import {
  checkout,
  NOTIFY_CALL_SECRETS,
  Params,
  PR_SIGNING_SECRETS,
  registryToken,
  registryUser,
  RELEASE_SIGNING_SECRETS,
  releaseDate,
  shq,
  uploadHandoff,
  writeHandoff,
  type GenerateOptions,
  type Mode,
} from '../common.js';
import { PASSED_SECRETS_ENV } from '../../actions/build/src/plan.js';
import {
  and,
  callOutput,
  concat,
  contains,
  eq,
  github,
  lines,
  lit,
  ne,
  not,
  or,
  secret,
  startsWith,
  type Expr,
} from '../expr.js';
import { freeDiskStep } from '../free-disk.js';
import {
  job,
  keel,
  keelHops,
  runStep,
  type Job,
  type KeelStep,
  type RunStep,
  type Step,
  type Triggers,
  type Workflow,
} from '../model.js';
import { buildFailureNotifyJob } from '../notify.js';
import { vulnerabilityScan } from '../vuln-scan.js';
import { perVariantUpload, pushedImageRef, variantPlan, variantStrategy, type VariantPlan } from '../variants.js';

/**
 * build.yml: build → validate → rechunk → push in one job (they share containers-storage), then
 * sign as its own job (re-runnable alone, signing the digest the build job pushed). The release
 * date is computed once, first, and handed to every hop; the pushed digest is left as an
 * artifact of the run for smoke-boot.
 *
 * Pull requests (same repository, labelled) build and push `pr-<N>` but never reach the release
 * key: the `sign` job does not run for them and lives in the release environment (main only);
 * a separate pull-request key pair signs them when the declarations configure one.
 *
 * Phases, each a function below: parameters → build job → sign job(s) → triggers. A new job
 * (e.g. an SBOM or update test after the push) is one more function taking `BuildParams` and the
 * build job, added to the `jobs` list; the trigger paths follow from the jobs' steps.
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
    name: 'Bootstrap the base image from Debian packages [transient]',
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

// ---------------------------------------------------------------------------------------------
// Phase 1: the values every job reads (constants from the declarations, or workflow_call inputs)

export interface BuildParams {
  decl: Distro;
  p: Params;
  file: string;
  image: Expr;
  declarations: Expr;
  candidate: Expr;
  stable: Expr;
  prLabel: Expr;
  runsOn: Expr;
  user: Expr;
  token: Expr;
  /** The release environment (sign, and the build job when it reads build secrets). */
  environment: Expr;
  /** Build secrets of the declarations (dogfood): env name → secret. Their presence drops pull-request builds. */
  buildSecrets: Record<string, Expr>;
  /** Image variants: the build job's matrix and per-variant build inputs. */
  variants: VariantPlan;
}

function buildParams(decl: Distro, mode: Mode, opts: GenerateOptions): BuildParams {
  const p = new Params(mode, opts);
  const buildSecrets: Record<string, Expr> = {};
  if (!p.reusable) {
    for (const s of decl.build.secrets)
      if (s['github-secret'] && s.env) buildSecrets[s.env] = secret(s['github-secret']);
  }
  const variants = variantPlan(decl, p.reusable);
  return {
    decl,
    p,
    file: mode === 'dogfood' ? 'build.yml' : 'reusable-build.yml',
    image: variants.image(
      p.v('image', `${decl.image.registry}/${decl.image.name}`, {
        description: 'Destination repository, registry/name without tag (e.g. ghcr.io/my-org/my-os).',
        required: true,
      }),
    ),
    declarations: p.v('declarations', 'declarations/distro.yaml', {
      description:
        'Path of your distro declarations (image name, labels, OS identity, base, build-args, validate settings): read by the build and settings hops.',
      default: 'declarations/distro.yaml',
    }),
    candidate: p.v('candidate-tag', decl.tags.candidate, { description: 'Candidate tag word.', default: 'candidate' }),
    stable: p.v('stable-tag', decl.tags.stable, {
      description: 'Stable tag word (the rechunk plan is reused from <image>:<stable-tag>).',
      default: 'stable',
    }),
    prLabel: p.v('pr-label', decl.tags['pr-label'], {
      description: 'Label a pull request needs to be built (as pr-<N>).',
      default: 'vm-test',
    }),
    runsOn: p.runsOn(),
    user: registryUser(),
    token: registryToken(),
    environment: p.environment(decl),
    buildSecrets,
    variants,
  };
}

// ---------------------------------------------------------------------------------------------
// Phase 2: the build job (build → validate → rechunk → push, then the hand-off to smoke-boot)

/** A build that reads secrets never runs for a pull request (its code would see them). */
const buildsPullRequests = (bp: BuildParams) => Object.keys(bp.buildSecrets).length === 0;

/**
 * Pull requests build only from this repository (a fork's token cannot push) and only with the
 * label: when it is added, or on a new commit while it is there.
 */
function pullRequestGate(bp: BuildParams): Expr {
  return or(
    ne(github('event_name'), 'pull_request'),
    and(
      eq(github('event.pull_request.head.repo.full_name'), github('repository')),
      or(
        and(eq(github('event.action'), 'labeled'), eq(github('event.label.name'), bp.prLabel)),
        and(ne(github('event.action'), 'labeled'), contains(github('event.pull_request.labels.*.name'), bp.prLabel)),
      ),
    ),
  );
}

/** The declared Containerfile (an input of the reusable workflow). */
const containerfileParam = ({ p, decl }: BuildParams) =>
  p.v('containerfile', decl.build.containerfile, { description: 'Containerfile path.', default: 'Containerfile' });

/** The reusable build's secret carrying the caller's build secret values (NAME=value lines). */
export const BUILD_SECRETS = 'BUILD_SECRETS';

/**
 * The build step's environment for `build.secrets`. The dogfood workflow names each GitHub secret
 * (and then drops pull-request builds). The reusable build cannot name the caller's secrets, nor
 * decide a job's `if:` on a secret: the caller passes their values in BUILD_SECRETS, which reaches
 * the hop through one variable only, and never in a run for any pull_request* event (a review
 * event runs the pull request's code too).
 */
function buildSecretsEnv(bp: BuildParams): { env?: Record<string, Expr> } {
  if (bp.p.reusable)
    return {
      env: {
        [PASSED_SECRETS_ENV]: or(and(not(startsWith(github('event_name'), 'pull_request')), secret(BUILD_SECRETS)), ''),
      },
    };
  return Object.keys(bp.buildSecrets).length ? { env: bp.buildSecrets } : {};
}

function buildStep(bp: BuildParams, releaseDateOut: Expr): KeelStep<'build'> {
  const { p, decl } = bp;
  const secretsEnv = buildSecretsEnv(bp);
  return keel.build(
    'build',
    {
      containerfile: containerfileParam(bp),
      context: p.v('context', decl.build.context, { description: 'Build context directory.', default: '.' }),
      'base-image': p.v('base-image', decl.base.image, {
        description: 'Base image; empty: declarations base.image.',
        default: '',
      }),
      declarations: bp.declarations,
      'release-date': releaseDateOut,
      ...bp.variants.buildInputs,
      // The token belongs to the push registry: never send it to a base on another registry.
      'credentials-for': bp.image,
      username: bp.user,
      password: bp.token,
    },
    { name: 'Build the image', ...secretsEnv },
  );
}

function validateStep(bp: BuildParams, localRef: Expr): KeelStep<'validate'> {
  const { p } = bp;
  const v = bp.decl.validate;
  // Dogfood passes a list only when the declarations change it from the hop's default.
  const unlessDefault = (list: string[] | undefined, dflt: readonly string[]) =>
    list && list.join('\n') !== dflt.join('\n') ? list.join('\n') : undefined;
  const optional = (
    name: 'checks' | 'warn-checks' | 'var-allow' | 'repo-globs',
    value: string | undefined,
    description: string,
  ) => p.optionalSetting(name, value, { description });
  return keel.validate(
    'validate',
    {
      image: localRef,
      ...optional(
        'checks',
        unlessDefault(v.checks, ['all']),
        'Checks that run: all, or check ids (newline-separated).',
      ),
      ...optional(
        'warn-checks',
        unlessDefault(v['warn-checks'], DEFAULT_WARN_CHECKS),
        'Checks that only warn when they fail (newline-separated), or none.',
      ),
      'min-initramfs-mb': p.setting('min-initramfs-mb', v['min-initramfs-mb'], {
        description: 'Smallest acceptable initramfs (MB).',
        number: true,
      }),
      'require-ostree-module': p.setting('require-ostree-module', String(v['require-ostree-module']), {
        description: 'Require ostree-prepare-root in the initramfs: true, false or auto.',
      }),
      'initramfs-modules': p.setting('initramfs-modules', v['initramfs-modules'].join('\n'), {
        description: 'Kernel modules a generic boot needs (newline-separated).',
      }),
      ...optional(
        'repo-globs',
        v['repo-globs']?.join('\n'),
        'Forbidden leftover repository files (globs, newline-separated); empty in both: Keel defaults.',
      ),
      ...optional(
        'var-allow',
        unlessDefault(v['var-allow'], []),
        'Paths under /var allowed without a tmpfiles.d entry.',
      ),
    },
    { name: 'Validate the image (before any push)' },
  );
}

/** The rechunk step, and the reference push reads (the rechunked image, or the built one). */
function rechunkPhase(bp: BuildParams, localRef: Expr): { step?: KeelStep<'rechunk'>; source: Expr } {
  const { p } = bp;
  const on = p.v('rechunk', bp.decl.rechunk.enabled, {
    description: 'Rechunk into content-grouped layers before pushing.',
    default: true,
  });
  if (on.kind === 'literal' && on.value === false) return { source: localRef };
  const step = keel.rechunk(
    'rechunk',
    {
      image: localRef,
      'max-layers': p.v('max-layers', bp.decl.rechunk['max-layers'], {
        description: 'Upper bound on the number of layers.',
        default: 64,
      }),
      'previous-image': concat(bp.image, ':', bp.stable),
      username: bp.user,
      password: bp.token,
    },
    { name: 'Rechunk (reusing the published layer plan)', ...(on.kind === 'literal' ? {} : { if: on }) },
  );
  const oci = step.outputs['oci-ref'];
  return { step, source: on.kind === 'literal' ? oci : or(oci, localRef) };
}

function pushStep(bp: BuildParams, source: Expr, releaseDateOut: Expr): KeelStep<'push'> {
  return keel.push(
    'push',
    {
      source,
      image: bp.image,
      'candidate-tag': bp.candidate,
      'pr-label': bp.prLabel,
      'release-date': releaseDateOut,
      username: bp.user,
      password: bp.token,
    },
    { name: 'Push [transient] (every tag checked to resolve to one digest)' },
  );
}

function buildJob(bp: BuildParams): Job<'digest' | 'image-ref' | 'tags' | 'release-date'> {
  const date = releaseDate();
  const day = date.outputs['release-date'];
  const build = buildStep(bp, day);
  const localRef = build.outputs['local-ref'];
  const validate = validateStep(bp, localRef);
  const rechunk = rechunkPhase(bp, localRef);
  const push = pushStep(bp, rechunk.source, day);
  const steps: (Step | undefined | false)[] = [
    checkout(),
    freeDiskStep(bp.p),
    // Reusable: the caller's validate settings (after validateStep asked for them).
    bp.p.settingsStep(bp.declarations),
    date,
    !bp.p.reusable && bootstrapStep(bp.decl),
    build,
    validate,
    rechunk.step,
    push,
    writeHandoff({ imageRef: push.outputs['image-ref'], digest: push.outputs.digest, releaseDate: day }),
    perVariantUpload(bp.variants, uploadHandoff()),
  ];
  return job('build', {
    name: 'Build, validate, rechunk, push',
    ...(buildsPullRequests(bp) ? { if: pullRequestGate(bp) } : {}),
    runsOn: bp.runsOn,
    timeoutMinutes: 120,
    permissions: { contents: 'read', packages: 'write' },
    // Build secrets are release secrets: the job then runs only in the release environment
    // (and the workflow has no pull_request trigger, see buildTriggers).
    ...(buildsPullRequests(bp) ? {} : { environment: bp.environment }),
    // Per image and ref. A newer pull-request commit cancels the superseded PR build; a build of
    // main (push, schedule, dispatch) is never cancelled mid-push, the next one waits. On the
    // job, not the workflow: a run whose build is skipped (a PR labelled with something else)
    // must not enter the group, and a reusable workflow's group must not be its caller's.
    concurrency: {
      group: concat(lit('keel-build-'), bp.image, lit('-'), github('ref')),
      cancelInProgress: eq(github('event_name'), 'pull_request'),
    },
    ...variantStrategy(bp.variants),
    // A matrix job has no outputs (GitHub keeps one leg's): the legs hand over by artifact.
    outputs: bp.variants.strategy
      ? ({} as Record<'digest' | 'image-ref' | 'tags' | 'release-date', Expr>)
      : {
          digest: push.outputs.digest,
          'image-ref': push.outputs['image-ref'],
          tags: push.outputs.tags,
          'release-date': day,
        },
    steps,
  });
}

// ---------------------------------------------------------------------------------------------
// Phase 3: signing. The release key signs only what was not built for a pull request.

function signingValues(bp: BuildParams): { publicKey: Expr; identity: Expr } {
  const { p, decl } = bp;
  return {
    publicKey: p.v('public-key', decl.signing?.['public-key'] ?? '', {
      description:
        'Cosign public key (path in your repository, or PEM): the signatures are verified with it right after signing.',
      default: '',
    }),
    identity: p.v('signing-identity', decl.signing?.identity ?? 'repository', {
      description: 'Signed identity: repository or tags.',
      default: 'repository',
    }),
  };
}

/** The SBOM of the pushed digest, read from its own package databases (re-run with sign: same input, same SBOM). */
function sbomStep(bp: BuildParams, imageRef: Expr): KeelStep<'sbom'> {
  return keel.sbom(
    'sbom',
    {
      'image-ref': imageRef,
      formats: lines('cyclonedx', 'spdx'),
      username: bp.user,
      password: bp.token,
    },
    { name: 'SBOM of the pushed digest (CycloneDX and SPDX, from its package databases)' },
  );
}

/** What the release signature carries besides the image signature: the SBOMs and the run's provenance. */
function attestationInputs(bp: BuildParams, sbom: KeelStep<'sbom'>): Record<string, Expr> {
  return {
    attestations: lines(concat('cyclonedx=', sbom.outputs.cyclonedx), concat('spdxjson=', sbom.outputs.spdx)),
    provenance: lit('true'),
    containerfile: bp.variants.buildInputs.containerfile ?? containerfileParam(bp),
  };
}

function signStep(
  bp: BuildParams,
  imageRef: Expr,
  key: { key: string; password: string },
  publicKey: Expr,
  identity: Expr,
  attest: Record<string, Expr> = {},
): KeelStep<'sign'> {
  const noKeyToVerify = publicKey.kind === 'literal' && publicKey.value === '';
  return keel.sign(
    'sign',
    {
      'image-ref': imageRef,
      ...attest,
      'private-key': secret(key.key),
      password: secret(key.password),
      mode: 'key',
      identity,
      ...(noKeyToVerify ? {} : { 'public-key': publicKey }),
      username: bp.user,
      'registry-password': bp.token,
    },
    { name: 'Sign [transient] (by digest, verified after writing)' },
  );
}

function signJob(bp: BuildParams, build: Job<'image-ref'>): Job {
  const { publicKey, identity } = signingValues(bp);
  const pushed = pushedImageRef(bp.variants, build);
  const sbom = sbomStep(bp, pushed.imageRef);
  return job('sign', {
    name: 'Sign the pushed digest (release key)',
    needs: [build],
    // Never for a pull request: its code is unreviewed, and pr-<N> must not carry the release signature.
    if: ne(github('event_name'), 'pull_request'),
    runsOn: bp.runsOn,
    timeoutMinutes: 15,
    permissions: { contents: 'read', packages: 'write' },
    environment: bp.environment,
    ...variantStrategy(bp.variants),
    outputs: {},
    steps: [
      checkout(),
      ...pushed.steps,
      sbom,
      ...vulnerabilityScan(bp.p, sbom.outputs.cyclonedx),
      signStep(bp, pushed.imageRef, RELEASE_SIGNING_SECRETS, publicKey, identity, attestationInputs(bp, sbom)),
    ],
  });
}

/** The pull-request key pair: dogfood when declared; reusable when the caller passes its public key. */
function prSigning(bp: BuildParams): { publicKey: Expr; environment: Expr; when: Expr } | undefined {
  const { p, decl } = bp;
  if (!p.reusable) {
    const pr = decl.signing?.['pull-requests'];
    return pr ? { publicKey: lit(pr['public-key']), environment: lit(pr.environment), when: lit(true) } : undefined;
  }
  const publicKey = p.input('pr-public-key', {
    description:
      'Public key of a separate pull-request key pair (secrets COSIGN_PR_PRIVATE_KEY, COSIGN_PR_PASSWORD); empty: pr-<N> images stay unsigned. Never the release key.',
    default: '',
  });
  const environment = p.input('pr-environment', {
    description: 'GitHub environment holding the pull-request key pair (not the release environment).',
    default: 'pull-requests',
  });
  return { publicKey, environment, when: ne(publicKey, '') };
}

function prSignJob(bp: BuildParams, build: Job<'image-ref'>): Job | undefined {
  const pr = prSigning(bp);
  if (!pr) return undefined;
  const { identity } = signingValues(bp);
  const pushed = pushedImageRef(bp.variants, build);
  const forPullRequest = eq(github('event_name'), 'pull_request');
  return job('sign-pr', {
    name: 'Sign the pull-request image (pull-request key)',
    needs: [build],
    if: pr.when.kind === 'literal' ? forPullRequest : and(forPullRequest, pr.when),
    runsOn: bp.runsOn,
    timeoutMinutes: 15,
    permissions: { contents: 'read', packages: 'write' },
    environment: pr.environment,
    ...variantStrategy(bp.variants),
    outputs: {},
    steps: [checkout(), ...pushed.steps, signStep(bp, pushed.imageRef, PR_SIGNING_SECRETS, pr.publicKey, identity)],
  });
}

// ---------------------------------------------------------------------------------------------
// Phase 4: triggers

function callSecrets(): NonNullable<Triggers['workflow_call']>['secrets'] {
  const fromEnvironment = 'Normally a secret of the release environment (its value wins over one passed here).';
  return {
    [RELEASE_SIGNING_SECRETS.key]: {
      description: `Cosign private key (cosign.key contents). ${fromEnvironment}`,
      required: false,
    },
    [RELEASE_SIGNING_SECRETS.password]: {
      description: `Password of the cosign key (may be empty). ${fromEnvironment}`,
      required: false,
    },
    [PR_SIGNING_SECRETS.key]: {
      description: 'Private key of the pull-request key pair (with pr-public-key), from the pr-environment.',
      required: false,
    },
    [PR_SIGNING_SECRETS.password]: { description: 'Password of the pull-request key.', required: false },
    [BUILD_SECRETS]: {
      description:
        "Values of your declarations build.secrets, one NAME=value line each (NAME: the entry's env or github-secret). Masked, passed to the build hop through its environment only, and withheld from pull-request runs.",
      required: false,
    },
    ...NOTIFY_CALL_SECRETS,
  };
}

function buildTriggers(bp: BuildParams, jobs: Job[]): Triggers {
  const build = jobs.find((j) => j.id === 'build')!;
  if (bp.p.reusable) {
    return {
      workflow_call: {
        inputs: bp.p.callInputs,
        secrets: callSecrets(),
        outputs: {
          digest: { description: 'Manifest digest pushed (sha256:<hex>).', value: callOutput(build.refs.digest!) },
          'image-ref': {
            description: 'registry/repo@sha256:<hex> pushed (signed unless built for a pull request).',
            value: callOutput(build.refs['image-ref']!),
          },
          tags: { description: 'Tags written (newline-separated).', value: callOutput(build.refs.tags!) },
          'release-date': {
            description: 'Release date of the run (YYYYMMDD).',
            value: callOutput(build.refs['release-date']!),
          },
        },
      },
    };
  }
  const paths = buildPaths(bp.decl, bp.file, keelHops(jobs));
  return {
    push: { branches: ['main'], paths },
    ...(buildsPullRequests(bp)
      ? { pull_request: { types: ['labeled', 'synchronize'], branches: ['main'], paths } }
      : {}),
    schedule: [{ cron: '0 4 * * 0' }],
    workflow_dispatch: {},
  };
}

export function buildWorkflow(decl: Distro, mode: Mode, opts: GenerateOptions = {}): Workflow {
  const bp = buildParams(decl, mode, opts);
  const build = buildJob(bp);
  const sign = signJob(bp, build);
  const jobs = [build, sign, prSignJob(bp, build)].filter((j): j is Job => Boolean(j));
  // Last: reports a failed build or sign job (never for a pull request).
  jobs.push(buildFailureNotifyJob(bp.p, decl, [build, sign]));
  return {
    file: bp.file,
    source: BUILD_SOURCE,
    name: buildWorkflowName(decl, mode),
    on: buildTriggers(bp, jobs),
    permissions: {},
    actions: bp.p.actionSource(),
    jobs,
  };
}
