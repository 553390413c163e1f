// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redactor } from '../../actions/lib/redact.js';
import { localOverrides, pruneRuns } from '../../cli/runner.js';
import type { LocalServices } from '../../cli/services/index.js';
import { repoRoot } from '../../cli/step.js';
import { tmpdir } from '../harness/tools.js';

describe('local runner: masking', () => {
  it('masks secrets, each line of a multi-line secret, their JSON-escaped form, and ::add-mask:: values', () => {
    const key =
      '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAbCdEf0123456789\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n';
    const r = new Redactor(['s3cr3t-password', key, ''], { minLength: 3 });
    expect(r.apply('login with s3cr3t-password ok')).toBe('login with *** ok');
    expect(r.apply('line: AbCdEf0123456789')).toBe('line: ***');
    expect(r.apply(JSON.stringify({ k: key }))).toBe('{"k":"***"}');
    expect(r.command('::add-mask::tok_98765')).toBe(true);
    expect(r.command('::warning::tok_98765')).toBe(false);
    expect(r.apply('Authorization: Bearer tok_98765')).toBe('Authorization: Bearer ***');
    // Empty and tiny values would mask everything: ignored.
    expect(r.apply('a b c')).toBe('a b c');
  });
});

describe('local runner: old runs are pruned', () => {
  it('keeps the newest runs and leaves other files alone', () => {
    const dir = tmpdir('keel-runs-');
    const ids = Array.from(
      { length: 15 },
      (_, i) => `${(1_800_000_000_000 + i * 1000).toString(36)}-${i.toString(16).padStart(6, '0')}`,
    );
    for (const id of [...ids].reverse()) fs.mkdirSync(path.join(dir, id, 'artifacts'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    expect(pruneRuns(dir, 12)).toEqual(ids.slice(0, 3));
    expect(fs.readdirSync(dir).sort()).toEqual([...ids.slice(3), 'notes.txt'].sort());
  });
});

describe('keel CLI flags', () => {
  const keel = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'keel.js'), ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('rejects --input without NAME=VALUE before starting anything', () => {
    const r = keel('run', 'build', '--input', 'novalue');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--input expects NAME=VALUE \(got 'novalue'\)/);
    expect(r.stdout).not.toMatch(/registry/i);
  });
});

describe('keel CLI flag parsing', () => {
  it('splits --k=v at the first "=" only and collects repeats', async () => {
    const { flags } = await import('../../cli/flags.js');
    expect(flags(['run', 'build', '--input=kernel-args=quiet splash', '--input', 'a=b=c', '--verbose'])).toEqual({
      pos: ['run', 'build'],
      f: { input: ['kernel-args=quiet splash', 'a=b=c'], verbose: ['true'] },
    });
  });
});

describe('local runner: gated hops check against the key the local run signs with', () => {
  const svc = { keys: { publicKeyPath: '/run/keel/cosign.pub' } } as unknown as LocalServices;
  const gated = new Set(['image-ref', 'public-key', 'allow-unsigned', 'tls-verify']);

  it('passes the generated public key to a hop that declares allow-unsigned, unless the workflow allowed unsigned', () => {
    expect(localOverrides('build-disk', { 'image-ref': 'r/x@sha256:0' }, svc, gated)['public-key']).toBe(
      '/run/keel/cosign.pub',
    );
    expect(localOverrides('promote', { 'public-key': 'build_files/cosign.pub' }, svc, gated)['public-key']).toBe(
      '/run/keel/cosign.pub',
    );
    expect(localOverrides('smoke-boot', { 'allow-unsigned': 'true' }, svc, gated)['public-key']).toBeUndefined();
    // verify declares no allow-unsigned: its key is replaced only when the workflow passes one.
    expect(localOverrides('verify', {}, svc, new Set(['public-key']))['public-key']).toBeUndefined();
  });
});
