import { and, eq, lit, or, type Expr } from './expr.js';
import { runStep, type RunStep } from './model.js';

/**
 * Media whose boot test did not run (build-disk's `boot-passed` is `skipped`: `boot-test: false`,
 * or the bib backend, whose media build-disk does not boot). They are never published unless the
 * caller says `publish-untested: true`; then the publish job says in its summary and in the
 * Internet Archive item's description that they were not boot-tested. A skipped test never reads
 * as green: the disk job warns whenever it happens.
 */

/** The text the disk job's warning, the publish job's summary and the IA description carry. */
export const UNTESTED_TEXT = 'NOT boot-tested';
export const UNTESTED_DESCRIPTION = `${UNTESTED_TEXT}: these media were published without a boot test (boot-passed: skipped; the workflow allowed it with publish-untested: true).`;

const isLiteral = (e: Expr, v: boolean) => e.kind === 'literal' && e.value === v;

/**
 * When media may be published: the boot test passed, or it was skipped and publish-untested is
 * on. A constant `false` (the usual dogfood case) leaves only the passed test.
 */
export function publishableMedia(bootPassed: Expr, publishUntested: Expr): Expr {
  const passed = eq(bootPassed, 'true');
  if (isLiteral(publishUntested, false)) return passed;
  // A job or step output is the text 'true' (GitHub compares 'true' == true as numbers: false).
  const on = publishUntested.kind === 'input' ? eq(publishUntested, true) : eq(publishUntested, 'true');
  const untested = isLiteral(publishUntested, true) ? eq(bootPassed, 'skipped') : and(eq(bootPassed, 'skipped'), on);
  return or(passed, untested);
}

/** The disk job's warning (annotation and summary line) when the boot test was skipped. */
export function untestedDiskWarning(bootPassed: Expr, publishUntested: Expr): RunStep {
  return runStep({
    name: 'Warn: the media were not boot-tested',
    if: eq(bootPassed, 'skipped'),
    env: { PUBLISH_UNTESTED: publishUntested },
    run: [
      'if [[ $PUBLISH_UNTESTED == true ]]; then',
      `  next="they will be published marked ${UNTESTED_TEXT} (publish-untested: true)"`,
      'else',
      '  next="they will not be published (publish-untested: false)"',
      'fi',
      `echo "::warning title=${UNTESTED_TEXT}::the boot test did not run (boot-passed: skipped): $next"`,
      `echo "⚠️ **${UNTESTED_TEXT}**: the boot test did not run (boot-passed: skipped); $next." >> "$GITHUB_STEP_SUMMARY"`,
    ].join('\n'),
    local: { local: 'skip', reason: "the build-disk hop's own notice says the boot test was skipped" },
  });
}

/** The publish job's summary line and warning when it publishes untested media. */
export function untestedPublishNotice(bootPassed: Expr): RunStep {
  return runStep({
    name: 'Say that these media were not boot-tested',
    if: eq(bootPassed, 'skipped'),
    run: [
      `echo "::warning title=${UNTESTED_TEXT}::publishing media whose boot test did not run (publish-untested: true)"`,
      `echo "⚠️ **${UNTESTED_TEXT}**: these media are published without a boot test (boot-passed: skipped, publish-untested: true); the Internet Archive item's description says so." >> "$GITHUB_STEP_SUMMARY"`,
    ].join('\n'),
    local: { local: 'skip', reason: 'the publish job of an untested medium says so in GitHub only' },
  });
}

/** A `description:` metadata line when the media are untested; empty (dropped) otherwise. */
export function untestedMetadataLine(bootPassed: Expr): Expr {
  return or(and(eq(bootPassed, 'skipped'), lit(`description:${UNTESTED_DESCRIPTION}`)), '');
}
