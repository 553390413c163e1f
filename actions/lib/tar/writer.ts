import type { EntryType, TarHeader } from './reader.js';

/**
 * A deterministic tar writer: ustar headers, PAX records for anything that does not fit
 * (long paths and link targets, large numbers, extended attributes as raw bytes), fixed PAX
 * header names, no user/group names, sorted xattrs. Same entries in, same bytes out.
 */
export interface WriteEntry {
  header: Pick<TarHeader, 'path' | 'type' | 'mode' | 'uid' | 'gid' | 'mtime' | 'linkname' | 'devmajor' | 'devminor'> & {
    size?: number;
    xattrs?: Map<string, Buffer>;
  };
  /** Content of a regular file: exactly header.size bytes. */
  body?: Buffer | AsyncIterable<Buffer>;
}

const BLOCK = 512;
const FLAG: Record<EntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(buf: Buffer, off: number, len: number, v: number): void {
  const s = Math.floor(v)
    .toString(8)
    .padStart(len - 1, '0');
  buf.write(s, off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

function header(
  name: string,
  flag: string,
  h: {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    mtime: number;
    linkname: string;
    devmajor: number;
    devminor: number;
  },
): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.write('        ', 148, 8, 'latin1');
  b.write(flag, 156, 1, 'latin1');
  b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\u0000', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  octal(b, 329, 8, h.devmajor);
  octal(b, 337, 8, h.devminor);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

/** Encodes one entry (header blocks + body + padding). */
export async function* encodeEntry(e: WriteEntry): AsyncGenerator<Buffer> {
  const h = e.header;
  const size = h.type === 'file' ? (h.size ?? 0) : 0;
  let name = h.path === '.' ? './' : h.path;
  if (h.type === 'dir' && !name.endsWith('/')) name += '/';
  const pax: Buffer[] = [];
  const nameFits = Buffer.byteLength(name) <= 100 && /^[\x20-\x7e]*$/.test(name);
  if (!nameFits) pax.push(paxRecord('path', Buffer.from(name)));
  const link = h.linkname ?? '';
  if (Buffer.byteLength(link) > 100 || !/^[\x20-\x7e]*$/.test(link)) pax.push(paxRecord('linkpath', Buffer.from(link)));
  if (size > MAX_OCTAL_12) pax.push(paxRecord('size', Buffer.from(String(size))));
  if (h.uid > MAX_OCTAL_8) pax.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL_8) pax.push(paxRecord('gid', Buffer.from(String(h.gid))));
  for (const k of [...(h.xattrs?.keys() ?? [])].sort()) pax.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs!.get(k)!));
  const mtime = Math.max(0, Math.floor(h.mtime));
  const fields = {
    mode: h.mode & 0o7777,
    uid: h.uid > MAX_OCTAL_8 ? 0 : h.uid,
    gid: h.gid > MAX_OCTAL_8 ? 0 : h.gid,
    size: size > MAX_OCTAL_12 ? 0 : size,
    mtime,
    linkname: Buffer.byteLength(link) > 100 ? '' : link,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  };
  if (pax.length) {
    const body = Buffer.concat(pax);
    const base = name.replace(/\/$/, '').split('/').pop() ?? 'x';
    const paxName = `PaxHeaders/${base}`.slice(0, 99);
    yield header(paxName, 'x', {
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: body.length,
      mtime,
      linkname: '',
      devmajor: 0,
      devminor: 0,
    });
    yield body;
    yield pad(body.length);
  }
  yield header(nameFits ? name : name.slice(0, 99), FLAG[h.type], fields);
  if (size > 0) {
    let n = 0;
    if (Buffer.isBuffer(e.body)) {
      n = e.body.length;
      yield e.body;
    } else if (e.body) {
      for await (const c of e.body) {
        n += c.length;
        yield c;
      }
    }
    if (n !== size) throw new Error(`tar writer: ${h.path} declared ${size} bytes but got ${n}`);
    yield pad(size);
  }
}

/** Encodes a whole archive, ending with the two zero blocks. */
export async function* writeTar(entries: AsyncIterable<WriteEntry> | Iterable<WriteEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) yield* encodeEntry(e);
  yield Buffer.alloc(BLOCK * 2);
}
