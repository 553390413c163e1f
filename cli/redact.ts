/**
 * The local runner's log masking, as GitHub's runner does it: every secret value, each line of a
 * multi-line secret, and every value a step masks with `::add-mask::` become `***` in what is
 * printed or saved (step logs, errors, summaries, run.json).
 */
export class Redactor {
  private readonly values = new Set<string>();

  constructor(secrets: Iterable<string> = []) {
    for (const s of secrets) this.add(s);
  }

  add(value: string): void {
    // Very short values would mask unrelated text; GitHub skips them too.
    const keep = (v: string) => {
      if (v.trim().length >= 3) this.values.add(v);
    };
    keep(value);
    for (const line of value.split(/\r?\n/)) keep(line.trim());
    // The same value as it appears inside a JSON string.
    const json = JSON.stringify(value).slice(1, -1);
    if (json !== value) keep(json);
  }

  /** Consumes an `::add-mask::` workflow command; true when the line was one. */
  command(line: string): boolean {
    const m = /^::add-mask::(.*)$/.exec(line);
    if (!m) return false;
    this.add(m[1]!);
    return true;
  }

  apply(text: string): string {
    let out = text;
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) out = out.split(v).join('***');
    return out;
  }
}
