import path from 'node:path';
import { processRunner, type CommandRunner } from '../actions/lib/exec.js';
import { keelHome } from './home.js';

/**
 * The local base bootstrap of `keel run` (the `bootstrap-base` hint of the build workflow): runs
 * the installed Keel's build_files/base/bootstrap.sh, so a `keel init --debian` project needs no
 * copy of the scripts. The script caches by its input hash under the image name it builds; this
 * also reuses a base built from identical inputs under another name (another project on the same
 * machine, or Keel's example distro with the same suite and package list) by tagging it, instead
 * of bootstrapping Debian a second time.
 */
export const BASE_HASH_LABEL = 'dev.keel.base.input-hash';

export interface BootstrapRequest {
  /** The script, relative to Keel's installation (build_files/base/bootstrap.sh). */
  script: string;
  args: string[];
  /** The base image name the script writes (declarations base.image). */
  image: string;
}

async function out(runner: CommandRunner, cmd: string, args: string[]): Promise<string> {
  const r = await runner.run(cmd, args, { okCodes: [0, 1, 125] });
  return r.code === 0 ? r.stdout.toString('utf8').trim() : '';
}

/**
 * A local image built by the bootstrap from inputs with `hash`: it carries the hash label and
 * exactly one layer (the bootstrap commits the rootfs as a single layer; images derived from it
 * inherit the label but add layers).
 */
export async function findBaseByHash(runner: CommandRunner, hash: string): Promise<string | undefined> {
  const ids = (
    await out(runner, 'buildah', ['images', '--no-trunc', '--quiet', '--filter', `label=${BASE_HASH_LABEL}=${hash}`])
  )
    .split('\n')
    .map((l) => l.trim().replace(/^sha256:/, ''))
    .filter(Boolean);
  for (const id of [...new Set(ids)]) {
    const layers = await out(runner, 'buildah', [
      'inspect',
      '--type',
      'image',
      '--format',
      '{{len .OCIv1.RootFS.DiffIDs}}',
      id,
    ]);
    if (layers === '1') return id;
  }
  return undefined;
}

export async function bootstrapBase(
  req: BootstrapRequest,
  log: (s: string) => void,
  runner: CommandRunner = processRunner(),
): Promise<void> {
  const script = path.join(keelHome, req.script);
  const hash = (await runner.run('bash', [script, ...req.args, '--print-hash'])).stdout.toString('utf8').trim();
  const current = await out(runner, 'buildah', [
    'inspect',
    '--type',
    'image',
    '--format',
    `{{index .OCIv1.Config.Labels "${BASE_HASH_LABEL}"}}`,
    req.image,
  ]);
  if (current !== hash) {
    const same = await findBaseByHash(runner, hash);
    if (same) {
      await runner.run('buildah', ['tag', same, req.image]);
      log(`      base built from the same inputs found (${same.slice(0, 12)}): tagged ${req.image}`);
    }
  }
  await runner.run('bash', [script, ...req.args], { cwd: keelHome, stdout: 'ignore', timeoutMs: 3600_000 });
}
