import type { TarHeader } from '../tar/reader.js';

/** What image checks need from a root filesystem, whatever backs it (layers or a mount). */
export interface RootfsReader {
  /** Final entries by normalised path ("usr/lib/modules", "." for the root). */
  index(): Promise<Map<string, TarHeader>>;
  resolve(path: string): Promise<string | undefined>;
  readFiles(paths: string[]): Promise<Map<string, Buffer>>;
}
