import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../actions/lib/log.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { appendSignatures } from '../../actions/lib/sign/legacy.js';
import { ANNOTATION_SIGNATURE, buildPayload } from '../../actions/lib/sign/payload.js';
import { signImage } from '../../actions/sign/src/sign.js';
import { tmpdir } from './tools.js';

/**
 * Signing for the tests of gated hops (promote, smoke-boot, build-disk): a fresh key pair, a
 * Keel signature (the sign hop's own writer, cosign legacy format, repository identity), and a
 * tampered one (the right payload, its signature bytes altered), all on a loopback registry.
 */
export interface TestKey {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  pem: string;
  /** The PEM written to a .pub file. */
  path: string;
}

export function testKey(): TestKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const file = path.join(tmpdir('keel-key-'), 'cosign.pub');
  fs.writeFileSync(file, pem);
  return { privateKey, publicKey, pem, path: file };
}

/** Signs `repo@digest` (repo = host/name, loopback registry) with `key`, as the sign hop does. */
export async function signDigest(pinned: string, key: TestKey): Promise<void> {
  const ref = parseReference(pinned);
  const client = connect(ref, { 'tls-verify': false }, silentLogger);
  await signImage(client, { ref, identities: [ref.name], legacy: true, bundle: false, key }, silentLogger);
}

/** Attaches a signature whose payload is right for `pinned` but whose signature bytes are altered. */
export async function attachTamperedSignature(pinned: string, key: TestKey): Promise<void> {
  const ref = parseReference(pinned);
  const client = connect(ref, { 'tls-verify': false }, silentLogger);
  const payload = buildPayload(ref.name, ref.digest!);
  const sig = crypto.sign('sha256', payload, key.privateKey);
  sig[sig.length - 1] = sig[sig.length - 1]! ^ 0x01;
  await appendSignatures(
    client,
    ref.repository,
    ref.digest!,
    [{ payload, annotations: { [ANNOTATION_SIGNATURE]: sig.toString('base64') } }],
    () => false,
  );
}
