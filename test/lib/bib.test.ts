// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../actions/lib/log.js';
import { BIB_IMAGE, bibCommands, requireLoginPairs, runBib } from '../../actions/lib/vm/bib.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';

/**
 * bootc-image-builder cannot run here (it needs a privileged podman): its command lines are
 * checked exactly, and runBib's login, pull and build through a fake podman that writes the
 * auth file where podman would.
 */
const ref = `ghcr.io/org/os@sha256:${'a'.repeat(64)}`;
// Root's containers-storage is what BIB reads: a non-root runner goes through sudo -n.
const root = (argv: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ['podman', argv] : ['sudo', ['-n', 'podman', ...argv]];
const podmanArgs = (c: Call) => (c.cmd === 'sudo' ? c.args.slice(2) : c.args);

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bib-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('bibCommands', () => {
  it('match the documented invocation: pull by digest, then a privileged build pinned by digest, both as root', () => {
    expect(
      bibCommands({ imageRef: ref, type: 'qcow2', outputDir: '/tmp/out', configFile: '/tmp/config.toml' }),
    ).toEqual([
      root(['pull', '--', ref]),
      root([
        'run',
        '--rm',
        '--privileged',
        '--pull=newer',
        '--security-opt',
        'label=type:unconfined_t',
        '-v',
        '/var/lib/containers/storage:/var/lib/containers/storage',
        '-v',
        '/tmp/out:/output',
        '-v',
        '/tmp/config.toml:/config.toml:ro',
        '--',
        BIB_IMAGE,
        'build',
        '--output',
        '/output',
        '--type',
        'qcow2',
        '--rootfs',
        'btrfs',
        '--use-librepo=True',
        ref,
      ]),
    ]);
    const [, [, run]] = bibCommands({
      imageRef: ref,
      type: 'raw',
      outputDir: '/o',
      rootfs: 'xfs',
      chown: '1001:121',
    }) as [unknown, [string, string[]]];
    expect(run.join(' ')).toMatch(
      /--type raw --rootfs xfs --use-librepo=True --chown 1001:121 ghcr\.io\/org\/os@sha256:a{64}$/,
    );
    expect(BIB_IMAGE).toMatch(/@sha256:[0-9a-f]{64}$/);
  });

  it('an auth file goes to the pull and to the builder container (its own image pull)', () => {
    const [[, pull], [, run]] = bibCommands({
      imageRef: ref,
      type: 'anaconda-iso',
      outputDir: '/o',
      authFile: '/a/f.json',
    }) as [[string, string[]], [string, string[]]];
    expect(pull.slice(-4)).toEqual(['--authfile', '/a/f.json', '--', ref]);
    expect(run.slice(run.indexOf('--pull=newer'), run.indexOf('--pull=newer') + 3)).toEqual([
      '--pull=newer',
      '--authfile',
      '/a/f.json',
    ]);
  });

  it('input-derived values never become podman or BIB options or volume options', () => {
    expect(() => bibCommands({ imageRef: 'ghcr.io/org/os:stable', type: 'qcow2', outputDir: '/o' })).toThrow(
      /needs a digest reference/,
    );
    expect(() => bibCommands({ imageRef: `-x@sha256:${'a'.repeat(64)}`, type: 'qcow2', outputDir: '/o' })).toThrow(
      /cannot start with -/,
    );
    expect(() => bibCommands({ imageRef: ref, type: 'qcow2', outputDir: '/o:/etc', configFile: '/c' })).toThrow(
      /cannot be mounted into the builder \(it contains ':' or ','\)/,
    );
  });
});

/** A fake podman: login writes the auth file it was given (as podman does), pull and run answer. */
function podman(opts: { failOn?: string } = {}) {
  const authFiles: string[] = [];
  const runner = fakeRunner((c) => {
    const [verb, ...rest] = podmanArgs(c);
    if (verb === opts.failOn) throw new Error(`podman ${verb} failed`);
    if (verb === 'login') {
      const file = rest[rest.indexOf('--authfile') + 1]!;
      authFiles.push(file);
      fs.writeFileSync(
        file,
        JSON.stringify({ auths: { x: { auth: Buffer.from(String(c.opts.input)).toString('base64') } } }),
      );
    }
    return '';
  });
  return { runner, authFiles };
}

const request = (outputDir: string) => ({ imageRef: ref, type: 'anaconda-iso' as const, outputDir });

describe('runBib: registry logins before the pull', () => {
  it('logs in to the image registry and the builder registry with the passwords on stdin, never in argv', async () => {
    const { runner, authFiles } = podman();
    const workDir = fs.mkdtempSync(path.join(work, 'ok-'));
    await runBib(
      request('/o'),
      [
        { image: ref, username: 'octocat', password: 'ghp_image_token' },
        { image: 'registry.example.com/bib/builder@sha256:' + 'b'.repeat(64), username: 'rh', password: 'bib-secret' },
      ],
      { runner, log: silentLogger, workDir, timeoutMs: 1000 },
    );
    const verbs = runner.calls.map((c) => podmanArgs(c)[0]);
    expect(verbs).toEqual(['login', 'login', 'pull', 'run']);
    const [l1, l2] = runner.calls;
    expect(podmanArgs(l1!)).toEqual([
      'login',
      '--authfile',
      authFiles[0],
      '--username=octocat',
      '--password-stdin',
      '--',
      'ghcr.io',
    ]);
    expect(podmanArgs(l2!).slice(-2)).toEqual(['--', 'registry.example.com']);
    expect([l1!.opts.input, l2!.opts.input]).toEqual(['ghp_image_token', 'bib-secret']);
    // One auth file for both, used by the pull and the builder's own pull.
    expect(new Set(authFiles).size).toBe(1);
    for (const c of runner.calls.slice(2)) expect(podmanArgs(c)).toContain(authFiles[0]);
    for (const c of runner.calls) {
      expect(c.args.join(' ')).not.toMatch(/ghp_image_token|bib-secret/);
      expect(c.opts.redact).toEqual(expect.arrayContaining(['ghp_image_token', 'bib-secret']));
    }
    // The auth file and its private directory are gone afterwards.
    expect(fs.existsSync(authFiles[0]!)).toBe(false);
    expect(fs.readdirSync(workDir)).toEqual([]);
  });

  it.each(['login', 'pull', 'run'])('removes the auth file when podman %s fails', async (failOn) => {
    const { runner, authFiles } = podman({ failOn });
    const workDir = fs.mkdtempSync(path.join(work, `fail-${failOn}-`));
    await expect(
      runBib(request('/o'), [{ image: ref, username: 'u', password: 'p4ss' }], {
        runner,
        log: silentLogger,
        workDir,
        timeoutMs: 1000,
      }),
    ).rejects.toThrow(`podman ${failOn} failed`);
    expect(fs.readdirSync(workDir)).toEqual([]);
    for (const f of authFiles) expect(fs.existsSync(f)).toBe(false);
  });

  it('without credentials: no login and no --authfile (root’s own auth file applies, as before)', async () => {
    const { runner } = podman();
    const workDir = fs.mkdtempSync(path.join(work, 'anon-'));
    await runBib(request('/o'), [{ image: ref, username: '', password: '' }], {
      runner,
      log: silentLogger,
      workDir,
      timeoutMs: 1000,
    });
    expect(runner.calls.map((c) => podmanArgs(c)[0])).toEqual(['pull', 'run']);
    expect(runner.calls.flatMap((c) => c.args)).not.toContain('--authfile');
    expect(fs.readdirSync(workDir)).toEqual([]);
  });

  it('requireLoginPairs: a password without its user name is refused, naming the input', () => {
    const none = { username: '', password: '', 'bib-username': '', 'bib-password': '' };
    expect(() => requireLoginPairs({ ...none, password: 'x' })).toThrow(/^Input 'username': a password is given/);
    expect(() => requireLoginPairs({ ...none, 'bib-username': 'x' })).toThrow(/^Input 'bib-password'/);
    expect(() => requireLoginPairs({ ...none, 'bib-password': 'x' })).toThrow(/^Input 'bib-username'/);
    expect(() => requireLoginPairs({ ...none, username: 'u', password: 'p' })).not.toThrow();
  });
});
