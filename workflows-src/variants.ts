import { resolveVariants, type Distro, type Variant } from '../actions/lib/declarations.js';
import { concat, lit, matrix, type Expr } from './expr.js';
import type { Strategy } from './model.js';

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

/** One leg per variant: every value a string (absent as ''). */
export function variantLegs(decl: Distro): Record<string, string>[] {
  return resolveVariants(decl).map((v) => ({
    variant: v.name,
    image: `${decl.image.registry}/${v.imageName}`,
    'build-args': buildArgLines(v.buildArgs),
    containerfile: v.containerfile,
    target: v.target ?? '',
  }));
}

function constantPlan(decl: Distro, v: Variant): VariantPlan {
  const args = buildArgLines(v.buildArgs);
  return {
    image: () => lit(`${decl.image.registry}/${v.imageName}`),
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

/** A concurrency group per image: `<prefix><image>` (the image already differs per variant). */
export const perImageGroup = (prefix: string, image: Expr): Expr => concat(lit(prefix), image);
