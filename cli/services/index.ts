import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { startIaEmulator, type IaEmulator } from '../../emulators/ia/index.js';
import type { Distro } from '../../actions/lib/declarations.js';
import { keygen } from '../commands/keygen.js';
import { startRegistry, type Registry } from './registry.js';

/**
 * What a local run stands in for GitHub's world: a real registry on loopback, a freshly
 * generated signing key, and local emulators for the two services that cannot be reached from
 * here (the Internet Archive, the GitHub API of the download site). Started once per `keel`
 * invocation and stopped at its end.
 */
export interface LocalServices {
  registry: Registry;
  ia: IaEmulator;
  github: GithubEmulator;
  keys: { privateKeyPath: string; publicKeyPath: string; password: string; fingerprint: string };
  iaKeys: { access: string; secret: string };
  githubToken: string;
  stop(): Promise<void>;
}

export const SITE_SEED_FILE = 'src/lib/release.ts';

export async function startLocalServices(
  decl: Distro,
  stateDir: string,
  log: (s: string) => void,
): Promise<LocalServices> {
  fs.mkdirSync(stateDir, { recursive: true });
  const registry = await startRegistry();
  log(`registry: docker-registry on ${registry.host} (storage ${registry.storage})`);
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
  const github = await startGithubEmulator({
    repos: {
      [siteRepo]: {
        files: { [siteFile]: `// The download page reads these.\n${seed}\n`, 'README.md': '# download site\n' },
      },
    },
    token: githubToken,
    login: 'keel-local',
  });
  log(`GitHub API: local emulator ${github.url} (repository ${siteRepo})`);
  const keyDir = path.join(stateDir, 'keys');
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const password = crypto.randomBytes(16).toString('base64url');
  const k = await keygen({ outPrefix: path.join(keyDir, 'cosign'), password, force: true });
  log(`signing key: generated ${k.publicKeyPath} (fingerprint ${k.fingerprint.slice(0, 16)}…)`);
  return {
    registry,
    ia,
    github,
    keys: { privateKeyPath: k.privateKeyPath, publicKeyPath: k.publicKeyPath, password, fingerprint: k.fingerprint },
    iaKeys,
    githubToken,
    stop: async () => {
      await Promise.allSettled([registry.stop(), ia.close(), github.close()]);
    },
  };
}
