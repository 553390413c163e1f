/** The validate hop's check ids: shared by the hop and the declarations (validate.checks). */
export const CHECK_IDS = [
  'one-kernel',
  'kernel-files',
  'initramfs-size',
  'initramfs-generic',
  'initramfs-contents',
  'ostree-linux-label',
  'bootc-label',
  'no-repo-files',
  'var-content',
  'bootc-lint',
  'passwd',
  'os-release',
  'boot-empty',
  'install-media',
] as const;

export type CheckId = (typeof CHECK_IDS)[number];

/** Checks that only warn unless `warn-checks` says otherwise: size is a heuristic, not a verdict. */
export const DEFAULT_WARN_CHECKS: readonly CheckId[] = ['initramfs-size'];
