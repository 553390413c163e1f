import fs from 'node:fs';
import { processRunner } from '../../actions/lib/exec.js';

/**
 * The local stand-in for SYSEXT_GPG_PRIVATE_KEY: an ed25519 signing key without passphrase,
 * generated once into `home` (a GNUPGHOME of the local state directory, mode 0700) and exported
 * armored, the form the secret holds. The agent gpg starts is stopped again.
 */
export async function gpgSigningKey(home: string): Promise<{ armored: string; fingerprint: string }> {
  const runner = processRunner();
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const env = { GNUPGHOME: home };
  const gpg = (args: string[]) => runner.run('gpg', ['--batch', ...args], { env, timeoutMs: 60_000 });
  try {
    const listed = () => gpg(['--with-colons', '--list-secret-keys']).then((r) => r.stdout.toString('utf8'));
    let colons = await listed().catch(() => '');
    if (!/^sec:/m.test(colons)) {
      const uid = 'Keel local sysext key <sysext@keel.invalid>';
      await gpg(['--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
      colons = await listed();
    }
    const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(colons)?.[1];
    if (!fingerprint) throw new Error(`gpg listed no key fingerprint in ${home}`);
    const armored = (await gpg(['--armor', '--export-secret-keys', fingerprint])).stdout.toString('utf8');
    return { armored, fingerprint };
  } finally {
    await runner.run('gpgconf', ['--kill', 'gpg-agent'], { env, okCodes: [0, 1, 2] }).catch(() => undefined);
  }
}
