import type { Distro } from '../../actions/lib/declarations.js';
import {
  aptInstall,
  checkout,
  downloadHandoff,
  enableKvm,
  imageRefGuard,
  NOTIFY_CALL_SECRETS,
  promotionConcurrency,
  Params,
  BUILD_HANDOFF,
  readHandoff,
  registryToken,
  registryUser,
  VM_PACKAGES,
  type GenerateOptions,
  type Mode,
} from '../common.js';
import {
  and,
  callOutput,
  concat,
  eq,
  github,
  input,
  lines,
  lit,
  matrix,
  ne,
  or,
  startsWith,
  type Expr,
} from '../expr.js';
import { freeDiskStep } from '../free-disk.js';
import { job, keel, type Job, type Step, type Triggers, type Workflow } from '../model.js';
import { bootFailureNotify, withPromotionNotice } from '../notify.js';
import { buildWorkflowName } from './build.js';
import { changelogArtifact, publishRelease, uploadChangelog } from '../release-notes.js';
import { perVariantJobs } from '../variant-boot.js';
import { legArtifact, variantPlan, variantStrategy } from '../variants.js';

/**
 * smoke-boot.yml: when a build of main succeeded (or on dispatch with an explicit digest), take
 * the digest *that* build run pushed (its artifact, not a re-resolved tag), verify its signature,
 * boot it, and promote exactly the booted digest, only if the boot passed and only if it is
 * still the current candidate (so a pr-N digest is never promoted). Promotions queue in one
 * group and are never cancelled. An image reference from outside (the dispatch input, the build
 * run's artifact) must name the distro's repository before any registry call. With two or more
 * image variants the boot and promote jobs run once per variant (variant-boot.ts).
 */
export const SMOKE_SOURCE = 'workflows-src/workflows/smoke-boot.ts';

/** What makes the workflow_run trigger safe (written next to it, and tested). */
export const WORKFLOW_RUN_GUARDS = [
  "workflow_run runs with this repository's token on behalf of another run. Guards:",
  '- the boot job runs only for a successful build of this repository that was not a pull request',
  '  (conclusion, event and head_repository checked in its if:);',
  "- that run's artifact is untrusted data: only its digest reference is read, checked against",
  '  <image>@sha256:<64 hex> before any registry call, and never executed or checked out;',
  '- the image must verify with the public key before it boots, and again before promotion.',
];

export function smokeBootWorkflow(decl: Distro, mode: Mode, opts: GenerateOptions = {}): Workflow {
  const p = new Params(mode, opts);
  if (!p.reusable && !decl.signing)
    throw new Error('smoke-boot verifies signatures: declarations signing.public-key is required');
  const repository = p.v('image', `${decl.image.registry}/${decl.image.name}`, {
    description: 'Image repository, registry/name: only a digest of this repository is promoted.',
    required: true,
  });
  // Per variant (a matrix leg, or the one declared variant's image), else the repository.
  const plan = variantPlan(decl, p.reusable);
  const perVariant = Boolean(plan.strategy);
  const image = plan.image(repository);
  const publicKey = p.v('public-key', decl.signing?.['public-key'] ?? '', {
    description:
      'Cosign public key (path in your repository, or PEM): the image must verify before it boots and before it is promoted.',
    required: true,
  });
  const identity = p.v('signing-identity', decl.signing?.identity ?? 'repository', {
    description: 'Signed identity rule: repository or tags.',
    default: 'repository',
  });
  const candidate = p.v('candidate-tag', decl.tags.candidate, {
    description: 'Only a digest currently tagged so is promoted.',
    default: 'candidate',
  });
  const stable = p.v('stable-tag', decl.tags.stable, { description: 'Stable tag word.', default: 'stable' });
  const sb = decl['smoke-boot'];
  const runsOn = p.runsOn();
  const user = registryUser();
  const token = registryToken();

  // workflow_dispatch takes an explicit digest (inputs.image-ref); in the reusable variant the
  // caller passes it through the same-named input.
  const dispatchRef = p.reusable
    ? p.input('image-ref', {
        description:
          "registry/repo@sha256:<hex> to test (dispatch); empty on workflow_run: the triggering build run's digest.",
        default: '',
      })
    : input('image-ref');
  const dispatchDate = p.reusable
    ? p.input('release-date', {
        description: 'Release date YYYYMMDD for the dated stable tags (dispatch); empty: today.',
        default: '',
      })
    : input('release-date');

  const fromRun = eq(github('event_name'), 'workflow_run');
  // A build of this repository's main that succeeded, never a pull request's run (a fork can
  // name its branch main), or a dispatch.
  const gate = or(
    ne(github('event_name'), 'workflow_run'),
    and(
      eq(github('event.workflow_run.conclusion'), 'success'),
      ne(github('event.workflow_run.event'), 'pull_request'),
      eq(github('event.workflow_run.head_repository.full_name'), github('repository')),
    ),
  );

  const handoff = readHandoff({ ...BUILD_HANDOFF, if: fromRun });
  const imageRef = or(handoff.outputs['image-ref'], dispatchRef);
  // A dispatched reference is checked first, before any step holds a token; the build run's
  // reference as soon as it is read, before any registry call.
  const dispatchGuard = imageRefGuard({
    name: perVariant
      ? "Refuse a dispatched image-ref outside this variant's repository"
      : "Refuse a dispatched image-ref outside the distro's repository",
    if: ne(github('event_name'), 'workflow_run'),
    ref: dispatchRef,
    repository: image,
  });
  const handoffGuard = imageRefGuard({
    name: "Refuse a handed-over image-ref outside the distro's repository",
    if: fromRun,
    ref: handoff.outputs['image-ref'],
    repository: image,
  });
  const verify = keel.verify(
    'verify',
    {
      'image-ref': imageRef,
      'public-key': publicKey,
      identity,
      // The sign job attests every release: no SBOM or provenance, no boot.
      'attestation-types': lines('cyclonedx', 'slsaprovenance1'),
      username: user,
      password: token,
    },
    { name: 'Verify the signature, the SBOM and the provenance of the digest' },
  );
  // Guest size and time bound: the same for the fresh boot and the update test's boots.
  const memory = p.setting('memory', sb.memory, { description: 'Guest memory (MiB).', number: true });
  const cpus = p.setting('cpus', sb.cpus, { description: 'Guest vCPUs.', number: true });
  const timeout = p.setting('boot-timeout', sb.timeout, { description: 'Seconds to reach multi-user.', number: true });
  const console = (name: 'success-pattern' | 'failure-pattern' | 'kernel-args', description: string) =>
    p.optionalSetting(name, sb[name], { description });
  const boot = keel['smoke-boot'](
    'boot',
    {
      image: imageRef,
      backend: p.setting('backend', sb.backend, { description: 'Boot backend: direct, uefi or bib.' }),
      memory,
      cpus,
      timeout,
      ...console('success-pattern', 'Console line (regular expression) that means the boot passed.'),
      ...console('failure-pattern', 'Console line (regular expression) that means the boot failed.'),
      ...console('kernel-args', 'Extra kernel command line of the test boot.'),
      'public-key': publicKey,
      identity,
      'artifact-name': concat(lit('smoke-boot-serial-'), github('run_id'), lit('-'), github('run_attempt')),
      username: user,
      password: token,
    },
    { name: 'Boot it' },
  );
  // A machine on stable today must update to this digest and roll back, before promotion.
  // Dogfood: the declarations decide whether the step exists; reusable: at run time, both the
  // caller's declarations (smoke-boot.update-test) and the input must allow it.
  const runUpdate = p.reusable || sb['update-test'];
  const updateIf = p.reusable
    ? {
        if: and(
          eq(
            p.input('update-test', {
              description:
                "Also prove that a machine on stable updates to the candidate, keeps /etc and /var, and rolls back (three boots) before promotion. false turns it off; true runs it unless your declarations' smoke-boot.update-test is false.",
              default: true,
            }),
            true,
          ),
          eq(p.declared('update-test'), 'true'),
        ),
      }
    : {};
  const update = keel['update-test'](
    'update',
    {
      'image-ref': boot.outputs['image-ref'],
      'previous-image': stable,
      'public-key': publicKey,
      identity,
      memory,
      cpus,
      timeout,
      'artifact-name': concat(lit('update-test-serial-'), github('run_id'), lit('-'), github('run_attempt')),
      username: user,
      password: token,
    },
    { name: 'Update a machine on stable to it, and roll back', ...updateIf },
  );
  // Minutes: the boot and the update test (each bounded by the boot timeout), the disk builds,
  // tool install and slack.
  const bootMinutes = p.reusable ? 120 : 2 * Math.ceil(sb.timeout / 60) + 30;
  const changelog = keel.changelog(
    'changelog',
    { 'image-ref': boot.outputs['image-ref'], 'previous-image': stable, username: user, password: token },
    // Release notes inform, they do not gate: a failure here shows red on the step, not on the promotion.
    { name: 'What changed since stable (release notes, in the summary)', continueOnError: true },
  );
  const releaseDate = or(handoff.outputs['release-date'], dispatchDate);
  const bootSteps: (Step | false | undefined)[] = [
    dispatchGuard,
    checkout(),
    freeDiskStep(p),
    // Reusable: the caller's smoke-boot settings (after the steps above asked for them).
    p.settingsStep(
      p.v('declarations', 'declarations/distro.yaml', {
        description: 'Path of your distro declarations: the smoke-boot settings are read from it.',
        default: 'declarations/distro.yaml',
      }),
    ),
    downloadHandoff(fromRun, perVariant ? legArtifact() : undefined),
    handoff,
    handoffGuard,
    enableKvm(),
    aptInstall(VM_PACKAGES),
    verify,
    boot,
    ...(runUpdate ? [update] : []),
    // Before promote moves stable: what this digest changes for a machine on stable today.
    changelog,
    uploadChangelog(changelog.outputs.markdown, perVariant ? changelogArtifact(matrix('variant')) : undefined),
  ];
  const bootSpec = {
    name: 'Verify and boot the digest of the build run',
    if: gate,
    runsOn,
    timeoutMinutes: bootMinutes,
    // actions: read lets download-artifact read the triggering run's artifact.
    permissions: { actions: 'read', contents: 'read', packages: 'read' },
  } as const;

  // Moving stable is the release: only from main (the environment's branch policy, where the
  // owner can add reviewers); one promotion at a time per image, never cancelled (a queued one
  // waits); on the job, not the workflow: a reusable workflow's group must not be able to
  // deadlock with its caller's. contents: write for the GitHub Release stable.<date>.
  const promoteSpec = {
    name: 'Promote the booted digest',
    runsOn,
    timeoutMinutes: 15,
    permissions: { contents: 'write', packages: 'write' },
    environment: p.environment(decl),
    concurrency: promotionConcurrency(image),
    outputs: {},
  } as const;
  const promoteSteps = (booted: { imageRef: Expr; releaseDate: Expr }, releaseIf?: Expr): Step[] => [
    keel.promote(
      'promote',
      {
        'image-ref': booted.imageRef,
        'require-tag': candidate,
        'stable-tag': stable,
        'release-date': booted.releaseDate,
        'public-key': publicKey,
        identity,
        username: user,
        password: token,
      },
      { name: 'Promote (only the candidate digest that booted)' },
    ),
    ...publishRelease({
      releaseDate: booted.releaseDate,
      stableTag: stable,
      ...(releaseIf ? { artifact: changelogArtifact(matrix('variant')), if: releaseIf } : {}),
    }),
  ];

  if (perVariant) {
    const jobs = perVariantJobs({
      decl,
      strategy: variantStrategy(plan),
      dispatchRef,
      boot: { ...bootSpec, steps: bootSteps },
      booted: { imageRef: boot.outputs['image-ref'], releaseDate },
      promote: promoteSpec,
      promoteSteps,
    });
    const promoted = withPromotionNotice(jobs.promote, { image, stable, releaseDate: jobs.releaseDate });
    const reported = bootFailureNotify({ p, decl, boot: jobs.boot, promote: promoted, image: repository, gate });
    return smokeBootFile(decl, p, {
      boot: reported.boot,
      promote: jobs.onlyTestedLegs(promoted),
      notify: reported.notify,
    });
  }

  const bootJob = job('boot', {
    ...bootSpec,
    outputs: {
      'image-ref': boot.outputs['image-ref'],
      digest: boot.outputs.digest,
      passed: boot.outputs.passed,
      // 'false' only when the update test ran and failed ('' when it was switched off).
      updated: runUpdate ? update.outputs.passed : lit(''),
      'release-date': releaseDate,
    },
    steps: bootSteps,
  });
  const booted = { imageRef: bootJob.refs['image-ref'], releaseDate: bootJob.refs['release-date'] };
  const promoteJob = job('promote', {
    ...promoteSpec,
    needs: [bootJob],
    // Only after a passed boot, only within the image's own repository (a dispatched digest of
    // another repository is never promoted, whatever it is tagged there), and never on behalf of
    // a pull request (a caller of the reusable workflow may run on one).
    if: and(
      ne(github('event_name'), 'pull_request'),
      eq(bootJob.refs.passed, 'true'),
      ne(bootJob.refs.updated, 'false'),
      startsWith(booted.imageRef, concat(image, '@sha256:')),
    ),
    steps: [checkout(), ...promoteSteps(booted)],
  });

  // Notifications: the promotion (a last step of the promote job), and a failed boot, update
  // test or promotion (a final job in the release environment, where the ntfy secrets are).
  const promoted = withPromotionNotice(promoteJob, { image, stable, releaseDate: booted.releaseDate });
  const reported = bootFailureNotify({ p, decl, boot: bootJob, promote: promoted, image, gate });

  return smokeBootFile(decl, p, {
    boot: reported.boot,
    promote: promoted,
    notify: reported.notify,
    callOutputs: {
      'image-ref': { description: 'The digest that was booted.', value: callOutput(bootJob.refs['image-ref']) },
      passed: { description: 'true when the boot passed.', value: callOutput(bootJob.refs.passed) },
    },
  });
}

type CallOutputs = Record<string, { description: string; value: Expr }>;

/** The workflow around the jobs: triggers (workflow_run and dispatch, or workflow_call) and name. */
function smokeBootFile(
  decl: Distro,
  p: Params,
  jobs: { boot: Job; promote: Job; notify: Job; callOutputs?: CallOutputs },
): Workflow {
  const on: Triggers = p.reusable
    ? { workflow_call: { inputs: p.callInputs, secrets: NOTIFY_CALL_SECRETS, outputs: jobs.callOutputs ?? {} } }
    : {
        workflow_dispatch: {
          inputs: {
            'image-ref': {
              description: 'Digest reference to test and promote: registry/repo@sha256:<hex> (a tag is refused).',
              required: true,
              type: 'string',
            },
            'release-date': {
              description: 'Release date YYYYMMDD for stable.<date> and <date> (empty: today, UTC).',
              required: false,
              type: 'string',
              default: '',
            },
          },
        },
        workflow_run: { workflows: [buildWorkflowName(decl, 'dogfood')], types: ['completed'], branches: ['main'] },
      };
  return {
    file: p.reusable ? 'reusable-smoke-boot.yml' : 'smoke-boot.yml',
    source: SMOKE_SOURCE,
    name: p.reusable ? 'Keel smoke-boot (reusable)' : `Keel smoke-boot (${decl.image.name})`,
    on,
    ...(on.workflow_run ? { triggerGuards: { workflow_run: WORKFLOW_RUN_GUARDS } } : {}),
    permissions: {},
    actions: p.actionSource(),
    jobs: [jobs.boot, jobs.promote, jobs.notify],
  };
}
