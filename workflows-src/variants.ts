import { resolveVariants, type Distro, type Variant } from '../actions/lib/declarations.js';
import { BUILD_HANDOFF, IMAGE_ARTIFACT, IMAGE_HANDOFF_DIR, readHandoff } from './common.js';
import { concat, lit, matrix, type Expr } from './expr.js';
import { actionStep, type ActionStep, type Job, type Step, type Strategy } from './model.js';
import { pins } from './pins.js';

/**
 * Image variants (declarations `variants:`) in the per-image jobs (build, smoke-boot, promote).
 * Two or more variants: the job becomes a matrix, one leg per variant, each with its own image
 * (so its own tags, signature and concurrency group). One variant: its constants, no matrix.
 * None, or a reusable workflow (the caller's declarations are unknown when it is generated):
 * nothing changes. Generators ask this module for a job's strategy and the values that vary.
 */
export interface VariantPlan {
  /** The job's matrix (two or more variants), else undefined. */
  strategy?: Strategy;
  /** The destination repository (registry/name) of the job, given the undivided one. */
  image(undivided: Expr): Expr;
  /** Extra inputs of the build hop (variant build-args, containerfile, target); {} without variants. */
  buildInputs: Partial<Record<'build-args' | 'containerfile' | 'target', Expr>>;
}

/** Build-args as the build hop reads them: KEY=value lines, in a stable order. */
export const buildArgLines = (args: Record<string, string>): string =>
  Object.keys(args)
    .sort()
    .map((k) => `${k}=${args[k]}`)
    .join('\n');

/** The repository (registry/name) a variant's image is pushed to. */
export const variantImage = (decl: Distro, v: Variant): string => `${decl.image.registry}/${v.imageName}`;

/** One leg per variant: every value a string (absent as ''). */
export function variantLegs(decl: Distro): Record<string, string>[] {
  return resolveVariants(decl).map((v) => ({
    variant: v.name,
    image: variantImage(decl, v),
    'build-args': buildArgLines(v.buildArgs),
    containerfile: v.containerfile,
    target: v.target ?? '',
  }));
}

function constantPlan(decl: Distro, v: Variant): VariantPlan {
  const args = buildArgLines(v.buildArgs);
  return {
    image: () => lit(variantImage(decl, v)),
    buildInputs: {
      ...(args ? { 'build-args': lit(args) } : {}),
      containerfile: lit(v.containerfile),
      ...(v.target ? { target: lit(v.target) } : {}),
    },
  };
}

export function variantPlan(decl: Distro, reusable: boolean): VariantPlan {
  const variants = reusable ? [] : resolveVariants(decl);
  if (variants.length === 0) return { image: (undivided) => undivided, buildInputs: {} };
  if (variants.length === 1) return constantPlan(decl, variants[0]!);
  const withTarget = variants.some((v) => v.target);
  return {
    strategy: { include: variantLegs(decl) },
    image: () => matrix('image'),
    buildInputs: {
      'build-args': matrix('build-args'),
      containerfile: matrix('containerfile'),
      ...(withTarget ? { target: matrix('target') } : {}),
    },
  };
}

/** `<prefix>-<variant>`: the name of a leg's artifact (legs of one run must not share a name). */
export const perLeg = (prefix: string): Expr => concat(lit(`${prefix}-`), matrix('variant'));

/** The hand-off artifact of a leg: keel-image-<variant>. */
export const legArtifact = (): Expr => perLeg(IMAGE_ARTIFACT);

/** The build job's hand-off upload, named per leg in a matrix; unchanged otherwise. */
export function perVariantUpload(plan: VariantPlan, upload: ActionStep): ActionStep {
  if (!plan.strategy || upload.local.local !== 'artifact-upload') return upload;
  const name = legArtifact();
  return { ...upload, with: { ...upload.with, name }, local: { ...upload.local, name } };
}

/**
 * What a job after the build signs: the build job's output, or (a matrix: GitHub keeps only one
 * leg's outputs) the digest its own leg handed over in this run, read and checked.
 */
export function pushedImageRef(plan: VariantPlan, build: Job<'image-ref'>): { steps: Step[]; imageRef: Expr } {
  if (!plan.strategy) return { steps: [], imageRef: build.refs['image-ref'] };
  const name = legArtifact();
  const download = actionStep({
    name: "Take this variant's pushed digest (artifact of this run)",
    uses: pins.downloadArtifact,
    with: { name, path: lit(IMAGE_HANDOFF_DIR) },
    local: { local: 'artifact-download', name, path: IMAGE_HANDOFF_DIR },
  });
  const read = readHandoff(BUILD_HANDOFF);
  return { steps: [download, read], imageRef: read.outputs['image-ref'] };
}

/** The job's strategy, spread into a job spec ({} without a matrix). */
export const variantStrategy = (plan: VariantPlan): { strategy?: Strategy } =>
  plan.strategy ? { strategy: plan.strategy } : {};

/**
 * The job once per variant image (a matrix with the build's legs; its outputs dropped, since
 * GitHub keeps only one leg's); unchanged with one variant or none.
 */
export function acrossVariants<O extends string>(plan: VariantPlan, j: Job<O>): Job<O> {
  return plan.strategy ? { ...j, strategy: plan.strategy, outputs: {} as Record<O, Expr> } : j;
}
