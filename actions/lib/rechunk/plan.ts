import crypto from 'node:crypto';

/**
 * Which components share a layer. Stability is the point: a component keeps its layer from
 * one build to the next (the previous image's plan is read back from its layer annotations),
 * so an update changes only the layers whose components changed.
 *
 * - `kernel` always has its own layer, and so do the package databases and the build's own
 *   fresh files (small, but they change with every update: sharing a layer would re-ship their
 *   neighbours);
 * - components get their own layer ("c:<component>"), biggest first, while slots remain; a
 *   fresh plan keeps about a tenth of the slots free, so packages added later get a layer of
 *   their own instead of changing a shared bucket;
 * - the rest share hash buckets ("bucket-NN"), chosen by the component name, so the bucket of
 *   a component never depends on what else is in the image.
 */
export interface LayerPlan {
  id: string;
  components: string[];
}

export interface Plan {
  layers: LayerPlan[];
}

export const ANNOTATION_LAYER = 'dev.keel.rechunk.layer';
export const ANNOTATION_COMPONENTS = 'dev.keel.rechunk.components';

export function bucketCount(maxLayers: number): number {
  return Math.max(1, Math.min(16, Math.floor(maxLayers / 8)));
}

export function bucketOf(component: string, buckets: number): string {
  const h = crypto.createHash('sha256').update(component).digest().readUInt32BE(0);
  return `bucket-${String(h % buckets).padStart(2, '0')}`;
}

export interface PlanResult {
  plan: Plan;
  notes: string[];
}

/**
 * @param sizes component → uncompressed bytes
 * @param previous the plan of the previous image (component → layer id), if any
 */
/** Components that change with (nearly) every update of the image: each gets its own layer. */
export const VOLATILE = /^(?:db:|volatile$)/;

export function reserveOf(maxLayers: number): number {
  return Math.ceil(maxLayers / 10);
}

export function makePlan(sizes: Map<string, number>, maxLayers: number, previous?: Plan): PlanResult {
  const notes: string[] = [];
  const buckets = bucketCount(maxLayers);
  const assign = new Map<string, string>(); // component → layer id
  const comps = [...sizes.keys()].sort();

  if (previous) {
    const prevOf = new Map<string, string>();
    for (const l of previous.layers) for (const c of l.components) prevOf.set(c, l.id);
    let kept = 0;
    for (const c of comps) {
      const id = prevOf.get(c);
      if (id) {
        assign.set(c, id);
        kept++;
      }
    }
    const removed = [...prevOf.keys()].filter((c) => !sizes.has(c));
    notes.push(
      `previous plan: ${kept} components keep their layer, ${comps.length - kept} new, ${removed.length} removed`,
    );
  }

  // New components, biggest first: their own layer while the budget allows (room is always
  // kept for every bucket), else their bucket.
  const used = () => new Set(assign.values());
  const rank = (c: string) => (c === 'kernel' ? 0 : VOLATILE.test(c) ? 1 : 2);
  const fresh = comps
    .filter((c) => !assign.has(c))
    .sort((a, b) => rank(a) - rank(b) || sizes.get(b)! - sizes.get(a)! || (a < b ? -1 : 1));
  const own = new Set([...assign.values()].filter((id) => !id.startsWith('bucket-')));
  const budget = maxLayers - buckets - (previous ? 0 : reserveOf(maxLayers));
  for (const c of fresh) {
    const id = c === 'kernel' ? 'kernel' : own.size < Math.max(1, budget) ? `c:${c}` : bucketOf(c, buckets);
    assign.set(c, id);
    if (!id.startsWith('bucket-')) own.add(id);
  }

  // A smaller max-layers than the previous plan used: fold the smallest own layers into buckets.
  const layerSize = (id: string) =>
    [...assign].filter(([, l]) => l === id).reduce((n, [c]) => n + (sizes.get(c) ?? 0), 0);
  while (used().size > maxLayers) {
    const own = [...used()]
      .filter((id) => id.startsWith('c:'))
      .sort((a, b) => layerSize(a) - layerSize(b) || (a < b ? -1 : 1));
    const victim = own[0];
    if (!victim) throw new Error(`cannot fit the plan into ${maxLayers} layers`);
    for (const [c, id] of assign) if (id === victim) assign.set(c, bucketOf(c, buckets));
    notes.push(`folded ${victim} into a bucket to stay within ${maxLayers} layers`);
  }

  const byLayer = new Map<string, string[]>();
  for (const [c, id] of assign) byLayer.set(id, [...(byLayer.get(id) ?? []), c]);
  const order = (id: string) => (id === 'kernel' ? 0 : id.startsWith('c:') ? 1 : 2);
  const layers = [...byLayer]
    .map(([id, components]) => ({ id, components: components.sort() }))
    .sort((a, b) => order(a.id) - order(b.id) || (a.id < b.id ? -1 : 1));
  return { plan: { layers }, notes };
}

/** Reads a plan back from a manifest's layer annotations (undefined when it has none). */
export function planFromAnnotations(layers: { annotations?: Record<string, string> }[]): Plan | undefined {
  const out: LayerPlan[] = [];
  for (const l of layers) {
    const id = l.annotations?.[ANNOTATION_LAYER];
    const comps = l.annotations?.[ANNOTATION_COMPONENTS];
    if (!id || !comps) return undefined;
    try {
      const list = JSON.parse(comps) as unknown;
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) return undefined;
      out.push({ id, components: list as string[] });
    } catch {
      return undefined;
    }
  }
  return out.length ? { layers: out } : undefined;
}
