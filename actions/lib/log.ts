/** The logging port every domain module takes. `@actions/core` satisfies it structurally. */
export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/** A logger that keeps lines in memory (tests, and the local runner's per-hop capture). */
export function memoryLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const push = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, info: push('info'), warning: push('warning'), error: push('error'), debug: push('debug') };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { info() {}, warning() {}, error() {}, debug() {} };

/** Logger to stderr, for CLIs and benches. */
