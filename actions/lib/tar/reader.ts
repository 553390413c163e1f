import { UserError } from '../errors.js';
import { UnsafePathError, unsafeEntryReason } from '../safe-path.js';

/**
 * A streaming tar reader for OCI layers: ustar and GNU headers, GNU long names/links, PAX
 * local and global headers, base-256 numbers. PAX values are kept as raw bytes, so binary
 * extended attributes (security.capability, security.selinux) survive exactly.
 *
 * Layers are hostile input, so this is where an archive's own validity is decided, for every
 * consumer at once: a number that does not parse as a finite non-negative integer (a PAX
 * `size=abc` would otherwise make the body parse as more headers, showing this reader entries
 * that GNU tar never sees) and an entry name or hardlink target that is absolute, has a `..`
 * component or a NUL byte are refused with the entry named. What depends on several entries
 * (a write through a symlink, across layers) is the layered index's to refuse.
 */
export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (may be fractional when PAX says so). */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes by name (SCHILY.xattr.* / LIBARCHIVE.xattr.*), raw bytes. */
  xattrs?: Map<string, Buffer>;
}

export interface TarEntry {
  header: TarHeader;
  /** The body, streamed; must be consumed before the next entry is requested, or it is skipped. */
  body(): AsyncIterable<Buffer>;
  buffer(): Promise<Buffer>;
}

/** An archive that cannot be read safely; `entry` names the member when one is known. */
export class TarFormatError extends UserError {
  constructor(
    readonly reason: string,
    readonly entry?: string,
  ) {
    super(entry === undefined ? reason : `entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'TarFormatError';
  }
}

const BLOCK = 512;

class ByteQueue {
  private chunks: Buffer[] = [];
  private len = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    if (b.length) {
      this.chunks.push(b);
      this.len += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or fewer at end of input. */
  async take(n: number): Promise<Buffer> {
    while (this.len < n && (await this.pull())) {
      /* keep pulling */
    }
    const want = Math.min(n, this.len);
    if (want === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= want) {
      const out = first.subarray(0, want);
      if (first.length === want) this.chunks.shift();
      else this.chunks[0] = first.subarray(want);
      this.len -= want;
      return out;
    }
    const out = Buffer.allocUnsafe(want);
    let off = 0;
    while (off < want) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, want - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.len -= want;
    return out;
  }

  /** Up to n bytes, whatever is available next (for streaming bodies without copies). */
  async takeSome(n: number): Promise<Buffer> {
    if (this.len === 0) await this.pull();
    if (this.len === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    const k = Math.min(first.length, n);
    const out = first.subarray(0, k);
    if (k === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(k);
    this.len -= k;
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const b = await this.takeSome(left);
      if (b.length === 0) throw new TarFormatError('unexpected end of archive inside an entry');
      left -= b.length;
    }
  }
}

function cstr(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

/**
 * A header number: octal text (spaces around, NUL-terminated; empty is 0) or GNU base-256.
 * NaN when the field is not a number or is negative (base-256 two's complement with the sign
 * bit set), so validation refuses it instead of reading on with a wrong size.
 */
function num(b: Buffer, start: number, len: number): number {
  const f = b.subarray(start, start + len);
  if (f[0]! & 0x80) {
    if (f[0]! & 0x40) return NaN; // negative
    let v = f[0]! & 0x3f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]*$/.test(s)) return NaN;
  return s ? parseInt(s, 8) : 0;
}

/** A PAX decimal integer; NaN for anything else (`abc`, `-5`, `1e3`, empty). */
function paxInt(s: string): number {
  return /^[0-9]+$/.test(s) ? Number(s) : NaN;
}

/** A PAX time: decimal seconds, optionally fractional; NaN when negative or not a number. */
function paxTime(s: string): number {
  return /^[0-9]+(\.[0-9]+)?$/.test(s) ? Number(s) : NaN;
}

function checksumOk(b: Buffer): boolean {
  const want = num(b, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === want;
}

/** Parses PAX records ("<len> <key>=<value>\n"), values as raw bytes. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = paxInt(buf.subarray(off, sp).toString('latin1'));
    if (!(len > sp - off + 1) || off + len > buf.length) throw new TarFormatError('corrupt PAX header');
    const rec = buf.subarray(sp + 1, off + len - 1); // drop trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Normalises an archive path: no leading "./" or "/", no trailing "/", "." for the root. */
export function normPath(p: string): string {
  let s = p.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  s = s.replace(/\/\.\//g, '/').replace(/\/{2,}/g, '/');
  return s === '' || s === '.' ? '.' : s;
}

/** PAX keys that hold numbers, and how each must parse. */
const PAX_NUMBERS: Record<
  string,
  { field: 'size' | 'uid' | 'gid' | 'mtime' | 'devmajor' | 'devminor'; time?: boolean }
> = {
  size: { field: 'size' },
  uid: { field: 'uid' },
  gid: { field: 'gid' },
  mtime: { field: 'mtime', time: true },
  'SCHILY.devmajor': { field: 'devmajor' },
  'SCHILY.devminor': { field: 'devminor' },
};

/** Applies PAX records to a header; records a problem for each number that does not parse. */
function applyPax(h: TarHeader, pax: Map<string, Buffer>, problems: string[]): void {
  for (const [k, v] of pax) {
    const s = v.toString('utf8');
    const numeric = PAX_NUMBERS[k];
    if (numeric) {
      const n = numeric.time ? paxTime(s) : paxInt(s);
      if (!Number.isSafeInteger(n) && !(numeric.time && Number.isFinite(n)))
        problems.push(`PAX ${k}=${JSON.stringify(s)} is not a non-negative ${numeric.time ? 'number' : 'integer'}`);
      h[numeric.field] = n;
    } else if (k === 'path') h.path = s;
    else if (k === 'linkpath') h.linkname = s;
    else if (k === 'uname') h.uname = s;
    else if (k === 'gname') h.gname = s;
    else if (k.startsWith('GNU.sparse.')) problems.push('GNU sparse entries are not supported');
    else if (k.startsWith('SCHILY.xattr.')) (h.xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), v);
    else if (k.startsWith('LIBARCHIVE.xattr.')) {
      let name: string;
      try {
        name = decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length));
      } catch {
        problems.push(`PAX ${JSON.stringify(k)} is not a valid xattr name`);
        continue;
      }
      (h.xattrs ??= new Map()).set(name, Buffer.from(s, 'base64'));
    }
  }
}

/** Header number fields: offset, length. */
const HEADER_NUMBERS = {
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  devmajor: [329, 8],
  devminor: [337, 8],
} as const;

/** A header number field, or a problem when it does not parse as a non-negative integer. */
function headerNumber(block: Buffer, field: keyof typeof HEADER_NUMBERS, problems: string[]): number {
  const [off, len] = HEADER_NUMBERS[field];
  const v = num(block, off, len);
  if (!Number.isSafeInteger(v)) {
    const raw = block
      .subarray(off, off + len)
      .toString('latin1')
      .replace(/\0+$/, '');
    problems.push(`header ${field} field ${JSON.stringify(raw)} is not a non-negative integer`);
  }
  return v;
}

/** What earlier meta headers (PAX, GNU long name/link) said about the next entry. */
interface Pending {
  globalPax: Map<string, Buffer>;
  localPax?: Map<string, Buffer>;
  longName?: string;
  longLink?: string;
}

/** The entry header a block describes, with its meta headers applied; refuses what is unsafe. */
function entryHeader(block: Buffer, type: EntryType, pending: Pending): TarHeader {
  const problems: string[] = [];
  let name = cstr(block, 0, 100);
  if (block.subarray(257, 263).toString('latin1') === 'ustar\0') {
    const prefix = cstr(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const h: TarHeader = {
    path: pending.longName ?? name,
    type,
    mode: headerNumber(block, 'mode', problems) & 0o7777,
    uid: headerNumber(block, 'uid', problems),
    gid: headerNumber(block, 'gid', problems),
    size: headerNumber(block, 'size', problems),
    mtime: headerNumber(block, 'mtime', problems),
    linkname: pending.longLink ?? cstr(block, 157, 100),
    uname: cstr(block, 265, 32),
    gname: cstr(block, 297, 32),
    devmajor: headerNumber(block, 'devmajor', problems),
    devminor: headerNumber(block, 'devminor', problems),
  };
  if (pending.globalPax.size) applyPax(h, pending.globalPax, problems);
  if (pending.localPax) applyPax(h, pending.localPax, problems);
  refuseUnsafeNames(h);
  if (problems.length) throw new TarFormatError([...new Set(problems)].join('; '), h.path);
  h.path = normPath(h.path);
  if (h.type === 'hardlink') h.linkname = normPath(h.linkname);
  return h;
}

/** Names checked as the archive spells them (normPath would hide a leading `/`). */
function refuseUnsafeNames(h: TarHeader): void {
  const reason = unsafeEntryReason(h.path);
  if (reason) throw new UnsafePathError(h.path, reason);
  if (h.type === 'hardlink') {
    const target = unsafeEntryReason(h.linkname);
    if (target) throw new UnsafePathError(h.path, `its hardlink target ${JSON.stringify(h.linkname)}: ${target}`);
  }
  if (h.linkname.includes('\0')) throw new UnsafePathError(h.path, 'its link target contains a NUL byte');
}

/** PAX and long-name headers are held in memory: larger ones are refused, not buffered. */
const MAX_META_BYTES = 16 * 1024 * 1024;

export async function* readTar(src: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const q = new ByteQueue(src[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  const pending: Pending = { globalPax: new Map() };
  for (;;) {
    const block = await q.take(BLOCK);
    if (block.length === 0) return; // end without the zero blocks: tolerated
    if (block.length < BLOCK) throw new TarFormatError('truncated tar header');
    if (block.every((x) => x === 0)) return;
    if (!checksumOk(block)) throw new TarFormatError('tar header checksum mismatch (corrupt or not a tar)');
    const flag = String.fromCharCode(block[156]!);
    const size = num(block, 124, 12);
    if (!Number.isSafeInteger(size))
      throw new TarFormatError('header size field is not a non-negative integer', cstr(block, 0, 100));
    const padded = Math.ceil(size / BLOCK) * BLOCK;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META_BYTES)
        throw new TarFormatError(`a ${size}-byte meta header (type ${flag}) exceeds ${MAX_META_BYTES} bytes`);
      const body = await q.take(size);
      if (body.length < size) throw new TarFormatError('unexpected end of archive inside a meta header');
      await q.skip(padded - size);
      if (flag === 'x') pending.localPax = parsePax(body);
      else if (flag === 'g') pending.globalPax = new Map([...pending.globalPax, ...parsePax(body)]);
      else {
        const z = body.indexOf(0);
        const s = (z >= 0 ? body.subarray(0, z) : body).toString('utf8');
        if (flag === 'L') pending.longName = s;
        else pending.longLink = s;
      }
      continue;
    }

    if (flag === 'S') throw new TarFormatError('GNU sparse entries are not supported', cstr(block, 0, 100));
    const type = TYPES[flag];
    const h = entryHeader(block, type ?? 'file', pending);
    pending.localPax = undefined;
    pending.longName = undefined;
    pending.longLink = undefined;
    // The wire size (PAX size included, as GNU tar reads it) decides what follows the header.
    const bodySize = h.size;
    const bodyPadding = Math.ceil(bodySize / BLOCK) * BLOCK - bodySize;
    if (type === undefined) {
      // Unknown entry kinds (volume headers, GNU dumpdirs): skip them entirely.
      await q.skip(bodySize + bodyPadding);
      continue;
    }
    // Only regular files carry content.
    if (h.type !== 'file') h.size = 0;

    let consumed = 0;
    let streaming = false;
    const entry: TarEntry = {
      header: h,
      body: () => {
        if (streaming) throw new Error('tar entry body can be read once');
        streaming = true;
        return {
          async *[Symbol.asyncIterator]() {
            while (consumed < bodySize) {
              const b = await q.takeSome(Math.min(bodySize - consumed, 1 << 20));
              if (b.length === 0) throw new TarFormatError(`unexpected end of archive in ${h.path}`);
              consumed += b.length;
              yield b;
            }
          },
        };
      },
      buffer: async () => {
        const parts: Buffer[] = [];
        for await (const b of entry.body()) parts.push(b);
        return Buffer.concat(parts);
      },
    };
    yield entry;
    await q.skip(bodySize - consumed + bodyPadding);
  }
}
