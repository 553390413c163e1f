import crypto from 'node:crypto';
import fs from 'node:fs';
import { promisify } from 'node:util';
import nacl from 'tweetnacl';
import { UserError } from '../errors.js';

/**
 * cosign's key files, read and written in-process (reference/signing.md §2).
 *
 * Private key: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign >= 2.1) or `ENCRYPTED COSIGN PRIVATE
 * KEY` (older cosign, skopeo) around a JSON envelope
 *   {"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":b64},
 *    "cipher":{"name":"nacl/secretbox","nonce":b64},"ciphertext":b64}
 * whose plaintext is the PKCS#8 DER of the key. key = scrypt(password, salt, N, 8, 1, 32).
 * Accepted N: 32768, 65536, 131072 (what go-securesystemslib accepts; anything else is refused,
 * as cosign does, so a crafted file cannot make us burn memory).
 *
 * Public key: SPKI PEM (`PUBLIC KEY`), exactly what policy.json `keyPath` and
 * `cosign verify --key` take.
 *
 * The decrypted key only ever exists as a Node KeyObject in memory: nothing here writes it.
 */

export const PEM_SIGSTORE = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const PEM_COSIGN = 'ENCRYPTED COSIGN PRIVATE KEY';
export const SCRYPT_N_ALLOWED = [32768, 65536, 131072] as const;

/** Node's default scrypt maxmem (32 MiB) is too small even for N=32768, r=8 (128 MiB needed). */
const SCRYPT_MAXMEM = 512 * 1024 * 1024;

const scryptAsync = promisify(crypto.scrypt) as (
  password: crypto.BinaryLike,
  salt: crypto.BinaryLike,
  keylen: number,
  options: crypto.ScryptOptions,
) => Promise<Buffer>;

/** The key file is not a cosign private key, or its envelope is malformed/unsupported. */
export class KeyFormatError extends UserError {
  constructor(problem: string) {
    super(`not a cosign private key: ${problem}`);
    this.name = 'KeyFormatError';
  }
}

/** The envelope is fine but the password does not open it. */
export class WrongPasswordError extends UserError {
  constructor() {
    super('the password does not decrypt the private key (wrong password)');
    this.name = 'WrongPasswordError';
  }
}

export interface KeyGenOptions {
  /**
   * Max compatibility: `ENCRYPTED COSIGN PRIVATE KEY` with N=32768, which every cosign 2.x/3.x and
   * every sigstore-enabled podman/skopeo (also c/image <= 5.27) decrypts. Default: what current
   * cosign writes (`ENCRYPTED SIGSTORE PRIVATE KEY`, N=65536).
   */
  compat?: boolean;
  /** Override the scrypt cost (one of 32768, 65536, 131072). */
  N?: number;
}

export interface KeyPairPem {
  /** Encrypted private key PEM (cosign.key). */
  privatePem: string;
  /** SPKI public key PEM (cosign.pub). */
  publicPem: string;
}

interface Envelope {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

export function toPem(type: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${type}-----\n${b64}\n-----END ${type}-----\n`;
}

export function fromPem(text: string): { type: string; der: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  return { type: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') };
}

async function deriveKey(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  if (!(SCRYPT_N_ALLOWED as readonly number[]).includes(params.N) || params.r !== 8 || params.p !== 1) {
    throw new KeyFormatError(
      `unsupported scrypt parameters N=${params.N} r=${params.r} p=${params.p} (accepted: N in ${SCRYPT_N_ALLOWED.join(', ')}, r=8, p=1)`,
    );
  }
  return scryptAsync(Buffer.from(password, 'utf8'), salt, 32, { N: params.N, r: 8, p: 1, maxmem: SCRYPT_MAXMEM });
}

/** Encrypts a PKCS#8 DER private key into cosign's PEM envelope. */
export async function encryptPrivateKey(pkcs8Der: Buffer, password: string, opts: KeyGenOptions = {}): Promise<string> {
  const N = opts.N ?? (opts.compat ? 32768 : 65536);
  const salt = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(24);
  const key = await deriveKey(password, salt, { N, r: 8, p: 1 });
  const ct = nacl.secretbox(new Uint8Array(pkcs8Der), new Uint8Array(nonce), new Uint8Array(key));
  key.fill(0);
  const env: Envelope = {
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(ct).toString('base64'),
  };
  return toPem(opts.compat ? PEM_COSIGN : PEM_SIGSTORE, Buffer.from(JSON.stringify(env)));
}

/** A new ECDSA P-256 key pair in cosign's file formats. */
export async function generateKeyPair(password: string, opts: KeyGenOptions = {}): Promise<KeyPairPem> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    return {
      privatePem: await encryptPrivateKey(der, password, opts),
      publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    };
  } finally {
    der.fill(0);
  }
}

/** Parses the envelope without decrypting (format problems are reported before any scrypt work). */
export function parseEncryptedKey(pemText: string): { pemType: string; envelope: Envelope } {
  const block = fromPem(pemText);
  if (!block) throw new KeyFormatError('no PEM block found (expected -----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----)');
  if (block.type !== PEM_SIGSTORE && block.type !== PEM_COSIGN) {
    throw new KeyFormatError(`PEM type ${JSON.stringify(block.type)} (expected ${PEM_SIGSTORE} or ${PEM_COSIGN})`);
  }
  let env: Envelope;
  try {
    env = JSON.parse(block.der.toString('utf8')) as Envelope;
  } catch {
    throw new KeyFormatError('the PEM body is not the JSON envelope cosign writes');
  }
  if (env?.kdf?.name !== 'scrypt')
    throw new KeyFormatError(`unsupported kdf ${JSON.stringify(env?.kdf?.name)} (expected scrypt)`);
  if (env.cipher?.name !== 'nacl/secretbox') {
    throw new KeyFormatError(`unsupported cipher ${JSON.stringify(env.cipher?.name)} (expected nacl/secretbox)`);
  }
  const p = env.kdf.params;
  if (!p || typeof p.N !== 'number' || typeof p.r !== 'number' || typeof p.p !== 'number') {
    throw new KeyFormatError('missing scrypt parameters');
  }
  if (!(SCRYPT_N_ALLOWED as readonly number[]).includes(p.N) || p.r !== 8 || p.p !== 1) {
    throw new KeyFormatError(
      `unsupported scrypt parameters N=${p.N} r=${p.r} p=${p.p} (accepted: N in ${SCRYPT_N_ALLOWED.join(', ')}, r=8, p=1)`,
    );
  }
  if (typeof env.kdf.salt !== 'string' || typeof env.cipher.nonce !== 'string' || typeof env.ciphertext !== 'string') {
    throw new KeyFormatError('missing salt, nonce or ciphertext');
  }
  if (Buffer.from(env.cipher.nonce, 'base64').length !== 24) throw new KeyFormatError('incorrect nonce size');
  return { pemType: block.type, envelope: env };
}

/** Decrypts a cosign private key; throws KeyFormatError or WrongPasswordError. */
export async function decryptPrivateKey(pemText: string, password: string): Promise<crypto.KeyObject> {
  const { envelope: env } = parseEncryptedKey(pemText);
  const key = await deriveKey(password, Buffer.from(env.kdf.salt, 'base64'), env.kdf.params);
  const pt = nacl.secretbox.open(
    new Uint8Array(Buffer.from(env.ciphertext, 'base64')),
    new Uint8Array(Buffer.from(env.cipher.nonce, 'base64')),
    new Uint8Array(key),
  );
  key.fill(0);
  if (!pt) throw new WrongPasswordError();
  const der = Buffer.from(pt);
  pt.fill(0);
  try {
    return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new KeyFormatError(`the decrypted key is not PKCS#8 (${(e as Error).message})`);
  } finally {
    der.fill(0);
  }
}

/** The public half of a private key, as SPKI PEM. */
export function publicKeyPemOf(key: crypto.KeyObject): string {
  return crypto.createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
}

/** Parses a public key given as SPKI PEM (a certificate or private key is refused). */
export function parsePublicKey(pemText: string): crypto.KeyObject {
  const block = fromPem(pemText);
  if (!block) throw new UserError('not a public key: no PEM block found (expected -----BEGIN PUBLIC KEY-----)');
  if (block.type !== 'PUBLIC KEY') {
    throw new UserError(
      `not a public key: PEM type ${JSON.stringify(block.type)} (expected PUBLIC KEY, e.g. cosign.pub)`,
    );
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey({ key: block.der, format: 'der', type: 'spki' });
  } catch (e) {
    throw new UserError(`not a public key: ${(e as Error).message}`);
  }
  if (!['ec', 'rsa', 'ed25519'].includes(key.asymmetricKeyType ?? '')) {
    throw new UserError(`unsupported public key type ${key.asymmetricKeyType} (cosign keys are ECDSA, RSA or Ed25519)`);
  }
  return key;
}

/**
 * A public key input: PEM contents, or a path to a PEM file (what promote/smoke-boot/verify accept).
 */
export function readPublicKey(value: string): { key: crypto.KeyObject; pem: string } {
  const v = value.trim();
  let text = v;
  if (!v.includes('-----BEGIN')) {
    if (!fs.existsSync(v))
      throw new UserError(
        'not a public key: expected PEM contents (-----BEGIN PUBLIC KEY-----) or the path of a .pub file',
      );
    text = fs.readFileSync(v, 'utf8');
  }
  const key = parsePublicKey(text);
  return { key, pem: spkiPem(key) };
}

export function spkiPem(key: crypto.KeyObject): string {
  return key.export({ format: 'pem', type: 'spki' }).toString();
}

/** SHA-256 of the SPKI DER: the key's identity (hex fingerprint; base64 is the bundle's key hint). */
export function keyId(key: crypto.KeyObject): { hex: string; hint: string } {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  const h = crypto
    .createHash('sha256')
    .update(pub.export({ format: 'der', type: 'spki' }))
    .digest();
  return { hex: h.toString('hex'), hint: h.toString('base64') };
}

export function samePublicKey(a: crypto.KeyObject, b: crypto.KeyObject): boolean {
  return keyId(a).hex === keyId(b).hex;
}

/** The digest algorithm containers/image and cosign use for a key type (SHA-256, none for Ed25519). */
function algorithmFor(key: crypto.KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
}

/** Signs bytes the cosign way: ECDSA/RSA over SHA-256 (DER signature), or pure Ed25519. */
export function signBytes(key: crypto.KeyObject, data: Buffer): Buffer {
  return crypto.sign(algorithmFor(key), data, key);
}

/** Verifies a raw signature (never throws on malformed signatures: returns false). */
export function verifyBytes(key: crypto.KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return crypto.verify(algorithmFor(key), data, key, signature);
  } catch {
    return false;
  }
}
