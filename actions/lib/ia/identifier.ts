/**
 * Internet Archive item identifiers. IA accepts `A-Z a-z 0-9 . _ -`, not starting with `.`,
 * `_` or `-`, 3 to 100 characters (the `ia` client's own check); IA strongly suggests 5 to 80,
 * lower case, and an identifier can never be changed once the item exists.
 */
export const IDENTIFIER_MIN = 3;
export const IDENTIFIER_MAX = 100;

/** Why an identifier is unusable, or undefined when IA accepts it. */
export function identifierProblem(id: string): string | undefined {
  if (id.length < IDENTIFIER_MIN || id.length > IDENTIFIER_MAX) {
    return `expected ${IDENTIFIER_MIN} to ${IDENTIFIER_MAX} characters (IA suggests 5 to 80), got ${id.length}`;
  }
  const bad = [...new Set(id.replace(/[A-Za-z0-9._-]/g, ''))];
  if (bad.length) {
    return `expected only the characters A-Z a-z 0-9 . _ - (found ${bad.map((c) => JSON.stringify(c)).join(' ')})`;
  }
  if (!/^[A-Za-z0-9]/.test(id)) return 'an identifier must start with a letter or a digit';
  return undefined;
}

/** Advice for an acceptable but unwise identifier (warnings, not errors). */
export function identifierAdvice(id: string): string[] {
  const out: string[] = [];
  if (id !== id.toLowerCase())
    out.push(`identifier ${JSON.stringify(id)} has upper-case letters; IA recommends lower case`);
  if (id.length < 5 || id.length > 80)
    out.push(`identifier ${JSON.stringify(id)} is ${id.length} characters; IA strongly suggests 5 to 80`);
  return out;
}
