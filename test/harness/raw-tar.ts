/**
 * A raw tar writer for hostile-layer tests: writes exactly what it is told, including what a
 * well-behaved writer never would (absolute and `..` names, numbers that do not parse, PAX
 * records with any value), so the refusals are tested against bytes built here, not checked-in
 * binaries. Only the header checksum is always right (a wrong one is refused before anything
 * else is looked at).
 */
export interface RawEntry {
  /** The header's name field (at most 100 bytes; longer names go in `pax.path`). */
  name: string;
  /** Type flag: '0' file (default), '1' hardlink, '2' symlink, '5' directory, ... */
  type?: string;
  linkname?: string;
  body?: string | Buffer;
  /** Numeric header fields: a number is written as octal, a string as the raw field text. */
  mode?: number | string;
  uid?: number | string;
  gid?: number | string;
  /** The header's size field; the body's length when absent. */
  size?: number | string;
  mtime?: number | string;
  devmajor?: number | string;
  devminor?: number | string;
  /** Records of a PAX header written before this entry, values verbatim. */
  pax?: Record<string, string>;
}

const BLOCK = 512;

function field(b: Buffer, off: number, len: number, v: number | string): void {
  const text = typeof v === 'number' ? v.toString(8).padStart(len - 1, '0') : v;
  b.write(text, off, len, 'latin1');
}

function header(e: RawEntry, size: number | string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(e.name, 0, 100, 'utf8');
  field(b, 100, 8, e.mode ?? (e.type === '5' ? 0o755 : 0o644));
  field(b, 108, 8, e.uid ?? 0);
  field(b, 116, 8, e.gid ?? 0);
  field(b, 124, 12, size);
  field(b, 136, 12, e.mtime ?? 0);
  b.write(e.type ?? '0', 156, 1, 'latin1');
  b.write(e.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  field(b, 329, 8, e.devmajor ?? 0);
  field(b, 337, 8, e.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return b;
}

function padded(body: Buffer): Buffer[] {
  return [body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK)];
}

function paxRecords(records: Record<string, string>): Buffer {
  return Buffer.concat(
    Object.entries(records).map(([k, v]) => {
      const rest = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(rest) + 1;
      while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
      return Buffer.from(`${len}${rest}`);
    }),
  );
}

/** An archive of `entries`, ending with the two zero blocks. */
export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const body = paxRecords(e.pax);
      parts.push(header({ name: 'PaxHeaders/entry', type: 'x' }, body.length), ...padded(body));
    }
    const body = Buffer.from(e.body ?? '');
    parts.push(header(e, e.size ?? body.length), ...padded(body));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
