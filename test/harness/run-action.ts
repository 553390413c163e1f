// The test-side entry to the runner-faithful step executor (shared with `keel run`).
export { runStep as runAction, inputEnvName, parseOutputFile, type StepResult } from '../../cli/step.js';

import type { StepResult } from '../../cli/step.js';

/** The error annotations of a step, for assertions. */
export function errors(r: StepResult): string[] {
  return r.annotations.filter((a) => a.level === 'error').map((a) => a.message);
}
export function warnings(r: StepResult): string[] {
  return r.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}
