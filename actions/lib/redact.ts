/**
 * Keeping secrets out of text: the one masking rule of Keel, used by the tool runner (argv shown
 * in logs, captured stderr), the build log, and the local runner (step logs, summaries, run
 * records). A secret is masked as `***` as given, each of its lines (trimmed), and as it appears
 * inside a JSON string; longer values first, so a secret containing another is masked whole.
 */
export class Redactor {
  private readonly values = new Set<string>();
  private readonly minLength: number;

  /** `minLength`: values shorter than this (trimmed) are not masked (GitHub's runner skips < 3). */
  constructor(secrets: Iterable<string> = [], opts: { minLength?: number } = {}) {
    this.minLength = Math.max(1, opts.minLength ?? 1);
    for (const s of secrets) this.add(s);
  }

  add(value: string): void {
    const keep = (v: string) => {
      if (v.trim().length >= this.minLength) this.values.add(v);
    };
    keep(value);
    for (const line of value.split(/\r?\n/)) keep(line.trim());
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

/** `text` with every one of `secrets` masked (empty values ignored). */
export function redact(text: string, secrets: readonly string[] = []): string {
  return secrets.length ? new Redactor(secrets).apply(text) : text;
}
