// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeBuildArgs } from '../../actions/build/src/plan.js';
import { loadDeclarations } from '../../actions/lib/declarations.js';

/**
 * The example distro's sources, checked without building anything: the shell helpers shared by
 * the base bootstrap and the staged build run against fixture trees, and the repository rules
 * (shell syntax, no unexplained `|| true`, system files only under /usr, the Containerfile's
 * build-args matching what the build action passes) are asserted on the files themselves.
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bf = path.join(root, 'build_files');
const common = path.join(bf, 'lib', 'common.sh');
const decl = loadDeclarations(path.join(root, 'declarations', 'distro.yaml'));

const tmps: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-distro-'));
  tmps.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs a function of lib/common.sh in bash; returns status, stdout, stderr. */
function shfn(fn: string, ...args: string[]) {
  const r = spawnSync('bash', ['--norc', '-euo', 'pipefail', '-c', `. "$0"; ${fn} "$@"`, common, ...args], {
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(p: string, content = '') {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
}

function shellScripts(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (
        e.isFile() &&
        (/\.sh$/.test(e.name) || /^#!.*\b(ba)?sh\b/.test(fs.readFileSync(p, 'utf8').split('\n')[0] ?? ''))
      )
        out.push(p);
    }
  };
  walk(bf);
  return out.sort();
}

describe('build_files', () => {
  it('every shell script parses (bash -n / sh -n) and stage scripts are executable', () => {
    const scripts = shellScripts();
    expect(scripts.length).toBeGreaterThan(8);
    for (const s of scripts) {
      const shell = (fs.readFileSync(s, 'utf8').split('\n')[0] ?? '').includes('/bin/sh') ? 'sh' : 'bash';
      const r = spawnSync(shell, ['-n', s], { encoding: 'utf8' });
      expect([path.relative(root, s), r.status, r.stderr]).toEqual([path.relative(root, s), 0, '']);
    }
    for (const s of [
      'build.sh',
      'image-info.sh',
      'base/bootstrap.sh',
      'base/customize.sh',
      ...fs
        .readdirSync(bf)
        .filter((d) => /^\d\d-/.test(d))
        .map((d) => `${d}/run.sh`),
    ]) {
      expect([s, (fs.statSync(path.join(bf, s)).mode & 0o111) !== 0]).toEqual([s, true]);
    }
  });

  it('has the numbered stages, one concern each, in order', () => {
    expect(
      fs
        .readdirSync(bf)
        .filter((d) => /^\d\d-/.test(d))
        .sort(),
    ).toEqual(['10-os-identity', '20-system-files', '30-kernel', '90-cleanup']);
  });

  it('never swallows a failure with || true (or || :) without a written reason next to it', () => {
    for (const s of shellScripts()) {
      const lines = fs.readFileSync(s, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!/\|\|\s*(true|:)\b/.test(line.replace(/#.*$/, ''))) return;
        const explained = line.includes('#') || /^\s*#/.test(lines[i - 1] ?? '');
        expect([`${path.relative(root, s)}:${i + 1}`, explained]).toEqual([`${path.relative(root, s)}:${i + 1}`, true]);
      });
    }
  });

  it('ships system files only under /usr, and every shipped symlink resolves inside system_files', () => {
    const sf = path.join(bf, 'system_files');
    expect(fs.readdirSync(sf)).toEqual(['usr']);
    const links: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isSymbolicLink()) links.push(p);
        else if (e.isDirectory()) walk(p);
      }
    };
    walk(sf);
    expect(links.map((l) => path.relative(sf, l))).toContain(
      'usr/lib/systemd/user/timers.target.wants/keel-os-staleness.timer',
    );
    for (const l of links) expect([l, fs.existsSync(l)]).toEqual([l, true]);
  });

  it('declares in the Containerfile exactly the build-args the build action passes', () => {
    const cf = fs.readFileSync(path.join(root, 'Containerfile'), 'utf8');
    const argNames = [...cf.matchAll(/^ARG\s+([A-Z_][A-Z0-9_]*)/gm)].map((m) => m[1]!).sort();
    const derived = computeBuildArgs({
      base: { given: 'b', digest: 'd', pinned: 'p', source: 'local' },
      labels: {
        'org.opencontainers.image.created': 'c',
        'org.opencontainers.image.version': 'v',
        'org.opencontainers.image.revision': 'r',
        'org.opencontainers.image.source': 's',
      },
      decl,
      inputsDigest: 'sha256:x',
      user: {},
    });
    expect(argNames).toEqual(Object.keys(derived).sort());
    // The default base is the declared one (a plain `buildah build` builds the same thing).
    expect(/^ARG BASE_IMAGE=(\S+)$/m.exec(cf)?.[1]).toBe(decl.base.image);
    // The build scripts are bound, never copied into the image.
    expect(cf).not.toMatch(/^COPY (?!build_files \/$)/m);
    expect(cf).toMatch(/^RUN --mount=type=bind,from=ctx,source=\/,target=\/ctx,ro \\\n\s+\/ctx\/build\.sh$/m);
  });
});

describe('lib/common.sh on fixture trees', () => {
  it('single_kernel names the one kernel and refuses zero, two, or one without vmlinuz', () => {
    const r = tmp();
    expect(shfn('single_kernel', r).stderr).toMatch(
      /expected exactly one kernel directory under \/usr\/lib\/modules, found 0/,
    );
    write(path.join(r, 'usr/lib/modules/6.1.0-1/vmlinuz'), 'k');
    expect(shfn('single_kernel', r)).toEqual({ code: 0, stdout: '6.1.0-1\n', stderr: '' });
    fs.mkdirSync(path.join(r, 'usr/lib/modules/6.2.0-2'));
    const two = shfn('single_kernel', r);
    expect(two.code).toBe(1);
    expect(two.stderr).toContain('found 2: 6.1.0-1 6.2.0-2');
    fs.rmSync(path.join(r, 'usr/lib/modules/6.1.0-1'), { recursive: true });
    expect(shfn('single_kernel', r).stderr).toContain('/usr/lib/modules/6.2.0-2/vmlinuz is missing');
  });

  it('relocate_kernel moves a Debian /boot kernel to /usr/lib/modules/<kver>/ and empties /boot', () => {
    const r = tmp();
    write(path.join(r, 'boot/vmlinuz-6.1.0-9-amd64'), 'kernel');
    write(path.join(r, 'boot/config-6.1.0-9-amd64'), 'cfg');
    write(path.join(r, 'boot/System.map-6.1.0-9-amd64'), 'map');
    write(path.join(r, 'boot/initrd.img-6.1.0-9-amd64'), 'host-made initrd');
    fs.mkdirSync(path.join(r, 'usr/lib/modules/6.1.0-9-amd64/kernel'), { recursive: true });
    fs.symlinkSync('boot/vmlinuz-6.1.0-9-amd64', path.join(r, 'vmlinuz'));
    expect(shfn('relocate_kernel', r).code).toBe(0);
    expect(fs.readdirSync(path.join(r, 'boot'))).toEqual([]);
    expect(fs.readdirSync(path.join(r, 'usr/lib/modules/6.1.0-9-amd64')).sort()).toEqual([
      'System.map',
      'config',
      'kernel',
      'vmlinuz',
    ]);
    expect(fs.existsSync(path.join(r, 'vmlinuz'))).toBe(false);
    expect(shfn('single_kernel', r).stdout).toBe('6.1.0-9-amd64\n');
  });

  it('tidy_var relocates the dpkg database and keeps only directories and declared links under /var', () => {
    const r = tmp();
    write(path.join(r, 'var/lib/dpkg/status'), 'Package: x\n');
    write(path.join(r, 'var/lib/dpkg/status-old'), 'old');
    write(path.join(r, 'var/cache/apt/pkgcache.bin'), 'cache');
    write(path.join(r, 'var/cache/apt/archives/partial/x.deb'), 'deb');
    write(path.join(r, 'var/lib/apt/lists/deb.debian.org_dists_trixie_InRelease'), 'list');
    write(path.join(r, 'var/log/apt/history.log'), 'log');
    write(path.join(r, 'var/lib/ucf/hashfile'), 'state');
    write(path.join(r, 'var/lib/systemd/deb-systemd-helper-enabled/x.dsh-also'), 'state');
    fs.mkdirSync(path.join(r, 'var/spool'), { recursive: true });
    fs.symlinkSync('../mail', path.join(r, 'var/spool/mail'));
    fs.symlinkSync('../run', path.join(r, 'var/run'));
    write(
      path.join(r, 'usr/lib/tmpfiles.d/var.conf'),
      'q /var 0755 - - -\nL /var/run - - - - ../run\n# L /var/spool/mail - - - - ../mail\n',
    );
    const res = shfn('tidy_var', r);
    expect(res.code).toBe(0);
    expect(fs.readlinkSync(path.join(r, 'var/lib/dpkg'))).toBe('../../usr/lib/sysimage/dpkg');
    expect(fs.readFileSync(path.join(r, 'usr/lib/sysimage/dpkg/status'), 'utf8')).toBe('Package: x\n');
    expect(fs.existsSync(path.join(r, 'usr/lib/sysimage/dpkg/status-old'))).toBe(false);
    expect(fs.readFileSync(path.join(r, 'usr/lib/tmpfiles.d/dpkg-sysimage.conf'), 'utf8')).toContain(
      'L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg',
    );
    const left = spawnSync('find', [path.join(r, 'var'), '-mindepth', '1', '!', '-type', 'd', '-printf', '%P %y\n'], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split('\n')
      .sort();
    // The undeclared spool link went; the declared links stayed; no file is left.
    expect(left).toEqual(['lib/dpkg l', 'run l']);
    expect(fs.existsSync(path.join(r, 'var/cache/apt/archives/partial'))).toBe(true);
  });

  it('tmpfiles_var_paths reads the /var entries of usr/lib and etc tmpfiles.d', () => {
    const r = tmp();
    write(
      path.join(r, 'usr/lib/tmpfiles.d/a.conf'),
      'd /var/home 0755 root root -\nd /run/x 0755 - - -\n#L /var/nope\n',
    );
    expect(shfn('tmpfiles_var_paths', r).stdout).toBe('/var/home\n');
    write(path.join(r, 'etc/tmpfiles.d/b.conf'), 'L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg\n');
    expect(shfn('tmpfiles_var_paths', r).stdout).toBe('/var/home\n/var/lib/dpkg\n');
  });
});

describe('base bootstrap', () => {
  const script = path.join(bf, 'base', 'bootstrap.sh');
  const args = [
    '--image',
    'localhost/keel-test-bootstrap:x',
    '--suite',
    'trixie',
    '--package',
    'systemd',
    '--package',
    'udev',
  ];

  it('prints an input hash that changes with the package list, not with its order', () => {
    const hash = (extra: string[]) =>
      spawnSync('bash', [script, ...extra, '--print-hash'], { encoding: 'utf8' }).stdout.trim();
    const h1 = hash(args);
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(
      hash([
        '--image',
        'localhost/keel-test-bootstrap:x',
        '--suite',
        'trixie',
        '--package',
        'udev',
        '--package',
        'systemd',
      ]),
    ).toBe(h1);
    expect(hash([...args, '--package', 'zstd'])).not.toBe(h1);
    expect(hash([...args, '--cache-key', '2025-W10'])).not.toBe(h1);
  });

  it('refuses bad arguments before doing anything', () => {
    const run = (a: string[]) => spawnSync('bash', [script, ...a], { encoding: 'utf8' });
    expect(run(['--suite', 'trixie', '--package', 'x']).stderr).toContain('--image is required');
    expect(run(['--image', 'i', '--suite', 'trixie']).stderr).toContain('at least one --package is required');
    expect(run(['--image', 'i', '--suite', 'trixie', '--package', 'Bad;rm']).stderr).toContain(
      "--package 'Bad;rm' is not a Debian package name",
    );
    expect(run(['--image', 'i', '--suite', 'trixie', '--bogus']).stderr).toContain('unknown argument: --bogus');
  });
});

describe('shipped signature policy', () => {
  it('the policy ships under /usr, names a key the image ships, and enforces sigstoreSigned for the image repository', () => {
    const sys = path.join(root, 'build_files/system_files');
    const policy = JSON.parse(fs.readFileSync(path.join(sys, 'usr/share/keel-os/containers/policy.json'), 'utf8'));
    expect(policy.default).toEqual([{ type: 'reject' }]);
    const entry = policy.transports.docker['ghcr.io/keel-project/keel-os'];
    expect(entry).toEqual([
      { type: 'sigstoreSigned', keyPath: '/usr/share/keel-os/cosign.pub', signedIdentity: { type: 'matchRepository' } },
    ]);
    expect(fs.readFileSync(path.join(sys, 'usr/share/keel-os/cosign.pub'), 'utf8')).toMatch(
      /^-----BEGIN PUBLIC KEY-----/,
    );
    expect(fs.readFileSync(path.join(sys, 'usr/share/keel-os/containers/registries.d/keel-os.yaml'), 'utf8')).toMatch(
      /ghcr\.io\/keel-project:\n\s+use-sigstore-attachments: true/,
    );
  });
});
