// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { release } from '../../cli/commands/release.js';
import { KEEL_RELEASE_FILE, loadKeelRelease, parseKeelRelease } from '../../workflows-src/pins.js';
import { tmpdir } from '../harness/tools.js';
import { keelHop, readText, readWorkflow, root, workflowFiles } from './helpers.js';

/**
 * Reusable workflows run Keel's actions pinned by full commit SHA: `keel release` stamps the
 * commit whose dist/ they run (HEAD) into workflows-src/keel-release.json and re-renders them.
 */
const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-C', cwd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = tmpdir(prefix);
  scratch.push(d);
  return d;
};

/** A small repository holding what the release command reads: the declarations. */
function scratchRepo(): string {
  const dir = tempDir('keel-release-');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.email', 'test@example.invalid');
  git(dir, 'config', 'user.name', 'test');
  fs.mkdirSync(path.join(dir, 'declarations'));
  fs.copyFileSync(path.join(root, 'declarations', 'distro.yaml'), path.join(dir, 'declarations', 'distro.yaml'));
  fs.mkdirSync(path.join(dir, 'workflows-src'));
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'distro');
  return dir;
}

/** The workflows that run the released actions: the reusable ones, and cleanup.yml. */
const reusableFiles = () => workflowFiles().filter((f) => /uses: keel-project\/keel\/actions\//.test(readText(f)));

describe('keel release', () => {
  it("stamps HEAD's full SHA into every Keel step of the reusable workflows, and nothing else", async () => {
    const dir = scratchRepo();
    const head = git(dir, 'rev-parse', 'HEAD');
    const r = await release({ root: dir, version: 'v1.2.3', check: false });
    expect(r.sha).toBe(head);
    expect(r.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(JSON.parse(fs.readFileSync(path.join(dir, KEEL_RELEASE_FILE), 'utf8'))).toEqual({
      sha: head,
      version: 'v1.2.3',
    });
    expect(fs.readdirSync(path.join(dir, '.github', 'workflows')).sort()).toEqual(reusableFiles());
    let keelSteps = 0;
    for (const f of reusableFiles()) {
      const text = fs.readFileSync(path.join(dir, '.github', 'workflows', f), 'utf8');
      for (const m of text.matchAll(/uses: (keel-project\/keel\/actions\/([a-z0-9-]+)@(\S+))(.*)$/gm)) {
        keelSteps++;
        expect([m[1], m[4]]).toEqual([`keel-project/keel/actions/${m[2]}@${head}`, ' # v1.2.3']);
      }
      expect(text).not.toMatch(/keel-project\/keel\/actions\/[a-z0-9-]+@(?![0-9a-f]{40}\b)/);
    }
    expect(keelSteps).toBeGreaterThan(5);
    // The stamp is what the generator reads back.
    expect(loadKeelRelease(dir)).toEqual({ sha: head, version: 'v1.2.3' });
  });

  it('refuses a working tree with changes, before writing anything', async () => {
    const dir = scratchRepo();
    fs.appendFileSync(path.join(dir, 'declarations', 'distro.yaml'), '\n# edited\n');
    await expect(release({ root: dir, version: 'v1.2.3', check: false })).rejects.toThrow(/working tree has changes/);
    expect(fs.existsSync(path.join(dir, KEEL_RELEASE_FILE))).toBe(false);
    expect(fs.existsSync(path.join(dir, '.github'))).toBe(false);
  });

  it('refuses a version that is not vX.Y.Z and a stamp that is not a full SHA', async () => {
    await expect(release({ root: scratchRepo(), version: 'latest', check: false })).rejects.toThrow(/vX\.Y\.Z/);
    expect(() => parseKeelRelease(JSON.stringify({ sha: 'v0', version: 'v0.1.0' }))).toThrow(/40-hex/);
    expect(() => loadKeelRelease(tempDir('keel-none-'))).toThrow(/keel release/);
  });
});

describe('the committed stamp', () => {
  const stamp = loadKeelRelease(root);

  it('is a commit of this repository, HEAD or an ancestor', () => {
    const r = spawnSync('git', ['-C', root, 'merge-base', '--is-ancestor', stamp.sha, 'HEAD']);
    expect([stamp.sha, r.status]).toEqual([stamp.sha, 0]);
  });

  it('runs actions that accept every input the reusable workflows pass, and get every one they require', () => {
    const problems: string[] = [];
    for (const f of reusableFiles()) {
      for (const [jobId, j] of Object.entries(readWorkflow(f).jobs)) {
        for (const s of j.steps) {
          const hop = keelHop(s.uses);
          if (!hop) continue;
          expect(s.uses).toBe(`keel-project/keel/actions/${hop}@${stamp.sha}`);
          const shown = spawnSync('git', ['-C', root, 'show', `${stamp.sha}:actions/${hop}/action.yml`], {
            encoding: 'utf8',
          });
          if (shown.status !== 0) {
            problems.push(`${f} ${jobId}: actions/${hop} does not exist at ${stamp.sha}`);
            continue;
          }
          const inputs = (parse(shown.stdout) as { inputs?: Record<string, { required?: boolean }> }).inputs ?? {};
          for (const k of Object.keys(s.with ?? {}))
            if (!(k in inputs)) problems.push(`${f} ${jobId}: ${hop}@${stamp.sha.slice(0, 12)} has no input ${k}`);
          for (const [k, v] of Object.entries(inputs))
            if (v.required && !(k in (s.with ?? {}))) problems.push(`${f} ${jobId}: ${hop} requires ${k}`);
        }
      }
    }
    // When this fails after an action gained an input: commit it, then run `keel release`.
    expect(problems).toEqual([]);
  });
});
