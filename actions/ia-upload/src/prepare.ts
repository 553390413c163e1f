import fs from 'node:fs';
import path from 'node:path';
import { hashFile, readSha256Sums, sha256File, verifySha256Sums, type FileHashes } from '../../lib/checksums.js';
import { InputError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { LocalFile } from './publish.js';

/**
 * Everything `ia-upload` does before its first request: remote names (basenames, unique, not
 * one of IA's own files), the SHA256SUMS file (the `sha256sums` input, or a file named
 * SHA256SUMS among `files`) verified against the files, and one streaming hash pass per file
 * (md5 for Content-MD5 and the skip check, sha256 where SHA256SUMS lists the file).
 */
export interface Prepared {
  /** Upload order: as given, SHA256SUMS last. */
  files: LocalFile[];
  /** The SHA256SUMS file uploaded last, if any. */
  sums?: { path: string; name: string; verified: string[] };
  ms: number;
}

export function isSumsName(p: string): boolean {
  return path.basename(p).toUpperCase() === 'SHA256SUMS';
}

/**
 * The files in upload order (absolute paths: as given, the SHA256SUMS file last) and which one
 * is the SHA256SUMS: the `sha256sums` input, else the one file named SHA256SUMS among `files`.
 */
export function uploadOrder(files: readonly string[], sha256sums: string): { list: string[]; sumsPath?: string } {
  const list = [...new Set(files.map((f) => path.resolve(f)))];
  let sumsPath: string | undefined;
  if (sha256sums) {
    sumsPath = path.resolve(sha256sums);
  } else {
    const found = list.filter(isSumsName);
    if (found.length > 1)
      throw new InputError(
        'files',
        undefined,
        `lists ${found.length} SHA256SUMS files; give one (or name it with the sha256sums input)`,
      );
    sumsPath = found[0];
  }
  return { list: [...list.filter((p) => p !== sumsPath), ...(sumsPath ? [sumsPath] : [])], sumsPath };
}

export async function prepareFiles(
  identifier: string,
  files: readonly string[],
  sha256sums: string,
  log: Logger,
): Promise<Prepared> {
  const t0 = Date.now();
  const { list, sumsPath } = uploadOrder(files, sha256sums);

  const names = new Map<string, string>();
  const reserved = new Set([
    `${identifier}_meta.xml`,
    `${identifier}_files.xml`,
    `${identifier}_archive.torrent`,
    `${identifier}_meta.sqlite`,
  ]);
  for (const p of list) {
    const name = path.basename(p);
    const prev = names.get(name);
    if (prev && prev !== p)
      throw new InputError(
        'files',
        undefined,
        `${prev} and ${p} share the name ${name}; an IA item is flat, names must be unique`,
      );
    if (reserved.has(name))
      throw new InputError('files', name, `this name is one of IA's own files of item ${identifier}`);
    if (!/^[A-Za-z0-9._+~-]+$/.test(name))
      log.warning(`${name}: IA serves names with spaces or non-ASCII characters awkwardly; prefer [A-Za-z0-9._-]`);
    names.set(name, p);
  }

  // SHA256SUMS first: which files it lists decides which need a sha256 in the hash pass.
  const entries = sumsPath ? readSha256Sums(sumsPath) : [];
  const listed = new Set(entries.map((e) => e.name));
  const hashes = new Map<string, FileHashes>();
  for (const p of list) {
    if (p === sumsPath) continue;
    hashes.set(p, await hashFile(p, listed.has(path.basename(p)) ? ['md5', 'sha256'] : ['md5']));
  }

  let sums: Prepared['sums'];
  if (sumsPath) {
    const verified = await verifySha256Sums(sumsPath, {
      // An entry is checked against the file of that name being uploaded, else the one next to SHA256SUMS.
      locate: (name) => names.get(name) ?? path.join(path.dirname(sumsPath), name),
      digest: async (p) => hashes.get(path.resolve(p))?.sha256 ?? sha256File(p),
    });
    sums = { path: sumsPath, name: path.basename(sumsPath), verified: verified.map((v) => v.name) };
    log.info(`${path.basename(sumsPath)} verified: ${verified.map((v) => v.name).join(', ')}`);
    const unlisted = list.filter((p) => p !== sumsPath && !listed.has(path.basename(p))).map((p) => path.basename(p));
    if (unlisted.length)
      log.warning(
        `${path.basename(sumsPath)} does not list ${unlisted.join(', ')}: users cannot verify those downloads`,
      );
    hashes.set(sumsPath, await hashFile(sumsPath, ['md5']));
  } else {
    log.warning(
      'no SHA256SUMS among the files (and no sha256sums input): users will have no checksums to verify the downloads against',
    );
  }

  const out: LocalFile[] = list.map((p) => {
    const h = hashes.get(p)!;
    const size = fs.statSync(p).size;
    if (size !== h.size)
      throw new InputError('files', p, `changed while it was being hashed (${h.size} bytes read, now ${size})`);
    return { name: path.basename(p), path: p, size, md5: h.md5! };
  });
  return { files: out, sums, ms: Date.now() - t0 };
}
