import { resolveVariants, type Distro } from '../actions/lib/declarations.js';
import { checkout as checkoutStep, imageRefGuard, readHandoff } from './common.js';
import { and, concat, eq, github, lit, matrix, ne, not, or, startsWith, type Expr, type Value } from './expr.js';
import {
  actionStep,
  job,
  runStep,
  type ActionStep,
  type Job,
  type JobSpec,
  type RunStep,
  type Step,
  type Strategy,
} from './model.js';
import { pins } from './pins.js';
import { perLeg, variantImage } from './variants.js';

/**
 * smoke-boot.yml with two or more image variants: the boot and promote jobs are matrices with the
 * build's legs (one per variant image). GitHub keeps only one leg's job outputs, so each boot leg
 * hands its verdict (the booted digest and its release date) to the promote leg of the same
 * variant as an artifact of this run. A dispatched digest is tested by the leg of its repository
 * (the other legs skip every step), and a digest outside every variant's repository is refused.
 */

/** Artifact (per variant) and directory of the boot leg's verdict. */
export const BOOT_VERDICT_ARTIFACT = 'keel-boot';
export const BOOT_VERDICT_DIR = 'keel-boot';
/** Step id, in the promote leg, of the verdict read back. */
export const BOOT_VERDICT_STEP = 'booted';
/** The release date a boot leg records: a dispatch may leave it empty (today, in promote). */
const RELEASE_DATE_OR_EMPTY = '^([0-9]{8})?$';

const digestOf = (repository: Value): Expr => concat(repository, '@sha256:');

/** True when `ref` names a digest in one of the declared variants' repositories. */
export function inSomeVariant(decl: Distro, ref: Expr): Expr {
  return or(...resolveVariants(decl).map((v) => startsWith(ref, digestOf(variantImage(decl, v)))));
}

/**
 * Whether this leg tests anything: every leg on workflow_run (each boots its own variant's
 * digest); on dispatch only the leg whose repository the dispatched digest is in.
 */
export const legTestsDispatch = (dispatchRef: Expr): Expr =>
  or(ne(github('event_name'), 'workflow_dispatch'), startsWith(dispatchRef, digestOf(matrix('image'))));

/** The steps, each running only where `active` holds (and its own condition does). */
export function onlyWhere(active: Expr, steps: (Step | false | undefined)[]): Step[] {
  return steps
    .filter((s): s is Step => Boolean(s))
    .map((s) => ({ ...s, if: s.if ? and(active, s.if) : active }) as Step);
}

/** Dispatch only: the digest must be in one of the variants' repositories (every leg says so). */
export function dispatchInSomeVariant(decl: Distro, dispatchRef: Expr): RunStep {
  return imageRefGuard({
    name: "Refuse a dispatched image-ref outside every variant's repository",
    if: and(eq(github('event_name'), 'workflow_dispatch'), not(inSomeVariant(decl, dispatchRef))),
    ref: dispatchRef,
    // The main image: a reference in no variant's repository is in none, so this fails, naming it.
    repository: lit(variantImage(decl, resolveVariants(decl)[0]!)),
  });
}

/** Boot leg, last steps: record what booted and hand it to this variant's promote leg. */
export function handVerdictToPromote(values: { imageRef: Expr; releaseDate: Expr }): [RunStep, ActionStep] {
  const write = runStep({
    name: 'Record the booted digest for the promote leg of this variant',
    env: { IMAGE_REF: values.imageRef, RELEASE_DATE: values.releaseDate },
    run: [
      `mkdir -p ${BOOT_VERDICT_DIR}`,
      `printf '%s\\n' "$IMAGE_REF" > ${BOOT_VERDICT_DIR}/image-ref`,
      `printf '%s\\n' "$RELEASE_DATE" > ${BOOT_VERDICT_DIR}/release-date`,
    ].join('\n'),
    local: {
      local: 'write-files',
      dir: BOOT_VERDICT_DIR,
      files: { 'image-ref': values.imageRef, 'release-date': values.releaseDate },
    },
  });
  const name = perLeg(BOOT_VERDICT_ARTIFACT);
  const upload = actionStep({
    name: 'Hand the verdict to the promote leg (artifact of this run)',
    uses: pins.uploadArtifact,
    with: { name, path: `${BOOT_VERDICT_DIR}/`, 'retention-days': 7, 'if-no-files-found': 'error', overwrite: true },
    local: { local: 'artifact-upload', name, paths: [lit(`${BOOT_VERDICT_DIR}/`)] },
  });
  return [write, upload];
}

/**
 * Promote leg, first steps: take this variant's verdict, check its form, and refuse a digest
 * outside this leg's repository before any registry call.
 */
export function takeVerdict(): { steps: Step[]; imageRef: Expr; releaseDate: Expr } {
  const name = perLeg(BOOT_VERDICT_ARTIFACT);
  const download = actionStep({
    name: "Take this variant's boot verdict (artifact of this run)",
    uses: pins.downloadArtifact,
    with: { name, path: BOOT_VERDICT_DIR },
    local: { local: 'artifact-download', name, path: BOOT_VERDICT_DIR },
  });
  const read = readHandoff({
    id: BOOT_VERDICT_STEP,
    name: 'Read and check the verdict',
    dir: BOOT_VERDICT_DIR,
    sender: 'the boot leg',
    date: { pattern: RELEASE_DATE_OR_EMPTY, problem: 'a malformed release date' },
  });
  const guard = imageRefGuard({
    name: "Refuse a verdict outside this variant's repository",
    ref: read.outputs['image-ref'],
    repository: matrix('image'),
  });
  return {
    steps: [download, read, guard],
    imageRef: read.outputs['image-ref'],
    releaseDate: read.outputs['release-date'],
  };
}

/** What smoke-boot.yml's generator hands over to build its jobs per variant. */
export interface PerVariantSpec {
  decl: Distro;
  strategy: { strategy?: Strategy };
  dispatchRef: Expr;
  /** The boot job of one image (no outputs): each leg runs it for its variant. */
  boot: JobSpec<never>;
  /** What a boot leg hands to its promote leg: the booted digest and its release date. */
  booted: { imageRef: Expr; releaseDate: Expr };
  /** The promote job without needs, condition and steps. */
  promote: Omit<JobSpec<never>, 'steps'>;
  /** The promote and release steps, given what booted and when the release steps run. */
  promoteSteps(booted: { imageRef: Expr; releaseDate: Expr }, releaseIf: Expr): Step[];
}

/**
 * The boot and promote jobs, one leg per variant. A variant whose boot or update test fails holds
 * back the whole release (every promote leg needs the whole boot job): the dated tags, the GitHub
 * Release and the download site describe one release. `onlyTestedLegs` applies the dispatch rule
 * to the final promote job (after any step is appended): a leg that did not test the dispatched
 * digest promotes and announces nothing.
 */
export function perVariantJobs(spec: PerVariantSpec): {
  boot: Job;
  promote: Job;
  releaseDate: Expr;
  onlyTestedLegs(promote: Job): Job;
} {
  const tested = legTestsDispatch(spec.dispatchRef);
  const refuseForeign = () => dispatchInSomeVariant(spec.decl, spec.dispatchRef);
  const boot = job('boot', {
    ...spec.boot,
    ...spec.strategy,
    steps: [refuseForeign(), ...onlyWhere(tested, [...spec.boot.steps, ...handVerdictToPromote(spec.booted)])],
  });
  const verdict = takeVerdict();
  // The repository has one GitHub Release per date: the main image's leg publishes it.
  const mainLeg = eq(matrix('variant'), resolveVariants(spec.decl)[0]!.name);
  const promote = job('promote', {
    ...spec.promote,
    ...spec.strategy,
    needs: [boot],
    if: ne(github('event_name'), 'pull_request'),
    steps: [checkoutStep(), ...verdict.steps, ...spec.promoteSteps(verdict, mainLeg)],
  });
  return {
    boot,
    promote,
    releaseDate: verdict.releaseDate,
    onlyTestedLegs: (j) => ({ ...j, steps: [refuseForeign(), ...onlyWhere(tested, j.steps)] }),
  };
}
