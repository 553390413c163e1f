import { Readable } from 'node:stream';
import { decompress, sniffCompression } from './compress.js';

/**
 * Reads an initramfs the way the kernel does: a sequence of newc cpio archives, some
 * uncompressed (early microcode), the main one usually compressed (zstd, gzip, xz, lz4),
 * separated by zero padding. Returns every member path and how the image is built.
 */
export interface InitramfsListing {
  segments: { compression: string; entries: number }[];
  files: Set<string>;
}

export class InitramfsError extends Error {}

const MAGIC = new Set(['070701', '070702']);

function parseCpio(buf: Buffer, start: number, files: Set<string>): { end: number; entries: number } {
  let off = start;
  let entries = 0;
  for (;;) {
    if (off + 110 > buf.length) throw new InitramfsError(`truncated cpio header at offset ${off}`);
    const magic = buf.toString('latin1', off, off + 6);
    if (!MAGIC.has(magic)) throw new InitramfsError(`bad cpio magic ${JSON.stringify(magic)} at offset ${off}`);
    const field = (i: number) => parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = (nameStart + nameSize + 3) & ~3;
    const next = (dataStart + fileSize + 3) & ~3;
    if (next > buf.length + 3) throw new InitramfsError(`cpio member ${name} runs past the end`);
    if (name === 'TRAILER!!!') return { end: Math.min(next, buf.length), entries };
    files.add(name.replace(/^\.?\//, ''));
    entries++;
    off = next;
  }
}

async function toBuffer(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function listInitramfs(buf: Buffer): Promise<InitramfsListing> {
  const out: InitramfsListing = { segments: [], files: new Set() };
  const walk = async (b: Buffer, depth: number): Promise<void> => {
    let off = 0;
    while (off < b.length) {
      while (off < b.length && b[off] === 0) off++;
      if (off >= b.length) break;
      if (MAGIC.has(b.toString('latin1', off, off + 6))) {
        const r = parseCpio(b, off, out.files);
        out.segments.push({ compression: depth === 0 ? 'none' : 'nested', entries: r.entries });
        off = r.end;
        continue;
      }
      const kind = sniffCompression(b.subarray(off, off + 8));
      if (!kind || depth > 2)
        throw new InitramfsError(`unrecognised data at offset ${off} (neither cpio nor a known compression)`);
      const inner = await toBuffer(decompress(Readable.from([b.subarray(off)]), kind));
      const before = out.segments.length;
      await walk(inner, depth + 1);
      for (let i = before; i < out.segments.length; i++) out.segments[i]!.compression = kind;
      return; // a compressed segment runs to the end of the image
    }
  };
  await walk(buf, 0);
  if (out.segments.length === 0) throw new InitramfsError('no cpio archive found');
  return out;
}

/** Kernel module names are equal up to '-' vs '_'. */
export function moduleName(file: string): string | undefined {
  const m = /(?:^|\/)([^/]+)\.ko(?:\.(?:xz|zst|gz))?$/.exec(file);
  return m?.[1]?.replace(/-/g, '_');
}
