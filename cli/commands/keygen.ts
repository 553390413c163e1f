import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../actions/lib/errors.js';
import { generateKeyPair, keyId, parseEncryptedKey, parsePublicKey } from '../../actions/lib/sign/keys.js';

/**
 * `keel keygen`: a cosign-compatible key pair, made in-process (no cosign needed).
 * Writes `<outPrefix>.key` (encrypted private key, mode 0600) and `<outPrefix>.pub` (SPKI PEM).
 * Default format is what current cosign writes (ENCRYPTED SIGSTORE PRIVATE KEY, scrypt N=65536);
 * `compat` writes ENCRYPTED COSIGN PRIVATE KEY with N=32768, which every cosign 2.x/3.x and every
 * sigstore-enabled podman/skopeo can decrypt. Equivalent: `cosign generate-key-pair`.
 * Store the .key contents and the password as CI secrets; ship the .pub to clients.
 */
export interface KeygenOptions {
  /** Path prefix: `cosign` → cosign.key + cosign.pub. */
  outPrefix: string;
  /** Password for the private key (cosign's COSIGN_PASSWORD). May be empty, but should not be. */
  password: string;
  compat?: boolean;
  /** Overwrite existing files (default: refuse). */
  force?: boolean;
}

export interface KeygenResult {
  privateKeyPath: string;
  publicKeyPath: string;
  /** SHA-256 of the public key (SPKI DER), hex. */
  fingerprint: string;
  pemType: string;
  scryptN: number;
}

export async function keygen(opts: KeygenOptions): Promise<KeygenResult> {
  if (!opts.outPrefix)
    throw new UserError('keygen: an output prefix is required (e.g. cosign → cosign.key, cosign.pub)');
  const privateKeyPath = `${opts.outPrefix}.key`;
  const publicKeyPath = `${opts.outPrefix}.pub`;
  if (!opts.force) {
    for (const p of [privateKeyPath, publicKeyPath]) {
      if (fs.existsSync(p)) throw new UserError(`keygen: ${p} already exists (refusing to overwrite a key; use force)`);
    }
  }
  fs.mkdirSync(path.dirname(path.resolve(privateKeyPath)), { recursive: true });
  const pair = await generateKeyPair(opts.password, { compat: opts.compat });
  const flag = opts.force ? 'w' : 'wx';
  fs.writeFileSync(privateKeyPath, pair.privatePem, { mode: 0o600, flag });
  fs.chmodSync(privateKeyPath, 0o600);
  fs.writeFileSync(publicKeyPath, pair.publicPem, { mode: 0o644, flag });
  const { pemType, envelope } = parseEncryptedKey(pair.privatePem);
  return {
    privateKeyPath,
    publicKeyPath,
    fingerprint: keyId(parsePublicKey(pair.publicPem)).hex,
    pemType,
    scryptN: envelope.kdf.params.N,
  };
}
