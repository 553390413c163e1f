import { UserError } from '../errors.js';
import type { Ext4Image } from './ext4-image.js';
import { ext4PathProblem } from './ext4-image.js';

/**
 * Boot Loader Specification type #1 entries (`/boot/loader/entries/*.conf`): what ostree writes
 * for every deployment and what a BLS bootloader (systemd-boot, GRUB with blscfg) reads to build
 * its menu. Entries come from a disk a guest wrote, so they are hostile input: the file is
 * bounded, every key is checked, and the kernel and initrd paths must stay inside /boot.
 */
export interface BootEntry {
  /** File name in loader/entries (the entry id with .conf). */
  file: string;
  title: string;
  version: string;
  sortKey: string;
  /** Kernel command line, one line. */
  options: string;
  /** Kernel path relative to the boot filesystem's root, starting with '/'. */
  linux: string;
  initrd: string[];
}

export const MAX_ENTRY_BYTES = 64 * 1024;
const ENTRY_FILE = /^[A-Za-z0-9._@+-]{1,200}\.conf$/;
// Values are printable ASCII: a kernel command line, a title and BLS paths need nothing else.
const OPTIONS = /^[\x20-\x7e]*$/;

export class UnsafeBootEntryError extends UserError {
  constructor(file: string, reason: string) {
    super(`boot entry ${JSON.stringify(file)} refused: ${reason}`);
    this.name = 'UnsafeBootEntryError';
  }
}

/** A BLS path key (linux, initrd): absolute, plain, no "..", so it resolves inside /boot. */
export function bootPathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'it is not absolute (BLS paths start at the boot filesystem root)';
  return ext4PathProblem(value);
}

export function parseBootEntry(file: string, text: string): BootEntry {
  const fail = (reason: string) => new UnsafeBootEntryError(file, reason);
  if (!ENTRY_FILE.test(file)) throw fail('the file name is not a plain NAME.conf');
  if (Buffer.byteLength(text) > MAX_ENTRY_BYTES) throw fail(`it is larger than ${MAX_ENTRY_BYTES} bytes`);
  const e: BootEntry = { file, title: '', version: '', sortKey: '', options: '', linux: '', initrd: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const [key, value] = [m[1]!, m[2]!];
    if (!OPTIONS.test(value)) throw fail(`the ${key} line has control or non-ASCII characters`);
    const path = () => {
      const problem = bootPathProblem(value);
      if (problem) throw fail(`${key} ${JSON.stringify(value)}: ${problem}`);
      return value;
    };
    switch (key) {
      case 'title':
        e.title = value;
        break;
      case 'version':
        e.version = value;
        break;
      case 'sort-key':
        e.sortKey = value;
        break;
      case 'options':
        // Several options lines are joined (BLS: "may appear more than once").
        e.options = e.options ? `${e.options} ${value}` : value;
        break;
      case 'linux':
        if (e.linux) throw fail('more than one linux line');
        e.linux = path();
        break;
      case 'initrd':
        e.initrd.push(path());
        break;
      default:
        break; // machine-id, architecture, devicetree, ostree's aboot lines: not needed to boot here
    }
  }
  if (!e.linux) throw fail('it has no linux line');
  return e;
}

/**
 * The BLS menu order: entries with a sort-key first, by sort-key; then by version, newest
 * first; then by file name, last first. The first entry is the default a BLS bootloader boots
 * when nothing else is configured (ostree gives the default deployment the highest version).
 */
export function sortBootEntries(entries: BootEntry[]): BootEntry[] {
  const cmp = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  return [...entries].sort((a, b) => {
    if (Boolean(a.sortKey) !== Boolean(b.sortKey)) return a.sortKey ? -1 : 1;
    return cmp(a.sortKey, b.sortKey) || cmp(b.version, a.version) || cmp(b.file, a.file);
  });
}

/** The entries in `<bootDir>/loader/entries` of a disk image, in menu order. */
export async function readBootEntries(img: Ext4Image, bootDir = '/boot'): Promise<BootEntry[]> {
  const dir = `${bootDir}/loader/entries`;
  const st = await img.stat(dir);
  if (st?.type !== 'directory') return [];
  const out: BootEntry[] = [];
  for (const { name, type } of await img.list(dir)) {
    if (!name.endsWith('.conf')) continue;
    if (type !== 'regular') throw new UnsafeBootEntryError(name, `it is a ${type}, not a regular file`);
    if (!ENTRY_FILE.test(name)) throw new UnsafeBootEntryError(name, 'the file name is not a plain NAME.conf');
    out.push(parseBootEntry(name, (await img.readFile(`${dir}/${name}`, MAX_ENTRY_BYTES)).toString('utf8')));
  }
  return sortBootEntries(out);
}
