import { UserError } from '../errors.js';

/** One installed package, as its database records it. */
export interface InstalledPackage {
  type: 'deb' | 'rpm';
  name: string;
  /**
   * The version as the ecosystem writes it: deb `[epoch:]upstream[-revision]`; rpm
   * `version-release` (the epoch is kept apart, as rpm does).
   */
  version: string;
  /** rpm only: the epoch, when the package has one. */
  epoch?: string;
  architecture: string;
  sourceName?: string;
  sourceVersion?: string;
  /** License names or expressions as the database (or DEP-5 copyright file) states them. */
  licenses?: string[];
}

export type DatabaseKind = 'dpkg' | 'rpm';

/** A package database found in an image: which kind, where, how many packages it lists. */
export interface FoundDatabase {
  kind: DatabaseKind;
  /** Path inside the image, e.g. `var/lib/dpkg`. */
  dir: string;
  packages: number;
}

/** A package database that is not what its tool writes: refused, naming the file. */
export class PackageDatabaseError extends UserError {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`package database ${file} refused: ${problem}`);
    this.name = 'PackageDatabaseError';
  }
}

/** Stable identity of a package across two images: type, name and architecture. */
export function packageKey(p: Pick<InstalledPackage, 'type' | 'name' | 'architecture'>): string {
  return `${p.type}:${p.name}:${p.architecture}`;
}

/** The version as users read it (rpm: with its epoch). */
export function displayVersion(p: Pick<InstalledPackage, 'version' | 'epoch'>): string {
  return p.epoch ? `${p.epoch}:${p.version}` : p.version;
}
