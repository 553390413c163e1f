/** `--k v`, `--k=v` and bare `--k` (true); repeated flags collect; the rest are positionals. */
export function flags(argv: string[]): { pos: string[]; f: Record<string, string[]> } {
  const pos: string[] = [];
  const f: Record<string, string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      // --k=v splits at the first '=' only: the value may hold more (--input kernel-args=a=b).
      const eq = a.indexOf('=');
      const k = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const v = eq < 0 ? undefined : a.slice(eq + 1);
      const next = argv[i + 1];
      const val = v ?? (next && !next.startsWith('--') ? (i++, next) : 'true');
      (f[k] ??= []).push(val);
    } else pos.push(a);
  }
  return { pos, f };
}
