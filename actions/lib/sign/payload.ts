/**
 * The "simple signing" payload cosign signs and containers/image checks (reference/signing.md §1.1):
 *
 *   {"critical":{"identity":{"docker-reference":REF},"image":{"docker-manifest-digest":DIGEST},
 *                "type":"cosign container image signature"},"optional":null}
 *
 * `parsePayload` applies containers/image's rules exactly (signature/internal/sigstore_payload.go,
 * strictUnmarshalJSON + ParanoidUnmarshalJSONObjectExactFields): top level exactly
 * critical/optional (both present), critical exactly type/image/identity, image exactly
 * docker-manifest-digest, identity exactly docker-reference, string values, the type string,
 * optional null or an object whose creator is a string and timestamp an integer, and no
 * duplicate keys anywhere (a payload two parsers would read differently is refused).
 */

export const SIGNATURE_TYPE = 'cosign container image signature';
export const MT_SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';

export interface SimpleSigningPayload {
  dockerReference: string;
  digest: string;
  optional: Record<string, unknown> | null;
}

/**
 * The payload bytes for one signature. `optional` defaults to null (what cosign writes): the
 * bytes are then a pure function of (reference, digest), which is what makes re-signing
 * detectable and therefore idempotent.
 */
export function buildPayload(
  dockerReference: string,
  digest: string,
  optional: Record<string, unknown> | null = null,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: SIGNATURE_TYPE,
      },
      optional,
    }),
  );
}

export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}

/** Parses and checks a payload by containers/image's rules; throws PayloadError with its wording. */
export function parsePayload(bytes: Buffer | string): SimpleSigningPayload {
  const root = strictJson(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  const top = exactFields(root, ['critical', 'optional']);
  let optional: Record<string, unknown> | null = null;
  if (top.optional !== null) {
    optional = asObject(top.optional);
    if ('creator' in optional && typeof optional.creator !== 'string')
      throw new PayloadError('Field optional.creator is not a string');
    if ('timestamp' in optional) {
      const t = optional.timestamp;
      if (typeof t !== 'number') throw new PayloadError('Field optional.timestamp is not a number');
      if (!Number.isInteger(t)) throw new PayloadError('Field optional.timestamp is not an integer');
    }
  }
  const critical = exactFields(top.critical, ['type', 'image', 'identity']);
  if (typeof critical.type !== 'string') throw new PayloadError('Field critical.type is not a string');
  if (critical.type !== SIGNATURE_TYPE) throw new PayloadError(`Unrecognized signature type ${critical.type}`);
  const image = exactFields(critical.image, ['docker-manifest-digest']);
  const digest = image['docker-manifest-digest'];
  if (typeof digest !== 'string') throw new PayloadError('Field docker-manifest-digest is not a string');
  const identity = exactFields(critical.identity, ['docker-reference']);
  const ref = identity['docker-reference'];
  if (typeof ref !== 'string') throw new PayloadError('Field docker-reference is not a string');
  return { dockerReference: ref, digest, optional };
}

function asObject(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new PayloadError('JSON object expected');
  return v as Record<string, unknown>;
}

function exactFields(v: unknown, fields: string[]): Record<string, unknown> {
  const o = asObject(v);
  for (const k of Object.keys(o)) if (!fields.includes(k)) throw new PayloadError(`Unknown key "${k}"`);
  for (const f of fields) if (!(f in o)) throw new PayloadError(`Key "${f}" missing in a JSON object`);
  return o;
}

/**
 * JSON.parse, but duplicate object keys are an error (Go's paranoid parser refuses them; JSON.parse
 * would silently keep the last one). Objects are built with a null prototype.
 */
export function strictJson(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new PayloadError(`invalid JSON at offset ${i}: ${what}`);
  };
  const str = (): string => {
    const start = i;
    if (text[i] !== '"') fail('expected a string');
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('bad string');
    }
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        const k = str();
        if (seen.has(k)) throw new PayloadError(`Duplicate key "${k}"`);
        seen.add(k);
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        o[k] = value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return o;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return a;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    return JSON.parse(m[0]) as unknown;
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing data');
  return v;
}
