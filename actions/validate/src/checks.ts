import { errorMessage } from '../../lib/errors.js';
import { asRoot, type CommandRunner } from '../../lib/exec.js';
import { listInitramfs, moduleName, type InitramfsListing } from '../../lib/initramfs.js';
import type { Logger } from '../../lib/log.js';
import type { RootfsReader } from '../../lib/rootfs/reader.js';
import type { TarHeader } from '../../lib/tar/reader.js';
import { installMediaVerdict, type InstallMedia } from './install-media.js';

/**
 * Static checks of a built bootc image. Every check runs (none short-circuits another); each
 * returns pass/fail with the evidence a maintainer needs to fix it (paths, sizes, labels).
 */
export interface ValidateOptions {
  minInitramfsMb: number;
  /** true, false, or 'auto' (true when the image ships ostree). */
  requireOstreeModule: boolean | 'auto';
  /** Drivers a generic boot needs, as module names (built-in counts). */
  initramfsModules: string[];
  /** Globs of forbidden repository definitions; `!glob` exempts. */
  repoGlobs: string[];
  /** Extra /var paths allowed without a tmpfiles.d entry. */
  varAllow: string[];
  /** Run `bootc container lint` through podman when the image ships bootc and is local. */
  localRef?: string;
  /** The install media the image must be able to become (install-media check). */
  installMedia?: InstallMedia;
}

export interface CheckResult {
  id: string;
  title: string;
  /** `warn`: the check failed but is in the warn-only tier (`warn-checks`): reported, not fatal. */
  status: 'pass' | 'fail' | 'skip' | 'warn';
  evidence: string;
}

export interface CheckEnv {
  fs: RootfsReader;
  labels: Record<string, string>;
  opts: ValidateOptions;
  runner: CommandRunner;
  log: Logger;
}

export const DEFAULT_REPO_GLOBS = [
  'etc/yum.repos.d/_copr*.repo',
  'etc/yum.repos.d/*copr*.repo',
  'etc/apt/sources.list.d/*.list',
  'etc/apt/sources.list.d/*.sources',
  '!etc/apt/sources.list.d/debian.sources',
  '!etc/apt/sources.list.d/ubuntu.sources',
  'etc/zypp/repos.d/*.repo',
];

import { CHECK_IDS, type CheckId } from '../../lib/check-ids.js';

export { CHECK_IDS, DEFAULT_WARN_CHECKS, type CheckId } from '../../lib/check-ids.js';

/** Checks that only warn unless `warn-checks` says otherwise: size is a heuristic, not a verdict. */

/**
 * What dracut writes into a host-only initramfs and never into a generic one (`--no-hostonly`):
 * `lib/dracut/hostonly-files`, the list of host-specific files it installed (e.g. /etc/hostname,
 * /etc/machine-id; `rd.hostonly=0` deletes them at boot), and, from dracut 049 on,
 * `lib/dracut/loaded-kernel-modules.txt`, the modules loaded on the build host. Both under
 * usr/lib on merged-/usr systems.
 */
export const HOSTONLY_MARKERS = [
  'usr/lib/dracut/hostonly-files',
  'lib/dracut/hostonly-files',
  'usr/lib/dracut/loaded-kernel-modules.txt',
  'lib/dracut/loaded-kernel-modules.txt',
];

export function globToRegExp(glob: string): RegExp {
  const g = glob.replace(/^\/+/, '');
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*' && g[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** Parses tmpfiles.d content into the set of paths it declares. */
export function tmpfilesPaths(text: string): Set<string> {
  const out = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    const p = parts[1];
    if (p?.startsWith('/')) out.add(p.replace(/\/+$/, '').replace(/^\//, ''));
  }
  return out;
}

interface Shared {
  index: Map<string, TarHeader>;
  kernels: string[];
  kver?: string;
  initramfs?: { size: number; listing?: InitramfsListing; error?: string };
  builtin: Set<string>;
}

async function prepare(env: CheckEnv): Promise<Shared> {
  const index = await env.fs.index();
  const modulesDir = (await env.fs.resolve('usr/lib/modules')) ?? 'usr/lib/modules';
  const kernels = [...index.values()]
    .filter(
      (e) =>
        e.type === 'dir' && e.path.startsWith(`${modulesDir}/`) && !e.path.slice(modulesDir.length + 1).includes('/'),
    )
    .map((e) => e.path.slice(modulesDir.length + 1))
    .sort();
  const kver = kernels.length === 1 ? kernels[0] : undefined;
  const shared: Shared = { index, kernels, kver, builtin: new Set() };
  if (kver) {
    const init = `${modulesDir}/${kver}/initramfs.img`;
    const files = await env.fs.readFiles([init, `${modulesDir}/${kver}/modules.builtin`]);
    const builtin = files.get(`${modulesDir}/${kver}/modules.builtin`);
    for (const l of builtin?.toString().split('\n') ?? []) {
      const n = moduleName(l.trim());
      if (n) shared.builtin.add(n);
    }
    const buf = files.get(init);
    if (buf) {
      shared.initramfs = { size: buf.length };
      try {
        shared.initramfs.listing = await listInitramfs(buf);
      } catch (e) {
        shared.initramfs.error = errorMessage(e);
      }
    }
  }
  return shared;
}

type Outcome = Omit<CheckResult, 'id' | 'title'>;
const pass = (evidence: string): Outcome => ({ status: 'pass', evidence });
const fail = (evidence: string): Outcome => ({ status: 'fail', evidence });
const skip = (evidence: string): Outcome => ({ status: 'skip', evidence });

const TITLES: Record<CheckId, string> = {
  'one-kernel': 'exactly one kernel under /usr/lib/modules',
  'kernel-files': 'vmlinuz and initramfs.img at /usr/lib/modules/<kver>/',
  'initramfs-size': 'initramfs is at least min-initramfs-mb',
  'initramfs-generic': 'initramfs is a readable cpio and generic (no dracut host-only markers)',
  'initramfs-contents': 'initramfs has the drivers a generic boot needs',
  'ostree-linux-label': 'label ostree.linux equals the kernel directory',
  'bootc-label': 'label containers.bootc=1',
  'no-repo-files': 'no leftover third-party repository definitions',
  'var-content': 'nothing in /var beyond what a bootc image may ship',
  'bootc-lint': 'bootc container lint',
  passwd: '/etc/passwd and /usr/lib/passwd are sane',
  'os-release': '/usr/lib/os-release identifies the OS',
  'boot-empty': '/boot ships no kernel or initramfs',
  'install-media': 'the image can become the declared install media (install-media)',
};

type CheckFn = (env: CheckEnv, s: Shared) => Promise<Outcome>;

const CHECKS: Record<CheckId, CheckFn> = {
  'one-kernel': async (_env, s) =>
    s.kernels.length === 1
      ? pass(`usr/lib/modules/${s.kernels[0]}`)
      : fail(
          s.kernels.length
            ? `${s.kernels.length} kernel directories: ${s.kernels.join(', ')}`
            : 'no directory under usr/lib/modules',
        ),

  'kernel-files': async (_env, s) => {
    if (!s.kver) return fail(`no single kernel directory (found ${s.kernels.length})`);
    const problems: string[] = [];
    const have: string[] = [];
    for (const f of ['vmlinuz', 'initramfs.img']) {
      const e = s.index.get(`usr/lib/modules/${s.kver}/${f}`);
      if (e?.type === 'file' && e.size > 0) have.push(`${f} ${mb(e.size)}`);
      else problems.push(`usr/lib/modules/${s.kver}/${f} missing`);
    }
    if (problems.length) {
      const inBoot = [...s.index.keys()].filter((p) => /^boot\/(vmlinuz|initrd|initramfs)/.test(p));
      if (inBoot.length) problems.push(`found only in /boot: ${inBoot.join(', ')} (bootc reads the canonical path)`);
      return fail(problems.join('; '));
    }
    return pass(have.join(', '));
  },

  'initramfs-size': async (env, s) => {
    if (!s.kver) return fail('no single kernel directory');
    if (!s.initramfs) return fail(`usr/lib/modules/${s.kver}/initramfs.img missing`);
    const size = mb(s.initramfs.size);
    return s.initramfs.size < env.opts.minInitramfsMb * 1024 * 1024
      ? fail(
          `${size} < ${env.opts.minInitramfsMb} MB (min-initramfs-mb): smaller than expected; whether it is host-only is judged by its content (initramfs-generic)`,
        )
      : pass(`${size} >= ${env.opts.minInitramfsMb} MB`);
  },

  'initramfs-generic': async (_env, s) => {
    if (!s.kver) return fail('no single kernel directory');
    if (!s.initramfs) return fail(`usr/lib/modules/${s.kver}/initramfs.img missing`);
    const l = s.initramfs.listing;
    if (!l) return fail(`not a readable initramfs: ${s.initramfs.error ?? 'no listing'}`);
    const shape = l.segments.map((g) => `${g.compression} cpio (${g.entries} entries)`).join(' + ');
    const markers = HOSTONLY_MARKERS.filter((m) => l.files.has(m));
    return markers.length
      ? fail(
          `host-only initramfs: dracut wrote ${markers.map((m) => `/${m}`).join(', ')} (built for the build host, which is not the machine that boots); generate it with dracut --no-hostonly and persist hostonly="no" in /usr/lib/dracut/dracut.conf.d`,
        )
      : pass(`${mb(s.initramfs.size)}, generic (no dracut host-only markers): ${shape}`);
  },

  'initramfs-contents': async (env, s) => {
    const l = s.initramfs?.listing;
    if (!l) return fail('initramfs missing or unreadable');
    const inInitramfs = new Set<string>();
    for (const f of l.files) {
      const n = moduleName(f);
      if (n) inInitramfs.add(n);
    }
    const missing: string[] = [];
    const found: string[] = [];
    for (const want of env.opts.initramfsModules) {
      const n = want.replace(/-/g, '_');
      if (inInitramfs.has(n)) found.push(`${n} (module)`);
      else if (s.builtin.has(n)) found.push(`${n} (built-in)`);
      else missing.push(n);
    }
    const shipsOstree = s.index.has('usr/bin/ostree') || s.index.has('usr/lib/ostree/ostree-prepare-root');
    const needOstree = env.opts.requireOstreeModule === 'auto' ? shipsOstree : env.opts.requireOstreeModule;
    if (needOstree) {
      const has = [...l.files].some((f) => f.endsWith('/ostree-prepare-root') || f === 'ostree-prepare-root');
      if (has) found.push('ostree-prepare-root');
      else
        missing.push(
          `ostree-prepare-root${env.opts.requireOstreeModule === 'auto' ? ' (the image ships ostree)' : ''}`,
        );
    }
    return missing.length
      ? fail(`missing: ${missing.join(', ')}; present: ${found.join(', ') || 'none'}`)
      : pass(found.join(', '));
  },

  'ostree-linux-label': async (env, s) => {
    const v = env.labels['ostree.linux'];
    if (!s.kver) return fail(`no single kernel directory; label is ${JSON.stringify(v ?? null)}`);
    return v === s.kver
      ? pass(`ostree.linux=${v}`)
      : fail(`ostree.linux=${JSON.stringify(v ?? null)} but the kernel directory is ${s.kver}`);
  },

  'bootc-label': async (env) => {
    const v = env.labels['containers.bootc'];
    return v === '1' ? pass('containers.bootc=1') : fail(`containers.bootc=${JSON.stringify(v ?? null)} (must be "1")`);
  },

  'no-repo-files': async (env, s) => {
    const globs = env.opts.repoGlobs;
    const deny = globs.filter((g) => !g.startsWith('!')).map(globToRegExp);
    const allow = globs.filter((g) => g.startsWith('!')).map((g) => globToRegExp(g.slice(1)));
    const hits = [...s.index.values()]
      .filter((e) => e.type !== 'dir' && deny.some((r) => r.test(e.path)) && !allow.some((r) => r.test(e.path)))
      .map((e) => `/${e.path}`);
    return hits.length
      ? fail(`leftover repository definitions: ${hits.join(', ')}`)
      : pass(`none matching ${deny.length} patterns`);
  },

  'var-content': async (env, s) => {
    const tmpfiles = [...s.index.values()].filter(
      (e) => e.type !== 'dir' && /^(usr\/lib|etc)\/tmpfiles\.d\/[^/]+\.conf$/.test(e.path),
    );
    const declared = new Set<string>();
    const texts = await env.fs.readFiles(tmpfiles.map((e) => e.path));
    for (const t of texts.values()) for (const p of tmpfilesPaths(t.toString())) declared.add(p);
    const allowed = new Set(env.opts.varAllow.map((p) => p.replace(/^\/+|\/+$/g, '')));
    const files: string[] = [];
    const undeclared: string[] = [];
    const logs: string[] = [];
    for (const e of s.index.values()) {
      if (!e.path.startsWith('var/')) continue;
      if (allowed.has(e.path)) continue;
      if (e.type === 'dir' || e.type === 'symlink') {
        if (!declared.has(e.path)) undeclared.push(`/${e.path}`);
      } else if (e.path.startsWith('var/log/') && e.type === 'file' && e.size > 0) {
        logs.push(`/${e.path}`);
      } else {
        files.push(`/${e.path}`);
      }
    }
    const show = (xs: string[]) => `${xs.slice(0, 8).join(', ')}${xs.length > 8 ? ` and ${xs.length - 8} more` : ''}`;
    const problems: string[] = [];
    if (files.length) problems.push(`non-directory/non-symlink files in /var: ${show(files)}`);
    if (logs.length) problems.push(`non-empty log files: ${show(logs)}`);
    if (undeclared.length) problems.push(`content in /var without a tmpfiles.d entry: ${show(undeclared)}`);
    const count = [...s.index.keys()].filter((p) => p.startsWith('var/')).length;
    return problems.length
      ? fail(problems.join('; '))
      : pass(`${count} entries under /var, all directories or symlinks declared in tmpfiles.d`);
  },

  'bootc-lint': async (env, s) => {
    if (!s.index.has('usr/bin/bootc')) return skip('the image does not ship bootc');
    if (!env.opts.localRef)
      return skip('the image ships bootc but is not in local containers-storage, so the lint cannot run here');
    try {
      // The image is in root's storage (where build puts it): through sudo when not root.
      const [cmd, args] = asRoot('podman', [
        'run',
        '--rm',
        '--pull=never',
        '--net=none',
        '--entrypoint',
        'bootc',
        '--',
        env.opts.localRef,
        'container',
        'lint',
      ]);
      const r = await env.runner.run(cmd, args, { timeoutMs: 300_000 });
      return pass((r.stdout.toString() + r.stderr).trim().split('\n').slice(-3).join(' ') || 'passed');
    } catch (e) {
      return fail(errorMessage(e).split('\n').slice(-6).join(' '));
    }
  },

  passwd: async (env, s) => {
    const candidates = ['etc/passwd', 'usr/lib/passwd'].filter((p) => s.index.has(p));
    if (!candidates.length) return fail('neither /etc/passwd nor /usr/lib/passwd exists');
    const texts = await env.fs.readFiles(candidates);
    const problems: string[] = [];
    const summary: string[] = [];
    let root = false;
    for (const p of candidates) {
      const t = texts.get(p)?.toString() ?? '';
      const lines = t.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
      const names = new Set<string>();
      lines.forEach((l, i) => {
        const f = l.split(':');
        if (f.length !== 7 || !/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? ''))
          problems.push(`/${p}:${i + 1} malformed`);
        if (names.has(f[0] ?? '')) problems.push(`/${p}: duplicate user ${f[0]}`);
        names.add(f[0] ?? '');
        if (f[0] === 'root' && f[2] === '0') root = true;
        if (f[2] === '0' && f[0] !== 'root') problems.push(`/${p}: ${f[0]} has uid 0`);
      });
      summary.push(`/${p}: ${lines.length} users`);
    }
    if (!root) problems.push('no root user with uid 0');
    return problems.length ? fail(problems.join('; ')) : pass(`${summary.join(', ')}; root present`);
  },

  'os-release': async (env, s) => {
    if (s.index.get('usr/lib/os-release')?.type !== 'file') return fail('/usr/lib/os-release missing');
    const t = (await env.fs.readFiles(['usr/lib/os-release'])).get('usr/lib/os-release')?.toString() ?? '';
    const id = /^ID=(.*)$/m.exec(t)?.[1]?.replace(/^"|"$/g, '');
    const name = /^NAME=(.*)$/m.exec(t)?.[1]?.replace(/^"|"$/g, '');
    if (!id) return fail('/usr/lib/os-release has no ID');
    const etc = await env.fs.resolve('etc/os-release');
    if (etc && etc !== 'usr/lib/os-release')
      return fail(`/etc/os-release is a separate file (${etc}); it should link to ../usr/lib/os-release`);
    return pass(`ID=${id}${name ? `, NAME=${name}` : ''}`);
  },

  'boot-empty': async (_env, s) => {
    const bad = [...s.index.keys()].filter((p) => /^boot\/.*(vmlinuz|initrd|initramfs)/.test(p));
    return bad.length
      ? fail(`kernel artefacts in /boot: ${bad.map((p) => `/${p}`).join(', ')}`)
      : pass('/boot holds no kernel or initramfs');
  },

  'install-media': installMediaCheck,
};

async function installMediaCheck(env: CheckEnv, s: Shared): Promise<Outcome> {
  const media = env.opts.installMedia ?? 'none';
  if (media === 'none') return skip('install-media: none (no install media declared)');
  const v = await installMediaVerdict(media, { fs: env.fs, index: s.index, kver: s.kver, builtin: s.builtin });
  return v.ok ? pass(v.evidence) : fail(v.evidence);
}

export async function runChecks(env: CheckEnv, which: readonly CheckId[] = CHECK_IDS): Promise<CheckResult[]> {
  const shared = await prepare(env);
  const out: CheckResult[] = [];
  for (const id of which) {
    let o: Outcome;
    try {
      o = await CHECKS[id](env, shared);
    } catch (e) {
      o = fail(`check crashed: ${errorMessage(e)}`);
    }
    out.push({ id, title: TITLES[id], ...o });
  }
  return out;
}
