import fs from 'node:fs';
import path from 'node:path';
import type { LocalServices } from '../../cli/services/index.js';

/**
 * The services `runWorkflow` reads when no Keel hop needs a real one: the values it offers as
 * secrets (a private key file in `dir`, empty credentials, no ntfy topic). `overrides` replace
 * fields, e.g. an ntfy emulator and its topic URL. runner-workflow.test.ts keeps its own, with a
 * distinct value for every secret, for its redaction tests.
 */
export function fakeServices(dir: string, overrides: Partial<LocalServices> = {}): LocalServices {
  const privateKeyPath = path.join(dir, 'cosign.key');
  fs.writeFileSync(privateKeyPath, 'unused-key-material');
  return {
    keys: { privateKeyPath, publicKeyPath: '', password: '', fingerprint: '' },
    iaKeys: { access: '', secret: '' },
    githubToken: '',
    ntfyTopicUrl: '',
    gpg: { armored: '', fingerprint: '' },
    ...overrides,
  } as unknown as LocalServices;
}
