// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readInputs } from '../../actions/lib/inputs.js';
import { recordingIO } from '../../actions/lib/io.js';
import { memoryLogger } from '../../actions/lib/log.js';
import type { RegistryClient } from '../../actions/lib/oci/client.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { keyId } from '../../actions/lib/sign/keys.js';
import {
  NOT_CHECKED,
  publicKeyInput,
  requireSignatureGate,
  signatureGateInputs,
} from '../../actions/lib/signature-gate.js';
import { tmpdir } from '../harness/tools.js';

const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const PEM = publicKey.export({ format: 'pem', type: 'spki' }).toString();
const FINGERPRINT = keyId(publicKey).hex;

/** A registry client that fails the test if the gate touches it. */
const untouchable = new Proxy(
  {},
  {
    get: (_t, p) => {
      throw new Error(`the registry client was used (${String(p)})`);
    },
  },
) as RegistryClient;

const parse = (given: Record<string, string>) => readInputs(recordingIO(given), signatureGateInputs);

describe('public-key input (one parser for sign, verify, the gated hops and keel policy)', () => {
  it('takes PEM contents, an absolute path, or a path relative to the workspace (the step cwd)', () => {
    const dir = tmpdir('keel-pub-');
    const file = path.join(dir, 'cosign.pub');
    fs.writeFileSync(file, PEM);
    const rel = path.relative(process.cwd(), file);
    for (const v of [PEM, file, rel]) expect(parse({ 'public-key': v })['public-key']?.fingerprint).toBe(FINGERPRINT);
    expect(parse({ 'public-key': file })['public-key']?.source).toBe(file);
    expect(parse({ 'public-key': PEM })['public-key']?.source).toBe('inline PEM');
    expect(parse({})['public-key']).toBeUndefined();
  });

  it('refuses anything else at input time, naming the input without echoing the value', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
    expect(() => parse({ 'public-key': cert })).toThrow(
      `Input 'public-key': not a public key: PEM type "CERTIFICATE" (expected PUBLIC KEY, e.g. cosign.pub)`,
    );
    expect(() => parse({ 'public-key': 'no/such/cosign.pub' })).toThrow(
      /^Input 'public-key': not a public key: expected PEM contents .* or the path of a \.pub file$/,
    );
    expect(() => readInputs(recordingIO({}), { 'public-key': publicKeyInput({ required: true }) })).toThrow(
      /^Input 'public-key': it is required/,
    );
  });
});

describe('requireSignatureGate: fail closed', () => {
  const ref = parseReference(`127.0.0.1:1/keel/os@sha256:${'a'.repeat(64)}`);

  it('refuses without a key, naming public-key and the way out, and writes nothing', async () => {
    const io = recordingIO({});
    await expect(requireSignatureGate(parse({}), io, 'promote')).rejects.toThrow(
      "Input 'public-key': it is required: promote refuses to run without the cosign public key the image must verify with (set allow-unsigned: true to proceed without checking the signature)",
    );
    expect(io.summaries).toEqual([]);
    expect(io.logs.filter((l) => l.level === 'warning')).toEqual([]);
  });

  it('allow-unsigned: runs, with a warning in the log and the summary, and never asks the registry', async () => {
    const io = recordingIO({});
    const gate = await requireSignatureGate(parse({ 'allow-unsigned': 'true' }), io, 'build-disk');
    expect(gate.key).toBeUndefined();
    expect(io.logs.filter((l) => l.level === 'warning').map((l) => l.message)).toEqual([
      "allow-unsigned is true and no public-key is given: build-disk does NOT check the image's signature",
    ]);
    expect(io.summaries.join('')).toMatch(/WARNING[\s\S]*\*\*build-disk\*\*: allow-unsigned is true .* does NOT check/);
    const log = memoryLogger();
    expect(await gate.check(untouchable, ref, log)).toBe(NOT_CHECKED);
    expect(log.lines).toEqual([
      { level: 'warning', message: `signature of ${ref.toString()} not checked (allow-unsigned)` },
    ]);
  });

  it('a key always gates, whatever allow-unsigned says', async () => {
    const io = recordingIO({});
    const gate = await requireSignatureGate(parse({ 'public-key': PEM, 'allow-unsigned': 'true' }), io, 'smoke-boot');
    expect(gate.key?.fingerprint).toBe(FINGERPRINT);
    expect(io.summaries).toEqual([]);
    await expect(gate.check(untouchable, ref, memoryLogger())).rejects.toThrow(/the registry client was used/);
  });

  it('allow-unsigned takes true or false only', () => {
    expect(() => parse({ 'allow-unsigned': 'yes' })).toThrow(
      /^Input 'allow-unsigned' has value "yes": expected true or false/,
    );
  });
});
