import fs from 'node:fs';
import { z } from 'zod';
import { InputError } from './errors.js';
import { HOST_PORT, httpsUnlessLoopbackProblem } from './transport.js';
import type { ActionIO } from './io.js';
import {
  parseDigestReference,
  parseReference,
  parseRepository,
  InvalidReferenceError,
  type ImageReference,
} from './oci/reference.js';

/**
 * Input definitions: every action declares its inputs as a record of `InputDef`s, each a zod
 * schema from the raw string to a typed value. `readInputs` masks secrets first, then parses
 * everything before the action does anything, and fails with one message naming the input,
 * its value (unless secret) and what was expected.
 */
export interface InputDef<T> {
  schema: z.ZodType<T, string>;
  /** Shown after "expected" when the schema's own message is not enough. */
  expected: string;
  secret?: boolean;
  /** Not secret, but not repeated in error messages either (a multi-line PEM, say). */
  quiet?: boolean;
  required?: boolean;
  /** The default as written in action.yml (checked against it by a repo test). */
  default?: string;
}

type Parsed<D> = { [K in keyof D]: D[K] extends InputDef<infer T> ? T : never };

export function readInputs<D extends Record<string, InputDef<unknown>>>(
  io: Pick<ActionIO, 'getInput' | 'setSecret'>,
  defs: D,
): Parsed<D> {
  const raw: Record<string, string> = {};
  for (const [name, def] of Object.entries(defs)) {
    raw[name] = io.getInput(name);
    if (def.secret && raw[name]) io.setSecret(raw[name]);
  }
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(defs)) {
    let value = raw[name] ?? '';
    if (value === '' && def.default !== undefined) value = def.default;
    if (value === '' && def.required) throw new InputError(name, undefined, `it is required: expected ${def.expected}`);
    const r = def.schema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      const custom = issue?.code === 'custom' && issue.message;
      throw new InputError(name, def.secret || def.quiet ? undefined : value, custom || `expected ${def.expected}`);
    }
    out[name] = r.data;
  }
  return out as Parsed<D>;
}

const def = <T>(schema: z.ZodType<T, string>, expected: string, extra: Partial<InputDef<T>> = {}): InputDef<T> => ({
  schema,
  expected,
  ...extra,
});

/** Any string (trimmed). */
export function str(opts: { required?: boolean; default?: string; expected?: string; pattern?: RegExp } = {}) {
  let s = z.string().transform((v) => v.trim());
  if (opts.pattern) {
    const p = opts.pattern;
    s = s.refine((v) => v === '' || p.test(v), {
      message: `expected ${opts.expected ?? `a value matching ${p}`}`,
    }) as typeof s;
  }
  return def<string>(s, opts.expected ?? 'a string', { required: opts.required, default: opts.default });
}

export function secret(opts: { required?: boolean } = {}) {
  return def<string>(z.string(), 'a secret value', { secret: true, required: opts.required });
}

const TRUE = ['true', 'True', 'TRUE'];
const FALSE = ['false', 'False', 'FALSE'];
export function bool(dflt: boolean) {
  return def<boolean>(
    z
      .string()
      .refine((v) => TRUE.includes(v.trim()) || FALSE.includes(v.trim()), { message: 'expected true or false' })
      .transform((v) => TRUE.includes(v.trim())),
    'true or false',
    { default: String(dflt) },
  );
}

export function int(opts: { default?: number; min?: number; max?: number; required?: boolean }) {
  const lo = opts.min ?? Number.MIN_SAFE_INTEGER;
  const hi = opts.max ?? Number.MAX_SAFE_INTEGER;
  const expected = `an integer${opts.min !== undefined ? ` >= ${opts.min}` : ''}${opts.max !== undefined ? ` <= ${opts.max}` : ''}`;
  return def<number>(
    z
      .string()
      .refine((v) => /^-?\d+$/.test(v.trim()) && Number(v) >= lo && Number(v) <= hi, {
        message: `expected ${expected}`,
      })
      .transform((v) => Number(v.trim())),
    expected,
    { default: opts.default === undefined ? undefined : String(opts.default), required: opts.required },
  );
}

/** A positive decimal number (e.g. megabytes). */
export function positiveNumber(opts: { default?: number; expected?: string } = {}) {
  const expected = opts.expected ?? 'a positive number';
  return def<number>(
    z
      .string()
      .refine((v) => /^\d+(\.\d+)?$/.test(v.trim()) && Number(v) > 0, { message: `expected ${expected}` })
      .transform((v) => Number(v.trim())),
    expected,
    { default: opts.default === undefined ? undefined : String(opts.default) },
  );
}

/** An optional integer: empty → undefined. */
export function optionalInt(opts: { min?: number; max?: number } = {}) {
  const base = int(opts);
  return def<number | undefined>(
    z.string().transform((v, ctx) => {
      if (v.trim() === '') return undefined;
      const r = base.schema.safeParse(v);
      if (!r.success) {
        ctx.addIssue({ code: 'custom', message: `expected ${base.expected}` });
        return z.NEVER;
      }
      return r.data;
    }),
    base.expected,
  );
}

export function oneOf<const T extends readonly string[]>(values: T, dflt?: T[number]) {
  const expected = `one of: ${values.join(', ')}`;
  return def<T[number]>(
    z
      .string()
      .transform((v) => v.trim())
      .refine((v) => (values as readonly string[]).includes(v), {
        message: `expected ${expected}`,
      }) as unknown as z.ZodType<T[number], string>,
    expected,
    { default: dflt },
  );
}

/** Splits a list input: newline-separated, blank lines and `#` comments ignored. */
export function splitList(v: string): string[] {
  return v
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export function list(opts: { item?: (s: string) => string | undefined; expected?: string; default?: string } = {}) {
  const expected = opts.expected ?? 'a newline-separated list';
  return def<string[]>(
    z.string().transform((v, ctx) => {
      const items = splitList(v);
      for (const it of items) {
        const problem = opts.item?.(it);
        if (problem) {
          ctx.addIssue({ code: 'custom', message: `item ${JSON.stringify(it)}: ${problem}` });
          return z.NEVER;
        }
      }
      return items;
    }),
    expected,
    { default: opts.default },
  );
}

/** `key=value` (or `key:value` with sep ':') lines into an ordered record. */
export function keyValues(sep: '=' | ':' = '=', expected = `newline-separated key${sep}value lines`) {
  return def<Record<string, string>>(
    z.string().transform((v, ctx) => {
      const out: Record<string, string> = {};
      for (const line of splitList(v)) {
        const i = line.indexOf(sep);
        if (i <= 0) {
          ctx.addIssue({ code: 'custom', message: `expected ${expected}; ${JSON.stringify(line)} has no '${sep}'` });
          return z.NEVER;
        }
        out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      return out;
    }),
    expected,
  );
}

function refSchema(parse: (s: string) => ImageReference, expected: string, required: boolean) {
  return def<ImageReference>(
    z.string().transform((v, ctx) => {
      try {
        return parse(v.trim());
      } catch (e) {
        ctx.addIssue({
          code: 'custom',
          message:
            e instanceof InvalidReferenceError ? `not a valid image reference: ${e.reason}` : `expected ${expected}`,
        });
        return z.NEVER;
      }
    }),
    expected,
    { required },
  );
}

/** `registry/repo:tag` or `registry/repo@sha256:…`. */
export const imageRef = (required = true) =>
  refSchema((s) => parseReference(s), 'an image reference registry/repo:tag or registry/repo@sha256:<hex>', required);

/** Only `registry/repo@sha256:…`: a tag is refused with the reason. */
export const digestRef = (why?: string) =>
  refSchema((s) => parseDigestReference(s, why), 'a digest reference registry/repo@sha256:<64 hex>', true);

/** An optional digest reference: empty → undefined (a tag is refused with the reason). */
export function optionalDigestRef(why?: string) {
  const base = digestRef(why);
  return def<ImageReference | undefined>(
    z.string().transform((v, ctx) => {
      if (v.trim() === '') return undefined;
      const r = base.schema.safeParse(v);
      if (!r.success) {
        ctx.addIssue({ code: 'custom', message: r.error.issues[0]?.message ?? `expected ${base.expected}` });
        return z.NEVER;
      }
      return r.data;
    }),
    base.expected,
  );
}

/** `registry/repo` without tag or digest. */
export const repository = (required = true) =>
  refSchema(parseRepository, 'a repository registry/name without tag or digest', required);

/** An optional reference: empty → undefined. */
export function optionalImageRef() {
  const base = imageRef(false);
  return def<ImageReference | undefined>(
    z.string().transform((v, ctx) => {
      if (v.trim() === '') return undefined;
      const r = base.schema.safeParse(v);
      if (!r.success) {
        ctx.addIssue({ code: 'custom', message: r.error.issues[0]?.message ?? `expected ${base.expected}` });
        return z.NEVER;
      }
      return r.data;
    }),
    base.expected,
  );
}

/** UTC `YYYYMMDD` that is a real calendar date; empty → undefined (the caller computes today once). */
export function releaseDate() {
  return def<string | undefined>(
    z.string().transform((v, ctx) => {
      const s = v.trim();
      if (s === '') return undefined;
      if (!isValidYmd(s)) {
        ctx.addIssue({ code: 'custom', message: 'expected a UTC date YYYYMMDD (a real calendar day)' });
        return z.NEVER;
      }
      return s;
    }),
    'a UTC date YYYYMMDD',
  );
}

export function isValidYmd(s: string): boolean {
  if (!/^\d{8}$/.test(s)) return false;
  const y = Number(s.slice(0, 4));
  const m = Number(s.slice(4, 6));
  const d = Number(s.slice(6, 8));
  const dt = new Date(Date.UTC(y, m - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === m - 1 && dt.getUTCDate() === d && y >= 2000;
}

/** A path that must exist (file or directory as asked). */
export function existingPath(
  kind: 'file' | 'dir' | 'any' = 'any',
  opts: { required?: boolean; default?: string } = {},
) {
  const expected = `an existing ${kind === 'any' ? 'path' : kind === 'dir' ? 'directory' : 'file'}`;
  return def<string>(
    z.string().transform((v, ctx) => {
      const p = v.trim();
      if (p === '' && !opts.required) return '';
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(p);
      } catch {
        st = undefined;
      }
      if (!st || (kind === 'file' && !st.isFile()) || (kind === 'dir' && !st.isDirectory())) {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
        return z.NEVER;
      }
      return p;
    }),
    expected,
    opts,
  );
}

/**
 * A URL of a service that receives credentials (s3-endpoint, api-url, fulcio-url, …): https, or
 * http to a loopback host (a local emulator); no query or fragment. `path: 'none'` allows at
 * most a trailing slash.
 */
export function httpsUrl(opts: {
  default?: string;
  path?: 'none' | 'allowed';
  expected: string;
  required?: boolean;
  /** Mask the value (an ntfy topic URL is its own password). */
  secret?: boolean;
}) {
  return def<string>(
    z.string().transform((v, ctx) => {
      const url = v.trim();
      if (url === '') return '';
      const shape = opts.path === 'none' ? /^[a-z]+:\/\/[^/?#\s]+\/?$/i : /^[a-z]+:\/\/[^/?#\s]+(\/[^?#\s]*)?$/i;
      const problem =
        httpsUnlessLoopbackProblem(url) ??
        (shape.test(url) ? undefined : `no ${opts.path === 'none' ? 'path, ' : ''}query or fragment allowed`);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: `${problem}: expected ${opts.expected}` });
        return z.NEVER;
      }
      return url;
    }),
    opts.expected,
    { default: opts.default, required: opts.required, secret: opts.secret },
  );
}

/** The registry access inputs every registry-facing action shares (contract: actions.md, actions-2.md). */
export const registryInputs = {
  username: str({ expected: 'a registry user name' }),
  password: secret(),
  'tls-verify': bool(true),
  'insecure-registries': list({
    item: (s) => (HOST_PORT.test(s) ? undefined : 'expected host[:port] (no scheme, no path)'),
    expected: 'newline-separated host[:port] lines',
  }),
};

/** GiB a hop keeps free on top of its estimated disk need, or `off` (no space check). */
export function spaceMargin() {
  const expected = 'a number of GiB (e.g. 1 or 0.5) kept free on top of the estimated need, or off';
  return def<number | 'off'>(
    z.string().transform((v, ctx) => {
      const s = v.trim();
      if (s === 'off') return 'off' as const;
      if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
      ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
      return z.NEVER;
    }),
    expected,
    { default: '1' },
  );
}

/** The disk space input every hop that writes gigabytes shares (see lib/disk-space.ts). */
export const spaceInputs = { 'space-margin-gib': spaceMargin() };
