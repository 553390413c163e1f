import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from './cleanup.js';
import { InputError } from './errors.js';
import type { CommandRunner } from './exec.js';

/**
 * OpenPGP signing with a key given as input: imported into a throw-away GNUPGHOME (0700, removed
 * with its agent on every path), never into the runner's keyring. The key and its passphrase
 * reach gpg on stdin only, never in argv, environment or logs.
 */
export interface GpgSigner {
  /** Fingerprint of the signing key. */
  fingerprint: string;
  /** Writes a detached binary signature of `file` to `out` (what systemd-sysupdate verifies). */
  detachSign(file: string, out: string): Promise<void>;
  /** Checks a detached signature with the imported key (throws when it does not verify). */
  verify(file: string, signature: string): Promise<void>;
  /** The public key, binary (a keyring file for /etc/systemd/import-pubring.gpg). */
  exportPublic(out: string): Promise<void>;
}

const BATCH = ['--batch', '--no-tty', '--quiet', '--no-greeting'];

/** Why `value` is not an ASCII-armored OpenPGP private key, or undefined (checked before any side effect). */
export function armoredKeyProblem(value: string): string | undefined {
  return /-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(value)
    ? undefined
    : 'expected an ASCII-armored OpenPGP private key (gpg --armor --export-secret-keys)';
}

/** The longest UNIX socket path (sun_path is 108 bytes with its NUL). */
const SOCKET_PATH_MAX = 107;

/**
 * Where the throw-away GNUPGHOME goes: under `tmpDir`, unless gpg-agent's sockets
 * (`<home>/S.gpg-agent.browser`) would not fit a UNIX socket path there — a job's temp directory
 * under a deep work tree — then under the system temp directory. Without its agent gpg cannot
 * import a secret key at all.
 */
export function gnupgHomeParent(tmpDir: string): string {
  const longest = path.join(path.resolve(tmpDir), 'keel-gnupg-XXXXXX', 'S.gpg-agent.browser');
  return longest.length <= SOCKET_PATH_MAX ? tmpDir : os.tmpdir();
}

/** Runs `fn` with a signer for `armoredKey`; the temporary GNUPGHOME is gone afterwards. */
export async function withGpgKey<T>(
  opts: { armoredKey: string; passphrase?: string; tmpDir: string; runner: CommandRunner; input?: string },
  fn: (signer: GpgSigner) => Promise<T>,
): Promise<T> {
  const input = opts.input ?? 'gpg-private-key';
  const keyProblem = armoredKeyProblem(opts.armoredKey);
  if (keyProblem) throw new InputError(input, undefined, keyProblem);
  const home = fs.mkdtempSync(path.join(gnupgHomeParent(opts.tmpDir), 'keel-gnupg-'));
  fs.chmodSync(home, 0o700);
  const secrets = [opts.armoredKey, ...(opts.passphrase ? [opts.passphrase] : [])];
  const env = { GNUPGHOME: home, GPG_TTY: undefined, GPG_AGENT_INFO: undefined };
  const gpg = (args: string[], stdin?: string) =>
    opts.runner.run('gpg', [...BATCH, ...args], { env, input: stdin, redact: secrets });
  // A cancelled step skips the finally below: stop the agent and remove the home synchronously then.
  const unregister = onCleanup(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore' });
    fs.rmSync(home, { recursive: true, force: true });
  });
  try {
    await gpg(['--import'], opts.armoredKey);
    const listing = (await gpg(['--with-colons', '--list-secret-keys'])).stdout.toString('utf8');
    const fpr = /^fpr:(?:[^:]*:){8}([0-9A-F]{40,64}):/m.exec(listing)?.[1];
    if (!fpr) throw new InputError(input, undefined, 'the armored block holds no secret key');
    const pass = `${opts.passphrase ?? ''}\n`;
    return await fn({
      fingerprint: fpr,
      detachSign: async (file, out) => {
        fs.rmSync(out, { force: true });
        await gpg(
          [
            '--pinentry-mode',
            'loopback',
            '--passphrase-fd',
            '0',
            '--local-user',
            fpr,
            '--detach-sign',
            '--output',
            out,
            file,
          ],
          pass,
        );
      },
      verify: async (file, signature) => {
        await gpg(['--verify', signature, file]);
      },
      exportPublic: async (out) => {
        fs.writeFileSync(out, (await gpg(['--export', fpr])).stdout);
      },
    });
  } finally {
    // The agent gpg started for this home would outlive the step otherwise.
    await opts.runner.run('gpgconf', ['--kill', 'gpg-agent'], { env, okCodes: [0, 1, 2] }).catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
    unregister();
  }
}
