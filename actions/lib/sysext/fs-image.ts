import { seededUuid } from '../vm/disk.js';

/**
 * The extension's file system image, byte-for-byte reproducible from the same tree: every owner
 * root, every timestamp (files, directories, the superblock) fixed at 0, no filesystem UUID from
 * the clock or /dev/urandom (erofs: derived from the extension's identity), directory entries in
 * name order (both tools sort them). squashfs-tools >= 4.4 and erofs-utils >= 1.5.
 */
export type SysextFormat = 'squashfs' | 'erofs';
export const SYSEXT_FORMATS = ['squashfs', 'erofs'] as const;

/** The tool of a format and its Debian package (for a clear "missing tool" message). */
export const FORMAT_TOOLS: Record<SysextFormat, { tool: string; pkg: string }> = {
  squashfs: { tool: 'mksquashfs', pkg: 'squashfs-tools' },
  erofs: { tool: 'mkfs.erofs', pkg: 'erofs-utils' },
};

/** argv (tool first) that turns `tree` into the image `out`. `seed` names the extension (erofs UUID). */
export function fsImageArgv(format: SysextFormat, tree: string, out: string, seed: string): [string, string[]] {
  if (format === 'squashfs') {
    return [
      'mksquashfs',
      [
        tree,
        out,
        '-noappend',
        '-quiet',
        '-no-progress',
        '-comp',
        'zstd',
        '-all-root',
        '-all-time',
        '0',
        '-mkfs-time',
        '0',
        '-reproducible',
        '-xattrs',
      ],
    ];
  }
  return [
    'mkfs.erofs',
    ['--quiet', '-zlz4hc', '--all-root', '-T0', `-U${seededUuid(`keel-sysext/${seed}`)}`, out, tree],
  ];
}
