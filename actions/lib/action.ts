import * as core from '@actions/core';
import { errorMessage, InputError, UserError } from './errors.js';
import { coreIO, type ActionIO } from './io.js';
import { InvalidReferenceError } from './oci/reference.js';
import { RetryExhaustedError } from './retry.js';

/** Errors whose message is the whole story (no stack trace in the log). */
export function isUserFacing(err: unknown): boolean {
  return (
    err instanceof InputError ||
    err instanceof UserError ||
    err instanceof InvalidReferenceError ||
    err instanceof RetryExhaustedError
  );
}

/**
 * The entry every `index.ts` calls: runs the hop's `main` against the real runner IO and turns
 * any failure into `setFailed` with a one-line message (stack in debug for unexpected errors).
 */
export function runAction(main: (io: ActionIO) => Promise<void>, given?: ActionIO): void {
  let io: ActionIO;
  try {
    io = given ?? coreIO();
  } catch (err) {
    // The run's context is unusable (e.g. a bad KEEL_WORK_DIR): say why, as a failed step.
    core.setFailed(errorMessage(err));
    return;
  }
  main(io).catch((err: unknown) => {
    if (!isUserFacing(err) && err instanceof Error && err.stack) io.debug(err.stack);
    io.setFailed(errorMessage(err));
  });
}

/**
 * Runs a hop's body so its report is written on every path: `report` gets the failure message
 * (undefined on success) and sets the outputs known so far and writes the job summary; then the
 * body's error, if any, propagates to `runAction`.
 */
export async function withFailureSummary<T>(
  body: () => Promise<T>,
  report: (failure: string | undefined) => Promise<void>,
): Promise<T> {
  let failure: string | undefined;
  try {
    return await body();
  } catch (err) {
    failure = errorMessage(err);
    throw err;
  } finally {
    await report(failure);
  }
}
