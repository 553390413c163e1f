import { UserError } from '../errors.js';

/** Kernel directories (`usr/lib/modules/<kver>`) in a flattened image index. */
export function kernelDirs(index: ReadonlyMap<string, { type: string; path: string }>): string[] {
  return [...index.values()]
    .filter((e) => e.type === 'dir' && /^usr\/lib\/modules\/[^/]+$/.test(e.path))
    .map((e) => e.path.slice('usr/lib/modules/'.length));
}

/**
 * The one kernel of a bootc image (bootc boots exactly one, from /usr/lib/modules/<kver>/),
 * with the files the caller needs from it. `refusal` prefixes the error (what is refused).
 */
export function theKernel(
  index: ReadonlyMap<string, { type: string; path: string }>,
  opts: { files?: string[]; refusal?: string } = {},
): string {
  const kernels = kernelDirs(index);
  const pre = opts.refusal ? `${opts.refusal}: ` : '';
  if (kernels.length !== 1) {
    throw new UserError(
      `${pre}the image must hold exactly one kernel under /usr/lib/modules (found ${kernels.length}: ${kernels.join(', ') || 'none'})`,
    );
  }
  const k = kernels[0]!;
  for (const f of opts.files ?? []) {
    if (index.get(`usr/lib/modules/${k}/${f}`)?.type !== 'file')
      throw new UserError(`${pre}/usr/lib/modules/${k}/${f} is missing from the image`);
  }
  return k;
}
