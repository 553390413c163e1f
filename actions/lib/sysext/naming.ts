/**
 * The names a system extension is published under. The image file is
 * `<name>_<version>_<arch>.raw`: systemd-sysext strips `_<version>…` to find
 * `extension-release.<name>`, and systemd-sysupdate (or updex) reads the version back with
 * `MatchPattern=<name>_@v_<arch>.raw`. So neither name nor version may contain `_`, and the
 * version keeps to the characters systemd accepts in one (alphanumerics and `.,+-`, no `,` here).
 */
export const SYSEXT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
export const SYSEXT_NAME_EXPECTED =
  'a lowercase extension name of a-z, 0-9 and inner "-" (no "_"), at most 64 characters';

export const SYSEXT_VERSION = /^[A-Za-z0-9](?:[A-Za-z0-9.+-]{0,62}[A-Za-z0-9])?$/;
export const SYSEXT_VERSION_EXPECTED =
  'a version of A-Z a-z 0-9 and inner ". + -" (what systemd-sysupdate accepts, without "_"), at most 64 characters';

/** A Debian package to install: `name`, `name=version` or `name/release` (never an option). */
export const DEBIAN_PACKAGE = /^[a-z0-9][a-z0-9+.-]*(?:=[A-Za-z0-9.+~:-]+|\/[A-Za-z0-9.+~-]+)?$/;
export const DEBIAN_PACKAGE_EXPECTED = 'a Debian package name, name=version or name/release';

/** The extension image file name systemd-sysupdate and updex match. */
export function imageFileName(name: string, version: string, arch: string): string {
  return `${name}_${version}_${arch}.raw`;
}

/**
 * systemd's spelling of an OCI/Go architecture (os-release ARCHITECTURE=, the `%a` specifier).
 * Unknown architectures are refused rather than guessed.
 */
const ARCHITECTURES: Record<string, string> = {
  amd64: 'x86-64',
  '386': 'x86',
  arm64: 'arm64',
  arm: 'arm',
  ppc64le: 'ppc64-le',
  ppc64: 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loongarch64',
  mips64le: 'mips64-le',
};

export function systemdArchitecture(ociArchitecture: string): string | undefined {
  return ARCHITECTURES[ociArchitecture];
}

/**
 * A Debian package version as an extension version: the epoch (`1:`) is dropped and every
 * character systemd does not accept in a version (`~`, `:`, `_`) becomes `.`
 * (`257.13-1~deb13u1` → `257.13-1.deb13u1`).
 */
export function versionFromDebian(v: string): string {
  return v
    .trim()
    .replace(/^\d+:/, '')
    .replace(/[^A-Za-z0-9.+-]/g, '.')
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}
