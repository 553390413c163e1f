import crypto from 'node:crypto';

/**
 * A bencode decoder and the few torrent facts the freshness check needs: the info-hash
 * (SHA-1 of the exact `info` bytes, as IA's MDAPI `btih`) and the file list with lengths.
 */
export type BValue = number | Buffer | BValue[] | { [key: string]: BValue };

export class BencodeError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`bencode: ${message} at byte ${offset}`);
    this.name = 'BencodeError';
  }
}

interface Decoded {
  value: BValue;
  /** Byte spans of the top-level dictionary's values, by key (for the info-hash). */
  spans: Map<string, [number, number]>;
}

/** Decodes one bencoded value that must span the whole buffer. */
export function bdecode(buf: Buffer): Decoded {
  const spans = new Map<string, [number, number]>();
  let pos = 0;
  const MAX_DEPTH = 64;

  const readInt = (end: number): number => {
    const s = buf.toString('latin1', pos, end);
    if (!/^(0|-?[1-9]\d*)$/.test(s)) throw new BencodeError(`invalid integer ${JSON.stringify(s)}`, pos);
    const n = Number(s);
    if (!Number.isSafeInteger(n)) throw new BencodeError(`integer ${s} out of range`, pos);
    return n;
  };

  const value = (depth: number): BValue => {
    if (depth > MAX_DEPTH) throw new BencodeError('nesting too deep', pos);
    const c = buf[pos];
    if (c === undefined) throw new BencodeError('unexpected end', pos);
    if (c === 0x69 /* i */) {
      const end = buf.indexOf(0x65 /* e */, pos + 1);
      if (end < 0) throw new BencodeError('unterminated integer', pos);
      pos++;
      const n = readInt(end);
      pos = end + 1;
      return n;
    }
    if (c === 0x6c /* l */) {
      pos++;
      const out: BValue[] = [];
      while (buf[pos] !== 0x65) {
        if (pos >= buf.length) throw new BencodeError('unterminated list', pos);
        out.push(value(depth + 1));
      }
      pos++;
      return out;
    }
    if (c === 0x64 /* d */) {
      pos++;
      const out: { [key: string]: BValue } = {};
      while (buf[pos] !== 0x65) {
        if (pos >= buf.length) throw new BencodeError('unterminated dictionary', pos);
        const k = value(depth + 1);
        if (!Buffer.isBuffer(k)) throw new BencodeError('dictionary key is not a string', pos);
        const key = k.toString('utf8');
        const start = pos;
        out[key] = value(depth + 1);
        if (depth === 0) spans.set(key, [start, pos]);
      }
      pos++;
      return out;
    }
    if (c >= 0x30 && c <= 0x39) {
      const colon = buf.indexOf(0x3a /* : */, pos);
      if (colon < 0) throw new BencodeError('string without length', pos);
      const len = readInt(colon);
      const start = colon + 1;
      if (len < 0 || start + len > buf.length) throw new BencodeError('string runs past the end', pos);
      pos = start + len;
      return buf.subarray(start, start + len);
    }
    throw new BencodeError(`unexpected byte 0x${c.toString(16)}`, pos);
  };

  const v = value(0);
  if (pos !== buf.length) throw new BencodeError('trailing bytes', pos);
  return { value: v, spans };
}

export interface TorrentFile {
  /** Path inside the torrent, segments joined with '/'. */
  path: string;
  length: number;
}

export interface TorrentSummary {
  /** SHA-1 of the bencoded `info` dictionary, hex (IA's `btih`). */
  infoHash: string;
  name: string;
  files: TorrentFile[];
}

const str = (v: BValue | undefined): string | undefined => (Buffer.isBuffer(v) ? v.toString('utf8') : undefined);
const isDict = (v: BValue | undefined): v is { [key: string]: BValue } =>
  typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !Array.isArray(v);

/** Parses a .torrent: info-hash, name and file list (multi-file or single-file form). */
export function parseTorrent(buf: Buffer): TorrentSummary {
  const { value, spans } = bdecode(buf);
  if (!isDict(value) || !isDict(value.info)) throw new BencodeError('not a torrent (no info dictionary)', 0);
  const info = value.info;
  const span = spans.get('info')!;
  const infoHash = crypto.createHash('sha1').update(buf.subarray(span[0], span[1])).digest('hex');
  const name = str(info['name.utf-8']) ?? str(info.name) ?? '';
  const files: TorrentFile[] = [];
  if (Array.isArray(info.files)) {
    for (const f of info.files) {
      if (!isDict(f)) continue;
      const segs = (Array.isArray(f['path.utf-8']) ? f['path.utf-8'] : Array.isArray(f.path) ? f.path : []).map(
        (s) => str(s) ?? '',
      );
      if (typeof f.length === 'number') files.push({ path: segs.join('/'), length: f.length });
    }
  } else if (typeof info.length === 'number') {
    files.push({ path: name, length: info.length });
  }
  return { infoHash, name, files };
}
