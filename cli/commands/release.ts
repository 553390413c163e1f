import fs from 'node:fs';
import path from 'node:path';
import { loadDeclarations } from '../../actions/lib/declarations.js';
import { UserError } from '../../actions/lib/errors.js';
import { processRunner, type CommandRunner } from '../../actions/lib/exec.js';
import { renderWorkflow, workflows } from '../../workflows-src/index.js';
import { KEEL_RELEASE_FILE, parseKeelRelease, type KeelRelease } from '../../workflows-src/pins.js';

/**
 * `keel release`: pins the reusable workflows to the commit whose actions/ and dist/ they run.
 *
 * 1. Refuses a working tree with any change (the stamped commit must be exactly what is on disk).
 * 2. Unless `check: false`, runs scripts/check.sh: dist/ and every generated file are fresh.
 * 3. Writes HEAD's full SHA and the version into workflows-src/keel-release.json.
 * 4. Re-renders .github/workflows/reusable-*.yml (and every other workflow that runs the released
 *    actions, e.g. cleanup.yml), whose Keel steps then read
 *    `keel-project/keel/actions/<hop>@<sha> # <version>`.
 *
 * The result is committed as its own commit (it changes no action and no bundle, so that commit
 * runs the same dist/ as the stamped one) and tagged; see workflows-src/README.md.
 */
export interface ReleaseOptions {
  /** The repository checkout to release (its HEAD is stamped). */
  root: string;
  /** vX.Y.Z; default: v<package.json version>. */
  version?: string;
  /** Run scripts/check.sh first (default true). */
  check?: boolean;
  runner?: CommandRunner;
  log?: (line: string) => void;
}

export interface ReleaseResult extends KeelRelease {
  /** Files written, relative to root. */
  written: string[];
}

async function git(runner: CommandRunner, root: string, args: string[]): Promise<string> {
  const r = await runner.run('git', ['-C', root, ...args]);
  return r.stdout.toString('utf8').trim();
}

function defaultVersion(root: string): string {
  const pkg = path.join(root, 'package.json');
  if (!fs.existsSync(pkg)) throw new UserError('keel release: --version vX.Y.Z is required (no package.json)');
  return `v${(JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: string }).version ?? ''}`;
}

export async function release(opts: ReleaseOptions): Promise<ReleaseResult> {
  const runner = opts.runner ?? processRunner();
  const log = opts.log ?? (() => undefined);
  const { root } = opts;
  const dirty = await git(runner, root, ['status', '--porcelain', '--untracked-files=all']);
  if (dirty)
    throw new UserError(
      `keel release: the working tree has changes; commit or remove them first (the stamped commit must be what is on disk):\n${dirty}`,
    );
  if (opts.check !== false) {
    log('checking that dist/ and the generated files are fresh (scripts/check.sh)…');
    await runner.run('bash', [path.join(root, 'scripts', 'check.sh')], { cwd: root, stdout: 'inherit' });
  }
  const sha = await git(runner, root, ['rev-parse', '--verify', 'HEAD^{commit}']);
  // Validates the SHA and the version the same way the generator reads them back.
  const stamp = parseKeelRelease(JSON.stringify({ sha, version: opts.version ?? defaultVersion(root) }));
  const written = [KEEL_RELEASE_FILE];
  fs.writeFileSync(path.join(root, KEEL_RELEASE_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
  const decl = loadDeclarations(path.join(root, 'declarations', 'distro.yaml'));
  // The reusable workflows, and the dogfood ones that run the released actions too (cleanup).
  for (const wf of workflows(decl, { release: stamp }).filter((w) => w.actions.kind === 'remote')) {
    const rel = path.posix.join('.github', 'workflows', wf.file);
    fs.mkdirSync(path.join(root, '.github', 'workflows'), { recursive: true });
    fs.writeFileSync(path.join(root, rel), renderWorkflow(wf));
    written.push(rel);
  }
  log(`stamped ${stamp.sha} (${stamp.version}) into ${written.join(', ')}`);
  return { ...stamp, written };
}
