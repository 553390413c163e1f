/**
 * Small image file sets for the hops' table tests: what the code under test reads from an
 * image (os-release, the dpkg database, a DEP-5 copyright file, one kernel with its initramfs),
 * as plain files for makeOciImage / seedImage layers. The bytes are stand-ins: nothing boots
 * them (the fake runner plays the tools that would).
 */
export const KVER = '6.12.48+deb13-amd64';

export interface DebianPackage {
  name: string;
  version: string;
  source?: string;
}

export const DEFAULT_PACKAGES: DebianPackage[] = [
  { name: 'bash', version: '5.2.37-2+b5' },
  { name: 'libc6', version: '2.41-12', source: 'glibc' },
  { name: `linux-image-${KVER}`, version: '6.12.48-1', source: 'linux-signed-amd64' },
];

/** A dpkg status file listing `packages` as installed (amd64). */
export function dpkgStatus(packages: DebianPackage[]): string {
  return packages
    .map(
      (p) =>
        `Package: ${p.name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${p.version}\n` +
        `${p.source ? `Source: ${p.source}\n` : ''}Description: ${p.name}\n`,
    )
    .join('\n');
}

export const DEBIAN_OS_RELEASE =
  'PRETTY_NAME="Keel OS (trixie)"\nNAME="Keel OS"\nID=keel\nID_LIKE=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n';

/** A machine-readable copyright file (DEP-5) whose `Files: *` license is GPL-3+. */
export const BASH_COPYRIGHT =
  'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 1987-2024 Free Software Foundation, Inc.\nLicense: GPL-3+\n';

/**
 * The files of a Debian-based bootable image: os-release in /usr/lib (and the /etc copy), the
 * dpkg database, bash's copyright, and `usr/lib/modules/<kver>/{vmlinuz,initramfs.img}`.
 */
export function debianFiles(
  opts: { packages?: DebianPackage[]; kver?: string; extra?: Record<string, string | Buffer> } = {},
): Record<string, string | Buffer> {
  const kver = opts.kver ?? KVER;
  return {
    'usr/lib/os-release': DEBIAN_OS_RELEASE,
    'etc/os-release': DEBIAN_OS_RELEASE,
    'var/lib/dpkg/status': dpkgStatus(opts.packages ?? DEFAULT_PACKAGES),
    'usr/share/doc/bash/copyright': BASH_COPYRIGHT,
    [`usr/lib/modules/${kver}/vmlinuz`]: `vmlinuz ${kver}\n`,
    [`usr/lib/modules/${kver}/initramfs.img`]: `initramfs ${kver}\n`,
    'usr/bin/bash': '#!bash\n',
    ...opts.extra,
  };
}
