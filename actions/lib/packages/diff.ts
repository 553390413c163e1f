import type { Inventory } from './inventory.js';
import { displayVersion, packageKey, type InstalledPackage } from './types.js';

/**
 * What changed between two inventories: packages added, removed, and changed (same type, name
 * and architecture, another version), and the kernel change, which users ask about first.
 */
export interface PackageRef {
  type: InstalledPackage['type'];
  name: string;
  architecture: string;
  version: string;
}

export interface PackageChange {
  type: InstalledPackage['type'];
  name: string;
  architecture: string;
  from: string;
  to: string;
}

export interface KernelChange {
  /** Kernel versions of the previous image (empty for a first release). */
  from: string[];
  to: string[];
  changed: boolean;
}

export interface InventoryDiff {
  kernel: KernelChange;
  added: PackageRef[];
  removed: PackageRef[];
  changed: PackageChange[];
}

const ref = (p: InstalledPackage): PackageRef => ({
  type: p.type,
  name: p.name,
  architecture: p.architecture,
  version: displayVersion(p),
});

const byName = <T extends Pick<InstalledPackage, 'type' | 'name' | 'architecture'>>(a: T, b: T) =>
  packageKey(a) < packageKey(b) ? -1 : packageKey(a) > packageKey(b) ? 1 : 0;

/** Compares `previous` (undefined: a first release, everything is added) with `current`. */
export function diffInventories(previous: Inventory | undefined, current: Inventory): InventoryDiff {
  const before = new Map((previous?.packages ?? []).map((p) => [packageKey(p), p]));
  const after = new Map(current.packages.map((p) => [packageKey(p), p]));
  const added: PackageRef[] = [];
  const removed: PackageRef[] = [];
  const changed: PackageChange[] = [];
  for (const [k, p] of after) {
    const old = before.get(k);
    if (!old) added.push(ref(p));
    else if (displayVersion(old) !== displayVersion(p))
      changed.push({
        type: p.type,
        name: p.name,
        architecture: p.architecture,
        from: displayVersion(old),
        to: displayVersion(p),
      });
  }
  for (const [k, p] of before) if (!after.has(k)) removed.push(ref(p));
  const from = (previous?.kernels ?? []).map((k) => k.version);
  const to = current.kernels.map((k) => k.version);
  return {
    kernel: { from, to, changed: from.join(' ') !== to.join(' ') },
    added: added.sort(byName),
    removed: removed.sort(byName),
    changed: changed.sort(byName),
  };
}
