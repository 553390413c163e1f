import fs from 'node:fs';
import path from 'node:path';
import type { Verdict, VerdictMatcher } from '../../actions/lib/vm/verdict.js';

/** A serial console captured here (test/fixtures/<name>), as lines. */
export function consoleFixture(name: string): string[] {
  return fs.readFileSync(path.join(import.meta.dirname, '..', 'fixtures', name), 'utf8').split('\n');
}

/** Feeds the lines to the matcher as bootAndWatch does; the first verdict, if any. */
export function firstVerdict(matcher: VerdictMatcher, lines: string[]): Verdict | undefined {
  for (const l of lines) {
    const v = matcher.feed(l);
    if (v) return v;
  }
  return undefined;
}
