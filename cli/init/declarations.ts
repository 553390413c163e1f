import { stringify } from 'yaml';

/**
 * The declarations/distro.yaml `keel init` writes: every section the generated workflows need,
 * each with a comment saying what it drives. Validated with the same schema as Keel's own before
 * anything is written.
 */

/**
 * The package list of the Debian bootc base for `--debian`: the same as Keel's example distro
 * (declarations/distro.yaml base.bootstrap.packages), so the base bootstrap's input hash is the
 * same and a machine that built one base reuses it for the other. The base is generic: systemd,
 * a kernel with a generic initramfs, dracut with dracut-live (the live ISO's dmsquash-live
 * module), ostree and its dracut module; nothing distro-specific.
 */
export const DEBIAN_BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'systemd-resolved',
  'udev',
  'dbus',
  'kmod',
  'linux-image-amd64',
  'dracut',
  'dracut-live',
  'ostree',
  'ostree-boot',
  'iproute2',
  'zstd',
  'ca-certificates',
  'passwd',
  'login',
];
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

export interface DistroNames {
  /** registry host and namespace, e.g. ghcr.io/acme */
  registry: string;
  /** image name, e.g. acme-os */
  name: string;
  /** the namespace's last component, e.g. acme */
  owner: string;
  title: string;
}

export type BaseChoice = { kind: 'debian'; suite: string } | { kind: 'image'; image: string };

/** 'acme-os' → 'Acme OS'. */
export function titleOf(name: string): string {
  return name
    .split(/[-_.]+/)
    .filter(Boolean)
    .map((w) => (w === 'os' ? 'OS' : `${w[0]!.toUpperCase()}${w.slice(1)}`))
    .join(' ');
}

/** An ISO volume label from the name: A-Z 0-9 _ -, at most 32 characters. */
export function isoLabelOf(name: string): string {
  return `${name
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .slice(0, 27)}_LIVE`;
}

export function baseImageOf(names: DistroNames, base: BaseChoice): string {
  return base.kind === 'debian' ? `localhost/${names.name}-base:${base.suite}` : base.image;
}

const section = (comment: string, body: Record<string, unknown>) =>
  `${comment
    .split('\n')
    .map((l) => `# ${l}`)
    .join('\n')}\n${stringify(body, { lineWidth: 0 })}`;

export function declarationsText(names: DistroNames, base: BaseChoice, schemaUrl?: string): string {
  const debian = base.kind === 'debian';
  const parts = [
    [
      ...(schemaUrl ? [`# yaml-language-server: $schema=${schemaUrl}`] : []),
      `# ${names.title}, described for Keel: the caller workflows in .github/workflows/ and \`keel run\``,
      '# read this file. Every key: declarations/distro.schema.json in Keel; guide: docs/adoption.md.',
      'version: 1',
      '',
    ].join('\n'),
    section('Where the image is published, and its OCI labels. licenses: the SPDX expression of what you ship.', {
      image: {
        registry: names.registry,
        name: names.name,
        title: names.title,
        description: `${names.title}, a bootc image built and released with Keel`,
        vendor: names.owner,
        licenses: 'NOASSERTION',
        keywords: ['bootc'],
      },
    }),
    section('/usr/lib/os-release of the image (build_files/finalize.sh writes it from these).', {
      os: {
        id: names.name,
        name: names.title,
        'pretty-name': names.title,
        ...(debian ? { 'id-like': 'debian' } : {}),
      },
    }),
    section(
      'Tag words. Keel writes candidate, candidate.<date>, pr-<N> (a pull request with the label),\nstable, stable.<date> and <date>; never latest.',
      { tags: { candidate: 'candidate', stable: 'stable', 'pr-label': 'vm-test' } },
    ),
    debian
      ? section(
          `The base: Debian ${base.suite} laid out as a bootc image by Keel's base bootstrap (mmdebstrap,\nno registry), cached locally by its inputs. The Containerfile builds FROM \${BASE_IMAGE}.`,
          {
            base: {
              image: baseImageOf(names, base),
              bootstrap: {
                tool: 'mmdebstrap',
                suite: base.suite,
                mirror: DEBIAN_MIRROR,
                packages: DEBIAN_BASE_PACKAGES,
              },
            },
          },
        )
      : section('The base image (resolved to a digest once per build; the Containerfile builds FROM ${BASE_IMAGE}).', {
          base: { image: baseImageOf(names, base) },
        }),
    section('How the image is built; inputs: the paths whose change triggers a build.', {
      build: {
        containerfile: 'Containerfile',
        context: '.',
        inputs: ['Containerfile', 'build_files/**', 'declarations/**'],
      },
    }),
    section(
      'Static gates before anything is pushed. A generic Debian initramfs is ~37 MB, a Fedora one\nlarger (the size check only warns).',
      {
        validate: {
          'min-initramfs-mb': debian ? 30 : 50,
          'require-ostree-module': 'auto',
          'initramfs-modules': ['virtio_blk', 'ext4'],
        },
      },
    ),
    section('The boot gate before promotion: QEMU boots the pushed digest to multi-user.', {
      'smoke-boot': { backend: 'direct', memory: 2048, cpus: 2, timeout: 1800 },
    }),
    section('Install media from the stable digest: a live ISO (needs dracut-live in the image), boot-tested.', {
      iso: { name: names.name, label: isoLabelOf(names.name), type: 'iso', backend: 'live', 'boot-test': true },
    }),
    section('Publication of the ISO on the Internet Archive ({date}, {digest}, {file} are expanded).', {
      'internet-archive': {
        identifier: `${names.name}-live-iso-{date}`,
        metadata: {
          mediatype: 'software',
          title: `${names.title} live ISO {date}`,
          description: `Live ISO of ${names.title} built from image {digest}`,
        },
      },
    }),
    section('The public half of the signing key, committed (keel keygen; see KEEL-SETUP.md).', {
      signing: { 'public-key': 'cosign.pub', identity: 'repository' },
    }),
    section('GitHub environment of every job that reads a release secret or moves stable: restrict it to main.', {
      environment: 'release',
    }),
  ];
  return parts.join('\n');
}
