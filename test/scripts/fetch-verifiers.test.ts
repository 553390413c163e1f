// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * scripts/fetch-verifiers.sh fails closed: against a local archive (file: mirror, no network) that
 * is unsigned, signed by a key the keyring does not hold, or signed but listing a .deb whose bytes
 * differ from its index entry, it exits non-zero and unpacks and links nothing. (Fetching the real
 * verifiers from Debian is exercised by every test that uses them, through test/harness/verifiers.ts.)
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const script = path.join(root, 'scripts', 'fetch-verifiers.sh');
let work: string;
let gnupg: string;
let trustedKeyring: string;
/** A fresh directory inside this file's work directory (removed after the tests). */
const sub = (prefix: string) => fs.mkdtempSync(path.join(work, prefix));

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts, env: { ...process.env, ...opts.env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A one-package .deb whose only file is usr/bin/<name>. */
function fakeDeb(dir: string, name: string): string {
  const tree = path.join(dir, `${name}-tree`);
  fs.mkdirSync(path.join(tree, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'usr', 'bin'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'usr', 'bin', name), '#!/bin/sh\necho fake\n', { mode: 0o755 });
  fs.writeFileSync(
    path.join(tree, 'DEBIAN', 'control'),
    `Package: ${name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: test <t@example.org>\nDescription: fake ${name}\n`,
  );
  const deb = path.join(dir, `${name}_1.0_amd64.deb`);
  sh('dpkg-deb', ['--root-owner-group', '-b', tree, deb]);
  return deb;
}

/**
 * A file: archive for suite trixie holding fake skopeo and cosign packages. `sign`: the key id to
 * sign InRelease with (none: unsigned); `corrupt`: the index lists a wrong SHA256 for skopeo.
 */
function archive(opts: { sign?: 'trusted' | 'stranger'; corrupt?: boolean }): string {
  const repo = sub('repo-');
  const pool = path.join(repo, 'pool');
  fs.mkdirSync(pool);
  const bin = path.join(repo, 'dists', 'trixie', 'main', 'binary-amd64');
  fs.mkdirSync(bin, { recursive: true });
  let packages = '';
  for (const name of ['skopeo', 'cosign']) {
    const deb = fakeDeb(pool, name);
    const bytes = fs.readFileSync(deb);
    const sha = crypto
      .createHash('sha256')
      .update(opts.corrupt && name === 'skopeo' ? Buffer.concat([bytes, Buffer.from('x')]) : bytes)
      .digest('hex');
    packages +=
      `Package: ${name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: test <t@example.org>\n` +
      `Filename: pool/${path.basename(deb)}\nSize: ${bytes.length}\nSHA256: ${sha}\nDescription: fake ${name}\n\n`;
  }
  fs.writeFileSync(path.join(bin, 'Packages'), packages);
  const sha = crypto.createHash('sha256').update(packages).digest('hex');
  const release =
    `Origin: Test\nSuite: trixie\nCodename: trixie\nArchitectures: amd64\nComponents: main\n` +
    `Date: ${new Date().toUTCString()}\nSHA256:\n ${sha} ${Buffer.byteLength(packages)} main/binary-amd64/Packages\n`;
  const dists = path.join(repo, 'dists', 'trixie');
  fs.writeFileSync(path.join(dists, 'Release'), release);
  if (opts.sign) {
    const uid = opts.sign === 'trusted' ? 'trusted@example.org' : 'stranger@example.org';
    sh(
      'gpg',
      [
        '--batch',
        '--yes',
        '--local-user',
        uid,
        '--clearsign',
        '-o',
        path.join(dists, 'InRelease'),
        path.join(dists, 'Release'),
      ],
      {
        env: { GNUPGHOME: gnupg },
      },
    );
  }
  return repo;
}

function fetch(repo: string, keyring?: string) {
  const cache = sub('cache-');
  const r = spawnSync('bash', [script, cache], {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      KEEL_DEBIAN_MIRROR: `file:${repo}`,
      ...(keyring ? { KEEL_DEBIAN_KEYRING: keyring } : {}),
    },
  });
  return { ...r, cache };
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-fetch-verifiers-'));
  gnupg = path.join(work, 'gnupg');
  fs.mkdirSync(gnupg, { mode: 0o700 });
  for (const uid of ['trusted@example.org', 'stranger@example.org']) {
    sh('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never'], {
      env: { GNUPGHOME: gnupg },
    });
  }
  trustedKeyring = path.join(work, 'trusted.gpg');
  fs.writeFileSync(
    trustedKeyring,
    spawnSync('gpg', ['--export', 'trusted@example.org'], { env: { ...process.env, GNUPGHOME: gnupg } }).stdout,
  );
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('fetch-verifiers.sh fails closed', () => {
  const nothingUnpacked = (cache: string) => {
    expect(fs.existsSync(path.join(cache, 'bin', 'skopeo'))).toBe(false);
    expect(fs.existsSync(path.join(cache, 'bin', 'cosign'))).toBe(false);
    expect(fs.existsSync(path.join(cache, 'trixie', 'root'))).toBe(false);
    expect(fs.existsSync(path.join(cache, 'trixie', 'verified'))).toBe(false);
  };

  it('refuses an unsigned archive', () => {
    const r = fetch(archive({}), trustedKeyring);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/trixie: apt-get update failed/);
    nothingUnpacked(r.cache);
  });

  it('refuses an archive signed by a key outside the keyring (the Debian keyring by default)', () => {
    const repo = archive({ sign: 'stranger' });
    for (const keyring of [undefined, trustedKeyring]) {
      const r = fetch(repo, keyring);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/trixie: apt-get update failed/);
      nothingUnpacked(r.cache);
    }
  });

  it('refuses a package whose bytes differ from the signed index', () => {
    const r = fetch(archive({ sign: 'trusted', corrupt: true }), trustedKeyring);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/trixie: (download failed|skopeo_1\.0_amd64\.deb has SHA256)/);
    nothingUnpacked(r.cache);
  });

  it('gets past both checks with a trusted signature and matching packages (then runs the tools)', () => {
    const r = fetch(archive({ sign: 'trusted' }), trustedKeyring);
    // The fake packages hold no loader or libc, so the final run of the tools fails, and only it.
    expect(r.stderr).toMatch(/trixie: downloading skopeo cosign/);
    expect(r.stderr).not.toMatch(/apt-get update failed|download failed|has SHA256/);
    expect(fs.existsSync(path.join(r.cache, 'trixie', 'root', 'usr', 'bin', 'skopeo'))).toBe(true);
    expect(r.status).not.toBe(0);
    expect(fs.existsSync(path.join(r.cache, 'trixie', 'verified'))).toBe(false);
  });
});
