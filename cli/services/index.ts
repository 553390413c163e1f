import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { workflowRunsEmulator, type WorkflowRunsEmulator } from '../../emulators/github/workflow-runs.js';
import { startIaEmulator, type IaEmulator } from '../../emulators/ia/index.js';
import { startNtfyEmulator, type NtfyEmulator } from '../../emulators/ntfy/index.js';
import type { Distro } from '../../actions/lib/declarations.js';
import { keygen } from '../commands/keygen.js';
import { UserError } from '../../actions/lib/errors.js';
import { gpgSigningKey } from './gpg.js';
import { startRegistry, type Registry } from './registry.js';

/**
 * What a local run stands in for GitHub's world: a real registry on loopback, freshly generated
 * signing keys (cosign for images, GPG for system extension directories), and local emulators
 * for the services that cannot be reached from here: the Internet Archive, ntfy, and the GitHub
 * API (the download site's repository, and the Actions runs of this `keel` invocation, which
 * the watch checks: services/runs.ts). Started once per `keel` invocation and stopped at its end.
 */
export interface LocalServices {
  registry: Registry;
  ia: IaEmulator;
  github: GithubEmulator;
  /** The Actions runs API of `github`: `recordRun` adds each local run to it. */
  runs: WorkflowRunsEmulator;
  ntfy: NtfyEmulator;
  /** The topic notifications of this invocation go to (NTFY_URL). */
  ntfyTopicUrl: string;
  keys: { privateKeyPath: string; publicKeyPath: string; password: string; fingerprint: string };
  /** SYSEXT_GPG_PRIVATE_KEY: an armored key without passphrase. */
  gpg: { armored: string; fingerprint: string };
  iaKeys: { access: string; secret: string };
  githubToken: string;
  stop(): Promise<void>;
}

export const SITE_SEED_FILE = 'src/lib/release.ts';

export interface LocalServiceOptions {
  /** host:port of a loopback registry you run (plain HTTP): used instead of a fresh one, and kept. */
  registry?: string;
}

export async function startLocalServices(
  decl: Distro,
  stateDir: string,
  log: (s: string) => void,
  opts: LocalServiceOptions = {},
): Promise<LocalServices> {
  fs.mkdirSync(stateDir, { recursive: true });
  const registry = opts.registry ? await existingRegistry(opts.registry) : await startRegistry();
  log(
    opts.registry
      ? `registry: ${registry.host} (yours; kept after the run)`
      : `registry: docker-registry on ${registry.host} (storage ${registry.storage})`,
  );
  const iaKeys = { access: 'keel-local-access', secret: crypto.randomBytes(12).toString('hex') };
  const ia = await startIaEmulator({ keys: iaKeys, ingestDelayMs: 200, deriveDelayMs: 1500, lifetimeMs: 6 * 3600_000 });
  log(`Internet Archive: local emulator (S3 ${ia.s3Url}, API ${ia.apiUrl})`);
  const githubToken = `ghp_local_${crypto.randomBytes(8).toString('hex')}`;
  const siteRepo = decl.site?.repository ?? 'keel-project/keel-site';
  const constants = decl.site?.constants ?? [];
  const siteFile = decl.site?.files?.[0] ?? SITE_SEED_FILE;
  const seed = constants.length
    ? constants
        .map((c) => `export const ${c.name} = "${c.value.includes('{file}') ? 'keel-os-20260101.iso' : '20260101'}";`)
        .join('\n')
    : 'export const LATEST_ISO_DATE = "20260101";';
  const runs = workflowRunsEmulator();
  const github = await startGithubEmulator({
    repos: {
      [siteRepo]: {
        files: { [siteFile]: `// The download page reads these.\n${seed}\n`, 'README.md': '# download site\n' },
      },
    },
    token: githubToken,
    login: 'keel-local',
    extensions: [runs.extension],
  });
  log(`GitHub API: local emulator ${github.url} (repository ${siteRepo}; the Actions runs of this invocation)`);
  const ntfy = await startNtfyEmulator();
  const ntfyTopicUrl = ntfy.topicUrl('keel-local');
  log(`ntfy: local emulator ${ntfyTopicUrl}`);
  const keyDir = path.join(stateDir, 'keys');
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const password = crypto.randomBytes(16).toString('base64url');
  const k = await keygen({ outPrefix: path.join(keyDir, 'cosign'), password, force: true });
  log(`signing key: generated ${k.publicKeyPath} (fingerprint ${k.fingerprint.slice(0, 16)}…)`);
  const gpg = await gpgSigningKey(path.join(stateDir, 'gpg'));
  log(`GPG key for system extensions: ${gpg.fingerprint}`);
  return {
    registry,
    ia,
    github,
    runs,
    ntfy,
    ntfyTopicUrl,
    keys: { privateKeyPath: k.privateKeyPath, publicKeyPath: k.publicKeyPath, password, fingerprint: k.fingerprint },
    gpg,
    iaKeys,
    githubToken,
    stop: async () => {
      await Promise.allSettled([registry.stop(), ia.close(), github.close(), ntfy.close()]);
    },
  };
}

/**
 * A registry already running on loopback (plain HTTP, like the one keel run starts): checked to
 * answer the registry API before anything else starts; never stopped by keel.
 */
async function existingRegistry(hostPort: string): Promise<Registry> {
  const m = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(hostPort);
  if (!m)
    throw new UserError(
      `--registry ${hostPort}: expected a loopback registry HOST:PORT (127.0.0.1, localhost or [::1])`,
    );
  const url = `http://${hostPort}`;
  const res = await fetch(`${url}/v2/`).catch((e: unknown) => {
    throw new UserError(`--registry ${hostPort}: no registry answers at ${url}/v2/ (${(e as Error).message})`);
  });
  if (res.status !== 200 && res.status !== 401)
    throw new UserError(`--registry ${hostPort}: ${url}/v2/ answered ${res.status}, not a registry API`);
  return { host: hostPort, url, port: Number(m[2]), storage: '', stop: async () => undefined };
}
