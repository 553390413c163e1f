// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { dep5Licenses, parseDpkgStatus } from '../../actions/lib/packages/dpkg.js';
import { diffInventories } from '../../actions/lib/packages/diff.js';
import type { Inventory } from '../../actions/lib/packages/inventory.js';
import { distroQualifier, parseOsRelease } from '../../actions/lib/packages/os-release.js';
import { parseRpmPackages } from '../../actions/lib/packages/rpm.js';
import { PackageDatabaseError } from '../../actions/lib/packages/types.js';

const STATUS = `Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: foreign
Version: 5.2.37-2+b5
Source: bash (5.2.37-2)
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 More text.

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.41-12
Source: glibc

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.41-12
Source: glibc

Package: passwd
Status: install ok installed
Architecture: amd64
Version: 1:4.17.4-2
Source: shadow (1:4.17.4-2)

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: purged
Status: purge ok not-installed
Architecture: amd64
`;

describe('dpkg status', () => {
  it('lists the packages on disk with version, architecture and source, as dpkg-query -W does', () => {
    const pkgs = parseDpkgStatus(STATUS, 'var/lib/dpkg/status');
    expect(pkgs).toEqual([
      {
        type: 'deb',
        name: 'bash',
        version: '5.2.37-2+b5',
        architecture: 'amd64',
        sourceName: 'bash',
        sourceVersion: '5.2.37-2',
      },
      {
        type: 'deb',
        name: 'libc6',
        version: '2.41-12',
        architecture: 'amd64',
        sourceName: 'glibc',
        sourceVersion: '2.41-12',
      },
      {
        type: 'deb',
        name: 'libc6',
        version: '2.41-12',
        architecture: 'i386',
        sourceName: 'glibc',
        sourceVersion: '2.41-12',
      },
      {
        type: 'deb',
        name: 'passwd',
        version: '1:4.17.4-2',
        architecture: 'amd64',
        sourceName: 'shadow',
        sourceVersion: '1:4.17.4-2',
      },
    ]);
  });

  it.each([
    [
      'a line that is not a field',
      'Package: ab\nStatus: install ok installed\ngarbage here\n',
      /line 3: expected "Field: value"/,
    ],
    ['a continuation line first', ' orphan\n', /line 1: continuation line without a field/],
    [
      'a paragraph without Package',
      'Status: install ok installed\nVersion: 1\n',
      /line 1: paragraph without a Package field/,
    ],
    ['a package name with a slash', 'Package: ../../etc\nStatus: install ok installed\n', /not a Debian package name/],
    [
      'a version with a space',
      'Package: ab\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0 evil\n',
      /Version "1.0 evil" is not a Debian version/,
    ],
    [
      'a version with a URL query',
      'Package: ab\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0?arch=x\n',
      /is not a Debian version/,
    ],
    ['a broken Status', 'Package: ab\nStatus: installed\nArchitecture: amd64\nVersion: 1\n', /Status must be/],
    [
      'a duplicate package',
      'Package: ab\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: ab\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n',
      /ab:amd64 is listed twice/,
    ],
    ['a duplicate field', 'Package: ab\nPackage: b\n', /field Package appears twice/],
    ['a control character', 'Package: ab\x1b[31m\nStatus: install ok installed\n', /control character/],
  ])('refuses %s, naming the file and line', (_what, text, re) => {
    let err: unknown;
    try {
      parseDpkgStatus(text, 'var/lib/dpkg/status');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PackageDatabaseError);
    expect((err as Error).message).toMatch(/^package database var\/lib\/dpkg\/status refused: /);
    expect((err as Error).message).toMatch(re);
  });
});

describe('DEP-5 copyright files', () => {
  const DEP5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: thing

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Other
License: Expat
 Permission is hereby granted...

Files: extra/*
Copyright: 2022 Someone
License: GPL-2+

License: GPL-2+
 This program is free software...
`;
  it('gives the short license name of every Files paragraph, once each', () => {
    expect(dep5Licenses(DEP5)).toEqual(['GPL-2+', 'Expat']);
  });
  it('gives nothing for a copyright file that is not machine-readable', () => {
    expect(dep5Licenses('This package was debianized by someone.\n\nIt is GPL.\n')).toBeUndefined();
    expect(dep5Licenses('Format: https://example.com/other\n\nFiles: *\nLicense: MIT\n')).toBeUndefined();
  });
});

describe('os-release', () => {
  it('reads ID and VERSION_ID into the purl distro qualifier', () => {
    const os = parseOsRelease(
      'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="13"\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n',
    );
    expect(os).toMatchObject({ id: 'debian', versionId: '13', prettyName: 'Debian GNU/Linux 13 (trixie)' });
    expect(distroQualifier(os)).toBe('debian-13');
    expect(distroQualifier(parseOsRelease('ID=arch\n'))).toBe('arch');
  });
  it('drops an ID or VERSION_ID with characters os-release does not allow there', () => {
    expect(parseOsRelease('ID="evil&distro=x"\nVERSION_ID="1 2"\n')).toMatchObject({
      id: 'linux',
      versionId: undefined,
    });
  });
});

describe('rpm query output', () => {
  const line = (...f: string[]) => f.join('\t');
  it('reads name, epoch, version-release, arch, source and license; skips gpg-pubkey', () => {
    const out = [
      line('bash', '(none)', '5.2.26', '3.fc40', 'x86_64', 'bash-5.2.26-3.fc40.src.rpm', 'GPL-3.0-or-later'),
      line('keel-alpha', '4', '2.1', '3.fc40', 'noarch', 'keel-alpha-2.1-3.fc40.src.rpm', 'MIT'),
      line('gpg-pubkey', '(none)', 'a15b79cc', '63d04c2c', '(none)', '(none)', 'pubkey'),
      '',
    ].join('\n');
    expect(parseRpmPackages(out, 'usr/lib/sysimage/rpm')).toEqual([
      {
        type: 'rpm',
        name: 'bash',
        version: '5.2.26-3.fc40',
        architecture: 'x86_64',
        sourceName: 'bash',
        sourceVersion: '5.2.26-3.fc40',
        licenses: ['GPL-3.0-or-later'],
      },
      {
        type: 'rpm',
        name: 'keel-alpha',
        version: '2.1-3.fc40',
        epoch: '4',
        architecture: 'noarch',
        sourceName: 'keel-alpha',
        sourceVersion: '2.1-3.fc40',
        licenses: ['MIT'],
      },
    ]);
  });
  it('refuses a record that is not the shape rpm writes (a value with a tab or newline)', () => {
    expect(() =>
      parseRpmPackages(line('a', '(none)', '1', '1', 'x86_64', 'a-1-1.src.rpm') + '\n', 'var/lib/rpm'),
    ).toThrow(/var\/lib\/rpm refused: package 1/);
    expect(() => parseRpmPackages(line('a b', '(none)', '1', '1', 'x86_64', '(none)', 'MIT'), 'var/lib/rpm')).toThrow(
      /invalid package name/,
    );
  });
});

describe('inventory diff', () => {
  const inv = (kernels: string[], pkgs: [string, string, string?][]): Inventory => ({
    kernels: kernels.map((version) => ({ version })),
    databases: [],
    packages: pkgs.map(([name, version, architecture]) => ({
      type: 'deb',
      name,
      version,
      architecture: architecture ?? 'amd64',
    })),
  });
  it('finds added, removed and changed packages and the kernel change', () => {
    const before = inv(
      ['6.1.0-1'],
      [
        ['bash', '5.1'],
        ['curl', '7.0'],
        ['libc6', '2.36', 'amd64'],
        ['libc6', '2.36', 'i386'],
      ],
    );
    const after = inv(
      ['6.1.0-2'],
      [
        ['bash', '5.2'],
        ['jq', '1.7'],
        ['libc6', '2.36', 'amd64'],
        ['libc6', '2.37', 'i386'],
      ],
    );
    const d = diffInventories(before, after);
    expect(d.kernel).toEqual({ from: ['6.1.0-1'], to: ['6.1.0-2'], changed: true });
    expect(d.added).toEqual([{ type: 'deb', name: 'jq', architecture: 'amd64', version: '1.7' }]);
    expect(d.removed).toEqual([{ type: 'deb', name: 'curl', architecture: 'amd64', version: '7.0' }]);
    expect(d.changed).toEqual([
      { type: 'deb', name: 'bash', architecture: 'amd64', from: '5.1', to: '5.2' },
      { type: 'deb', name: 'libc6', architecture: 'i386', from: '2.36', to: '2.37' },
    ]);
  });
  it('treats a first release as everything added', () => {
    const d = diffInventories(undefined, inv(['6.1'], [['bash', '5.2']]));
    expect(d.kernel).toEqual({ from: [], to: ['6.1'], changed: true });
    expect(d.added).toHaveLength(1);
    expect(d.removed).toEqual([]);
  });
});
