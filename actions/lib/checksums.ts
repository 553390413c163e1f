import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { UserError } from './errors.js';

/**
 * THE SHA256SUMS helper of Keel. A SHA256SUMS file has one `<64 hex>  <basename>` line per file,
 * sorted by name, so `sha256sum -c SHA256SUMS` works in the flat directory a user downloads
 * (the Internet Archive serves an item flat). Hashing streams the file in 1 MiB chunks: memory
 * stays flat whatever the file size.
 */
export type HashAlgorithm = 'md5' | 'sha1' | 'sha256';

export interface FileHashes {
  size: number;
  md5?: string;
  sha1?: string;
  sha256?: string;
}

export interface Sha256Entry {
  /** The name as written in SHA256SUMS (a basename in files Keel writes). */
  name: string;
  sha256: string;
}

/** A SHA256SUMS problem the user has to fix (mismatch, missing file, malformed line). */
export class ChecksumError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'ChecksumError';
  }
}

/** Hashes a file once, computing every requested digest in the same streaming pass. */
export async function hashFile(file: string, algorithms: readonly HashAlgorithm[] = ['sha256']): Promise<FileHashes> {
  const hashes = algorithms.map((a) => [a, crypto.createHash(a)] as const);
  let size = 0;
  await pipeline(
    fs.createReadStream(file, { highWaterMark: 1024 * 1024 }),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        for (const [, h] of hashes) h.update(chunk);
        cb();
      },
    }),
  );
  const out: FileHashes = { size };
  for (const [a, h] of hashes) out[a] = h.digest('hex');
  return out;
}

/** The SHA-256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  return (await hashFile(file, ['sha256'])).sha256!;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Formats entries as SHA256SUMS text: basenames only, sorted, two spaces, trailing newline. */
export function formatSha256Sums(entries: readonly Sha256Entry[]): string {
  const seen = new Set<string>();
  for (const e of entries) {
    if (!e.name || e.name !== path.basename(e.name) || /[\n\r\\]/.test(e.name)) {
      throw new ChecksumError(`SHA256SUMS entries must be plain basenames; got ${JSON.stringify(e.name)}`);
    }
    if (!HEX64.test(e.sha256))
      throw new ChecksumError(`${e.name}: ${JSON.stringify(e.sha256)} is not a lowercase hex SHA-256`);
    if (seen.has(e.name)) throw new ChecksumError(`SHA256SUMS would list ${e.name} twice`);
    seen.add(e.name);
  }
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sorted.map((e) => `${e.sha256}  ${e.name}\n`).join('');
}

/**
 * Hashes `files` and writes `out` (default: SHA256SUMS next to the first file) listing them by
 * basename. Returns the entries written.
 */
export async function writeSha256Sums(
  files: readonly string[],
  out?: string,
): Promise<{ path: string; entries: Sha256Entry[] }> {
  if (files.length === 0) throw new ChecksumError('writeSha256Sums: no files to list');
  const entries: Sha256Entry[] = [];
  for (const f of files) entries.push({ name: path.basename(f), sha256: await sha256File(f) });
  const text = formatSha256Sums(entries);
  const target = out ?? path.join(path.dirname(files[0]!), 'SHA256SUMS');
  fs.writeFileSync(target, text);
  return { path: target, entries };
}

/**
 * Parses SHA256SUMS text (`<hex>  name` or the binary form `<hex> *name`; a leading `./` is
 * dropped). A malformed line is an error naming the line, never silently skipped.
 */
export function parseSha256Sums(text: string, source = 'SHA256SUMS'): Sha256Entry[] {
  const out: Sha256Entry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) {
      throw new ChecksumError(
        `${source}:${i + 1}: expected "<64 hex digits>  <file name>", got ${JSON.stringify(line.slice(0, 120))}`,
      );
    }
    out.push({ sha256: m[1]!.toLowerCase(), name: m[2]!.replace(/^\.\//, '') });
  }
  if (out.length === 0) throw new ChecksumError(`${source} lists no files`);
  return out;
}

export function readSha256Sums(file: string): Sha256Entry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ChecksumError(`${file} does not exist or cannot be read`);
  }
  return parseSha256Sums(text, file);
}

export interface VerifiedEntry extends Sha256Entry {
  /** The local file the entry was checked against. */
  path: string;
}

export interface VerifyOptions {
  /** Where the file an entry names lives (default: next to SHA256SUMS). */
  locate?: (name: string) => string;
  /** The SHA-256 of a local file (default: sha256File); callers with a combined hash pass inject theirs. */
  digest?: (file: string) => Promise<string>;
}

/** Checks one file against the digest a SHA256SUMS file gives for it. */
export async function verifyEntry(
  entry: Sha256Entry,
  file: string,
  sumsFile: string,
  digest: (file: string) => Promise<string> = sha256File,
): Promise<VerifiedEntry> {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new ChecksumError(`${path.basename(sumsFile)} lists ${entry.name}, but ${file} does not exist`);
  }
  const actual = await digest(file);
  if (actual !== entry.sha256) {
    throw new ChecksumError(
      `${entry.name} does not match ${path.basename(sumsFile)}: it says sha256 ${entry.sha256}, the file ${file} has sha256 ${actual}`,
    );
  }
  return { ...entry, path: file };
}

/**
 * Verifies every entry of a SHA256SUMS file against the local files (streaming, one file at a
 * time). Throws a ChecksumError naming the file and both digests on the first mismatch, or the
 * file on a missing one. Returns the verified entries.
 */
export async function verifySha256Sums(sumsFile: string, opts: VerifyOptions = {}): Promise<VerifiedEntry[]> {
  const entries = readSha256Sums(sumsFile);
  const locate = opts.locate ?? ((name: string) => path.join(path.dirname(sumsFile), name));
  const out: VerifiedEntry[] = [];
  for (const e of entries) out.push(await verifyEntry(e, locate(e.name), sumsFile, opts.digest));
  return out;
}
