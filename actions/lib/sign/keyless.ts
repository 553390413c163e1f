import crypto from 'node:crypto';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import {
  CIContextProvider,
  FulcioSigner,
  MessageSignatureBundleBuilder,
  RekorWitness,
  type IdentityProvider,
  type Signature,
  type Signer,
  type Witness,
} from '@sigstore/sign';
import { UserError } from '../errors.js';
import { ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_SIGNATURE } from './payload.js';
import { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL } from './sigstore-urls.js';

/**
 * Keyless signing (GitHub OIDC token → Fulcio certificate, Rekor v1 transparency log) through
 * @sigstore/sign. One ephemeral P-256 key and ONE Fulcio certificate per run, reused for every
 * signature of the run (a certificate is valid for 10 minutes).
 *
 * IMPORTANT: containers/image (bootc, rpm-ostree, podman) cannot enforce these signatures for
 * GitHub Actions identities: its `fulcio` policy matches only `subjectEmail`, and GitHub workflow
 * certificates carry a URI SAN (reference/signing.md §5.6). Keyless is for `cosign verify
 * --certificate-identity …` users; bootc clients need the key-based signature.
 */

export { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL };

export interface KeylessOptions {
  fulcioURL?: string;
  rekorURL?: string;
  /** Default: the GitHub Actions OIDC token (audience sigstore), or SIGSTORE_ID_TOKEN. */
  identityProvider?: IdentityProvider;
  /** Per-request timeout for Fulcio/Rekor (ms). */
  timeout?: number;
}

/** The Rekor v1 SET in cosign's `dev.sigstore.cosign/bundle` annotation shape (signing.md §5.4). */
export function rekorSetAnnotation(bundle: SerializedBundle): string | undefined {
  const e = bundle.verificationMaterial?.tlogEntries?.[0];
  if (!e?.inclusionPromise) return undefined;
  return JSON.stringify({
    SignedEntryTimestamp: e.inclusionPromise.signedEntryTimestamp,
    Payload: {
      body: e.canonicalizedBody,
      integratedTime: Number(e.integratedTime),
      logIndex: Number(e.logIndex),
      logID: Buffer.from(e.logId.keyId, 'base64').toString('hex'),
    },
  });
}

function certPem(der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

export class KeylessSigner {
  private readonly key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  private readonly fulcio: FulcioSigner;
  private certificate?: string;
  readonly witnesses: Witness[];

  constructor(private readonly opts: KeylessOptions = {}) {
    const keyHolder: Signer = {
      sign: async (data: Buffer): Promise<Signature> => ({
        signature: crypto.sign('sha256', data, this.key.privateKey),
        key: { $case: 'publicKey', publicKey: this.key.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
      }),
    };
    this.fulcio = new FulcioSigner({
      identityProvider: opts.identityProvider ?? new CIContextProvider('sigstore'),
      fulcioBaseURL: opts.fulcioURL ?? DEFAULT_FULCIO_URL,
      keyHolder,
      timeout: opts.timeout,
    });
    this.witnesses = [new RekorWitness({ rekorBaseURL: opts.rekorURL ?? DEFAULT_REKOR_URL, timeout: opts.timeout })];
  }

  /** The Fulcio leaf certificate (PEM), after the first signature. */
  get certificatePem(): string | undefined {
    return this.certificate;
  }

  /** The certificate's subject alternative name (the signing identity), after the first signature. */
  get identity(): string | undefined {
    return this.certificate ? new crypto.X509Certificate(this.certificate).subjectAltName : undefined;
  }

  /** Obtains the Fulcio certificate now (one Fulcio request, nothing logged in Rekor). */
  async ensureCertificate(): Promise<string> {
    if (!this.certificate) await this.signer.sign(Buffer.from('keel: certificate request'));
    return this.certificate!;
  }

  /** A @sigstore/sign Signer: the first call obtains the certificate, later calls reuse it. */
  readonly signer: Signer = {
    sign: async (data: Buffer): Promise<Signature> => {
      if (!this.certificate) {
        let s: Signature;
        try {
          s = await this.fulcio.sign(data);
        } catch (e) {
          throw keylessError(e, this.opts.fulcioURL ?? DEFAULT_FULCIO_URL);
        }
        if (s.key.$case !== 'x509Certificate') throw new Error('Fulcio returned no certificate');
        this.certificate = s.key.certificate;
        return s;
      }
      return {
        signature: crypto.sign('sha256', data, this.key.privateKey),
        key: { $case: 'x509Certificate', certificate: this.certificate },
      };
    },
  };

  /**
   * Signs a simple-signing payload and returns the legacy layer annotations cosign writes for a
   * keyless signature: signature, certificate, and the Rekor SET bundle.
   */
  async legacyAnnotations(payload: Buffer): Promise<Record<string, string>> {
    const builder = new MessageSignatureBundleBuilder({ signer: this.signer, witnesses: this.witnesses });
    let json: SerializedBundle;
    try {
      json = bundleToJSON(await builder.create({ data: payload })) as SerializedBundle;
    } catch (e) {
      throw keylessError(e, this.opts.rekorURL ?? DEFAULT_REKOR_URL);
    }
    const sig = json.messageSignature?.signature;
    const raw =
      json.verificationMaterial?.certificate?.rawBytes ??
      json.verificationMaterial?.x509CertificateChain?.certificates[0]?.rawBytes;
    if (!sig || !raw) throw new Error('the keyless bundle lacks a signature or certificate');
    const out: Record<string, string> = {
      [ANNOTATION_SIGNATURE]: sig,
      [ANNOTATION_CERTIFICATE]: certPem(Buffer.from(raw, 'base64')),
    };
    const set = rekorSetAnnotation(json);
    if (set) out[ANNOTATION_BUNDLE] = set;
    return out;
  }
}

function keylessError(e: unknown, service: string): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = (e as { cause?: unknown })?.cause;
  const detail = cause instanceof Error ? `: ${cause.message}` : typeof cause === 'string' ? `: ${cause}` : '';
  if (/identity token/i.test(msg)) {
    return new UserError(
      `keyless signing needs an OIDC token: give the job 'permissions: id-token: write' (or set SIGSTORE_ID_TOKEN)${detail}`,
    );
  }
  return new UserError(`keyless signing failed against ${service}: ${msg}${detail}`);
}
