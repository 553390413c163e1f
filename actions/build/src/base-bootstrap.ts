import type { Distro } from '../../lib/declarations.js';

/**
 * The argv of build_files/base/bootstrap.sh for a declarations file (`base.image` and
 * `base.bootstrap`): the one place that maps the declarations onto the script's flags, for the
 * workflow generator, the local runner and the test harness alike. undefined when the
 * declarations describe no local bootstrap (the base then comes from a registry).
 */
export const BOOTSTRAP_SCRIPT = 'build_files/base/bootstrap.sh';

export function bootstrapArgs(
  decl: Distro,
  opts: { cacheKey?: string; storageDriver?: string } = {},
): string[] | undefined {
  const b = decl.base.bootstrap;
  if (!b) return undefined;
  const args = ['--image', decl.base.image, '--suite', b.suite];
  if (b.mirror) args.push('--mirror', b.mirror);
  if (opts.cacheKey) args.push('--cache-key', opts.cacheKey);
  if (opts.storageDriver) args.push('--storage-driver', opts.storageDriver);
  for (const p of b.packages) args.push('--package', p);
  return args;
}
