import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for log lines (never the secret itself). */
  source: string;
}

/**
 * containers/image's order: REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
 * $XDG_CONFIG_HOME/containers/auth.json, then Docker's ~/.docker/config.json (DOCKER_CONFIG).
 */
export function authFileCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  const home = env.HOME || os.homedir();
  files.push(path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json'));
  files.push(path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json'));
  return files;
}

const DOCKER_HUB_KEYS = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/'];

function normaliseKey(key: string): string {
  return key
    .replace(/^https?:\/\//, '')
    .replace(/\/v[12]\/?$/, '')
    .replace(/\/$/, '');
}

/**
 * Credentials for `registry/repository` from the auth files: the most specific key wins
 * (`host/ns/repo` before `host/ns` before `host`), as in containers-auth.json(5).
 */
export function credentialsFromAuthFiles(
  registry: string,
  repository: string,
  env: NodeJS.ProcessEnv = process.env,
): Credentials | undefined {
  const wanted: string[] = [];
  const parts = repository.split('/');
  for (let i = parts.length; i >= 1; i--) wanted.push(`${registry}/${parts.slice(0, i).join('/')}`);
  wanted.push(registry);
  if (registry === 'docker.io') wanted.push(...DOCKER_HUB_KEYS.map(normaliseKey));
  for (const file of authFileCandidates(env)) {
    let doc: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof doc;
    } catch {
      continue;
    }
    const auths = doc.auths ?? {};
    const byKey = new Map(Object.entries(auths).map(([k, v]) => [normaliseKey(k), v]));
    for (const key of wanted) {
      const entry = byKey.get(key);
      if (!entry) continue;
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1), source: `${file} (${key})` };
      }
      if (entry.username && entry.password) {
        return { username: entry.username, password: entry.password, source: `${file} (${key})` };
      }
    }
  }
  return undefined;
}

/** Explicit inputs win; then the auth files; then anonymous (undefined). */
export function resolveCredentials(
  registry: string,
  repository: string,
  input: { username?: string; password?: string },
  env: NodeJS.ProcessEnv = process.env,
): Credentials | undefined {
  if (input.username || input.password) {
    return { username: input.username ?? '', password: input.password ?? '', source: 'inputs' };
  }
  return credentialsFromAuthFiles(registry, repository, env);
}

/** Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (or Basic). */
export function parseChallenge(
  header: string | undefined,
): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g)) {
    params[(p[1] ?? '').toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}
