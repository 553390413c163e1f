/**
 * A streaming tar reader for OCI layers: ustar and GNU headers, GNU long names/links, PAX
 * local and global headers, base-256 numbers. PAX values are kept as raw bytes, so binary
 * extended attributes (security.capability, security.selinux) survive exactly.
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

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
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

function num(b: Buffer, start: number, len: number): number {
  const f = b.subarray(start, start + len);
  if (f[0]! & 0x80) {
    // base-256 (GNU): big-endian two's complement, top bit is the marker
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
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
    const len = parseInt(buf.subarray(off, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > buf.length) throw new TarFormatError('corrupt PAX header');
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

function applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
  for (const [k, v] of pax) {
    const s = () => v.toString('utf8');
    switch (k) {
      case 'path':
        h.path = s();
        break;
      case 'linkpath':
        h.linkname = s();
        break;
      case 'size':
        h.size = Number(s());
        break;
      case 'uid':
        h.uid = Number(s());
        break;
      case 'gid':
        h.gid = Number(s());
        break;
      case 'uname':
        h.uname = s();
        break;
      case 'gname':
        h.gname = s();
        break;
      case 'mtime':
        h.mtime = Number(s());
        break;
      case 'SCHILY.devmajor':
        h.devmajor = Number(s());
        break;
      case 'SCHILY.devminor':
        h.devminor = Number(s());
        break;
      default:
        if (k.startsWith('SCHILY.xattr.')) {
          (h.xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), v);
        } else if (k.startsWith('LIBARCHIVE.xattr.')) {
          (h.xattrs ??= new Map()).set(
            decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)),
            Buffer.from(s(), 'base64'),
          );
        }
    }
  }
}

export async function* readTar(src: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const q = new ByteQueue(src[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  let globalPax = new Map<string, Buffer>();
  let localPax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await q.take(BLOCK);
    if (block.length === 0) return; // end without the zero blocks: tolerated
    if (block.length < BLOCK) throw new TarFormatError('truncated tar header');
    if (block.every((x) => x === 0)) return;
    if (!checksumOk(block)) throw new TarFormatError('tar header checksum mismatch (corrupt or not a tar)');
    const flag = String.fromCharCode(block[156]!);
    const magic = block.subarray(257, 263).toString('latin1');
    const isUstar = magic === 'ustar\0';
    const size = num(block, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const body = await q.take(size);
      await q.skip(padded - size);
      if (flag === 'x') localPax = parsePax(body);
      else if (flag === 'g') globalPax = new Map([...globalPax, ...parsePax(body)]);
      else {
        const z = body.indexOf(0);
        const s = (z >= 0 ? body.subarray(0, z) : body).toString('utf8');
        if (flag === 'L') longName = s;
        else longLink = s;
      }
      continue;
    }

    let name = cstr(block, 0, 100);
    if (isUstar) {
      const prefix = cstr(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const type = TYPES[flag];
    const h: TarHeader = {
      path: longName ?? name,
      type: type ?? 'file',
      mode: num(block, 100, 8) & 0o7777,
      uid: num(block, 108, 8),
      gid: num(block, 116, 8),
      size,
      mtime: num(block, 136, 12),
      linkname: longLink ?? cstr(block, 157, 100),
      uname: cstr(block, 265, 32),
      gname: cstr(block, 297, 32),
      devmajor: num(block, 329, 8),
      devminor: num(block, 337, 8),
    };
    if (globalPax.size) applyPax(h, globalPax);
    if (localPax) applyPax(h, localPax);
    localPax = undefined;
    longName = undefined;
    longLink = undefined;
    h.path = normPath(h.path);
    if (h.type === 'hardlink') h.linkname = normPath(h.linkname);
    // The wire size decides what follows the header; only regular files carry content.
    const bodySize = h.size;
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
    if (type === undefined) {
      // Unknown entry kinds (GNU sparse, volume headers): skip them entirely.
      await q.skip(padded);
      continue;
    }
    yield entry;
    await q.skip(bodySize - consumed + (Math.ceil(bodySize / BLOCK) * BLOCK - bodySize));
  }
}
