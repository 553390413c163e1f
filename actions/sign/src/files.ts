import type crypto from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from '../../lib/log.js';
import { verifyFileSignature, writeFileSignature } from '../../lib/sign/blob.js';
import type { KeyMaterial } from './sign.js';

/** The `files` side of `sign`: `<path>.sig` next to each file, read back and verified. */
export interface SignedFile {
  /** As given in the input (relative to the workspace, or absolute). */
  file: string;
  /** `<file>.sig` */
  signature: string;
  verified: boolean;
}

export async function signFiles(
  files: string[],
  key: KeyMaterial,
  verifyKey: crypto.KeyObject,
  log: Logger,
): Promise<SignedFile[]> {
  const out: SignedFile[] = [];
  for (const file of files) {
    const signature = await writeFileSignature(file, key.privateKey);
    const verified = await verifyFileSignature(file, fs.readFileSync(signature, 'utf8'), verifyKey);
    log.info(`${file} → ${signature}${verified ? '' : ' (does NOT verify)'}`);
    out.push({ file, signature, verified });
  }
  return out;
}
