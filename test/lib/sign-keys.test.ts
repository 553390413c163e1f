// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import nacl from 'tweetnacl';
import { keygen } from '../../cli/commands/keygen.js';
import {
  decryptPrivateKey,
  encryptPrivateKey,
  fromPem,
  generateKeyPair,
  KeyFormatError,
  keyId,
  parseEncryptedKey,
  parsePublicKey,
  PEM_COSIGN,
  PEM_SIGSTORE,
  publicKeyPemOf,
  readPublicKey,
  signBytes,
  toPem,
  verifyBytes,
  WrongPasswordError,
} from '../../actions/lib/sign/keys.js';
import { tmpdir } from '../harness/tools.js';

/** Writes an envelope by hand (independent of encryptPrivateKey) for a given N / PEM type. */
function handMadeKey(pkcs8: Buffer, password: string, N: number, pemType: string): string {
  const salt = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(24);
  const key = crypto.scryptSync(password, salt, 32, { N, r: 8, p: 1, maxmem: 512 * 1024 * 1024 });
  const ct = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(key));
  const env = {
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(ct).toString('base64'),
  };
  return toPem(pemType, Buffer.from(JSON.stringify(env)));
}

describe('cosign key files', () => {
  it('generates what current cosign writes: SIGSTORE PEM, scrypt N=65536, P-256 PKCS#8 (154-byte ciphertext)', async () => {
    const k = await generateKeyPair('pw');
    const { pemType, envelope } = parseEncryptedKey(k.privatePem);
    expect(pemType).toBe(PEM_SIGSTORE);
    expect(envelope.kdf).toMatchObject({ name: 'scrypt', params: { N: 65536, r: 8, p: 1 } });
    expect(Buffer.from(envelope.kdf.salt, 'base64')).toHaveLength(32);
    expect(envelope.cipher.name).toBe('nacl/secretbox');
    expect(Buffer.from(envelope.cipher.nonce, 'base64')).toHaveLength(24);
    expect(Buffer.from(envelope.ciphertext, 'base64')).toHaveLength(154);
    expect(k.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const priv = await decryptPrivateKey(k.privatePem, 'pw');
    expect(priv.asymmetricKeyType).toBe('ec');
    expect(priv.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(publicKeyPemOf(priv)).toBe(k.publicPem);
  });

  it('compat mode writes the COSIGN PEM name with N=32768', async () => {
    const k = await generateKeyPair('pw', { compat: true });
    const { pemType, envelope } = parseEncryptedKey(k.privatePem);
    expect(pemType).toBe(PEM_COSIGN);
    expect(envelope.kdf.params.N).toBe(32768);
    expect(publicKeyPemOf(await decryptPrivateKey(k.privatePem, 'pw'))).toBe(k.publicPem);
  });

  it.each([
    [PEM_SIGSTORE, 32768],
    [PEM_SIGSTORE, 65536],
    [PEM_SIGSTORE, 131072],
    [PEM_COSIGN, 32768],
    [PEM_COSIGN, 65536],
    [PEM_COSIGN, 131072],
  ])('reads %s with N=%i (hand-made envelope)', async (pemType, N) => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = handMadeKey(privateKey.export({ format: 'der', type: 'pkcs8' }), 'sekret', N, pemType);
    const got = await decryptPrivateKey(pem, 'sekret');
    expect(keyId(got).hex).toBe(keyId(publicKey).hex);
  });

  it('refuses scrypt parameters outside the accepted set before doing any work', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = handMadeKey(privateKey.export({ format: 'der', type: 'pkcs8' }), 'x', 16384, PEM_SIGSTORE);
    await expect(decryptPrivateKey(pem, 'x')).rejects.toThrow(/unsupported scrypt parameters N=16384/);
    const env = JSON.parse(fromPem(pem)!.der.toString()) as { kdf: { params: { N: number } } };
    env.kdf.params.N = 1 << 24; // a memory bomb must not be attempted
    const bomb = toPem(PEM_SIGSTORE, Buffer.from(JSON.stringify(env)));
    await expect(decryptPrivateKey(bomb, 'x')).rejects.toBeInstanceOf(KeyFormatError);
  });

  it('a wrong password is a WrongPasswordError with a clear message; an empty password works when the key has one', async () => {
    const k = await generateKeyPair('right');
    await expect(decryptPrivateKey(k.privatePem, 'wrong')).rejects.toBeInstanceOf(WrongPasswordError);
    await expect(decryptPrivateKey(k.privatePem, 'wrong')).rejects.toThrow(
      'the password does not decrypt the private key (wrong password)',
    );
    const empty = await generateKeyPair('');
    expect(publicKeyPemOf(await decryptPrivateKey(empty.privatePem, ''))).toBe(empty.publicPem);
  });

  it('rejects things that are not cosign private keys, saying what was expected', async () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expect(decryptPrivateKey('hello', 'x')).rejects.toThrow(/no PEM block found/);
    await expect(
      decryptPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 'x'),
    ).rejects.toThrow(
      /PEM type "PRIVATE KEY" \(expected ENCRYPTED SIGSTORE PRIVATE KEY or ENCRYPTED COSIGN PRIVATE KEY\)/,
    );
    await expect(decryptPrivateKey(toPem(PEM_SIGSTORE, Buffer.from('not json')), 'x')).rejects.toThrow(/JSON envelope/);
    const badCipher = toPem(
      PEM_SIGSTORE,
      Buffer.from(
        JSON.stringify({
          kdf: { name: 'scrypt', params: { N: 32768, r: 8, p: 1 }, salt: 'AA==' },
          cipher: { name: 'aes' },
          ciphertext: '',
        }),
      ),
    );
    await expect(decryptPrivateKey(badCipher, 'x')).rejects.toThrow(/unsupported cipher "aes"/);
    expect(() => parsePublicKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())).toThrow(
      /expected PUBLIC KEY/,
    );
    expect(keyId(parsePublicKey(publicKey.export({ format: 'pem', type: 'spki' }).toString())).hex).toBe(
      keyId(publicKey).hex,
    );
  });

  it('encrypt/decrypt round-trips an arbitrary PKCS#8 key (RSA, Ed25519) and signs/verifies cosign-style', async () => {
    for (const type of ['rsa', 'ed25519'] as const) {
      const { privateKey, publicKey } =
        type === 'rsa'
          ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
          : crypto.generateKeyPairSync('ed25519');
      const pem = await encryptPrivateKey(privateKey.export({ format: 'der', type: 'pkcs8' }), 'p', { N: 32768 });
      const k = await decryptPrivateKey(pem, 'p');
      const data = Buffer.from('payload');
      const sig = signBytes(k, data);
      expect(verifyBytes(publicKey, data, sig)).toBe(true);
      expect(verifyBytes(publicKey, Buffer.from('other'), sig)).toBe(false);
    }
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sig = signBytes(ec.privateKey, Buffer.from('x'));
    // ECDSA over SHA-256, DER-encoded (what the annotation carries)
    expect(crypto.verify('sha256', Buffer.from('x'), { key: ec.publicKey, dsaEncoding: 'der' }, sig)).toBe(true);
    expect(verifyBytes(ec.publicKey, Buffer.from('x'), Buffer.from('garbage'))).toBe(false);
  });

  it('readPublicKey takes PEM contents or a file path', () => {
    const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'k.pub'), pem);
    expect(readPublicKey(pem).pem).toBe(pem);
    expect(readPublicKey(path.join(dir, 'k.pub')).pem).toBe(pem);
    expect(() => readPublicKey(path.join(dir, 'missing.pub'))).toThrow(/PEM contents .* or the path of a .pub file/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keygen writes cosign.key (0600, encrypted) and cosign.pub, refuses to overwrite, honours compat', async () => {
    const dir = tmpdir();
    const r = await keygen({ outPrefix: path.join(dir, 'cosign'), password: 'pw' });
    expect(r).toMatchObject({
      privateKeyPath: path.join(dir, 'cosign.key'),
      publicKeyPath: path.join(dir, 'cosign.pub'),
      pemType: PEM_SIGSTORE,
      scryptN: 65536,
    });
    expect(fs.statSync(r.privateKeyPath).mode & 0o777).toBe(0o600);
    const priv = fs.readFileSync(r.privateKeyPath, 'utf8');
    expect(priv).toContain('ENCRYPTED SIGSTORE PRIVATE KEY');
    const k = await decryptPrivateKey(priv, 'pw');
    expect(publicKeyPemOf(k)).toBe(fs.readFileSync(r.publicKeyPath, 'utf8'));
    expect(keyId(k).hex).toBe(r.fingerprint);
    await expect(keygen({ outPrefix: path.join(dir, 'cosign'), password: 'pw' })).rejects.toThrow(/already exists/);
    const c = await keygen({ outPrefix: path.join(dir, 'cosign'), password: 'pw', compat: true, force: true });
    expect(c).toMatchObject({ pemType: PEM_COSIGN, scryptN: 32768 });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
