/**
 * Process-wide cleanup registry. Child process groups (QEMU, buildah, swtpm) and temporary
 * files register a synchronous cleanup here; it runs on normal exit, on an uncaught error and
 * when the step is cancelled (the runner sends SIGINT, then SIGTERM), so nothing is orphaned.
 */
const cleanups = new Set<() => void>();
let installed = false;

function runAll() {
  for (const fn of [...cleanups].reverse()) {
    try {
      fn();
    } catch {
      /* best effort: one failing cleanup must not stop the others */
    }
  }
  cleanups.clear();
}

function install() {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      runAll();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Registers a synchronous cleanup; returns a function that unregisters it. */
export function onCleanup(fn: () => void): () => void {
  install();
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}
