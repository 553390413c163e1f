import fs from 'node:fs';
import { UserError } from '../../lib/errors.js';

/**
 * The `FROM ${BASE_IMAGE}` contract. The build hop resolves the base once, passes it as
 * build-arg BASE_IMAGE=<name>@<digest> and records it in the labels
 * org.opencontainers.image.base.name/.digest. A Containerfile whose final stage starts FROM
 * anything else silently builds from that while the labels claim the pinned base, so:
 *
 * - before building, the final stage's FROM (followed through stage names, `FROM base` where an
 *   earlier stage is `FROM ${BASE_IMAGE} AS base`) must use $BASE_IMAGE: a literal image there
 *   fails naming the Containerfile line;
 * - after building, the image's layers must start with the pinned base's layers (diff_ids):
 *   what the labels claim, checked against what was built, whatever the FROM line says.
 */
export interface FromLine {
  /** 1-based line of the FROM instruction. */
  line: number;
  /** The instruction as written (continuations joined). */
  text: string;
  /** The image operand (after flags such as --platform). */
  image: string;
  /** The stage name (`AS name`), lower-cased. */
  stage?: string;
}

/** FROM instructions in order, with continuation lines joined and comments skipped. */
export function fromLines(text: string): FromLine[] {
  const lines = text.split(/\r?\n/);
  const escape = /^#\s*escape\s*=\s*`\s*$/i.test(lines[0] ?? '') ? '`' : '\\';
  const out: FromLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const first = i;
    let inst = lines[i]!.trim();
    if (inst.startsWith('#')) continue;
    while (inst.endsWith(escape) && i + 1 < lines.length) {
      inst = inst.slice(0, -1);
      const next = lines[++i]!.trim();
      if (!next.startsWith('#')) inst += ` ${next}`;
    }
    const words = inst.split(/\s+/).filter(Boolean);
    if (words[0]?.toUpperCase() !== 'FROM') continue;
    const operands = words.slice(1).filter((w) => !w.startsWith('--'));
    const as = operands.findIndex((w) => w.toUpperCase() === 'AS');
    out.push({
      line: first + 1,
      text: inst.replace(/\s+/g, ' ').trim(),
      image: operands[0] ?? '',
      stage: as > 0 ? operands[as + 1]?.toLowerCase() : undefined,
    });
  }
  return out;
}

const USES_BASE_IMAGE = /\$\{BASE_IMAGE(?:[:}])|\$BASE_IMAGE(?![A-Za-z0-9_])/;
const USES_A_VARIABLE = /\$\{?[A-Za-z_]/;

/**
 * Where the final stage starts: its FROM followed through earlier stage names to the line
 * that names an image. `uses` says whether that line uses $BASE_IMAGE, names a literal image,
 * or goes through another variable (which only the layer check can judge).
 */
export function finalBase(text: string): { from?: FromLine; uses: 'base-image' | 'literal' | 'variable' } {
  const froms = fromLines(text);
  let from = froms.at(-1);
  if (!from) return { uses: 'literal' };
  for (let hops = 0; hops < froms.length; hops++) {
    const image = from.image.toLowerCase();
    const stage: FromLine | undefined = froms.slice(0, froms.indexOf(from)).findLast((f) => f.stage === image);
    if (!stage) break;
    from = stage;
  }
  if (USES_BASE_IMAGE.test(from.image)) return { from, uses: 'base-image' };
  return { from, uses: USES_A_VARIABLE.test(from.image) ? 'variable' : 'literal' };
}

const contract = 'write FROM ${BASE_IMAGE} (the build passes the pinned base as build-arg BASE_IMAGE)';

/** Refuses, before building, a final stage that starts FROM a literal image instead of $BASE_IMAGE. */
export function requireFromBaseImage(file: string, pinned: string): FromLine | undefined {
  const { from, uses } = finalBase(fs.readFileSync(file, 'utf8'));
  if (!from) throw new UserError(`${file}: no FROM instruction; ${contract}`);
  if (uses === 'literal')
    throw new UserError(
      `${file}:${from.line}: the final stage starts "${from.text}", which ignores the pinned base ${pinned}: ` +
        `the image would claim a base it is not built from; ${contract}`,
    );
  return from;
}

/** After the build: the built image's layers start with the pinned base's, or it was not built FROM it. */
export function requireBuiltFromBase(
  built: string[],
  base: string[] | undefined,
  ctx: { file: string; from?: FromLine; pinned: string },
): void {
  const where = ctx.from ? `${ctx.file}:${ctx.from.line} ("${ctx.from.text}")` : ctx.file;
  if (!base)
    throw new UserError(
      `${where}: the pinned base ${ctx.pinned} is not in containers-storage after the build, so the build never used it; ${contract}`,
    );
  const starts = base.length > 0 && base.every((d, i) => built[i] === d);
  if (!starts)
    throw new UserError(
      `${where}: the built image's layers do not start with the pinned base ${ctx.pinned}'s ${base.length} layer(s), ` +
        `so it was not built FROM it while its labels say so; ${contract}`,
    );
}
