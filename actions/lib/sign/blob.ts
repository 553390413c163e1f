import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { writeFileAtomically } from '../atomic.js';

/**
 * Detached signatures of files (ISOs, SHA256SUMS) in the format of `cosign sign-blob --key`:
 * the base64 of an ECDSA (or RSA) signature over SHA-256 of the file, in `<file>.sig`, which
 * `cosign verify-blob --key cosign.pub --signature <file>.sig <file>` checks offline. Large files
 * are hashed as a stream; Ed25519 (no pre-hash) reads the file whole.
 */

async function digestSign(file: string, key: crypto.KeyObject): Promise<Buffer> {
  if (key.asymmetricKeyType === 'ed25519') return crypto.sign(null, fs.readFileSync(file), key);
  const signer = crypto.createSign('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), signer);
  return signer.sign(key);
}

/** Whether `signatureB64` (the contents of a .sig file) is a valid signature of `file` by `key`. */
export async function verifyFileSignature(file: string, signatureB64: string, key: crypto.KeyObject): Promise<boolean> {
  const sig = Buffer.from(signatureB64.trim(), 'base64');
  try {
    if (key.asymmetricKeyType === 'ed25519') return crypto.verify(null, fs.readFileSync(file), key, sig);
    const verifier = crypto.createVerify('sha256');
    await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), verifier);
    return verifier.verify(key, sig);
  } catch {
    return false;
  }
}

/**
 * Signs `file` into `<file>.sig` (written through a temporary sibling and a rename, so a reader
 * never sees half a signature); returns the signature's path.
 */
export async function writeFileSignature(file: string, privateKey: crypto.KeyObject): Promise<string> {
  const b64 = (await digestSign(file, privateKey)).toString('base64');
  const out = `${file}.sig`;
  writeFileAtomically(out, b64);
  return out;
}
