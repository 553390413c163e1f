import { concat, github, lit, ne, secret, type Expr } from './expr.js';
import { actionStep, keel, type ActionStep, type KeelStep } from './model.js';
import { pins } from './pins.js';

/**
 * The promotion's GitHub Release (smoke-boot.yml): the boot job hands the changelog Markdown to
 * the promote job as an artifact of this run, and after a successful promote the github-release
 * hop makes it the notes of `stable.<date>`. Release notes inform, they never gate: a missing
 * changelog gives notes saying so, not a failed promotion.
 */

/**
 * Artifact name, unique per run (a re-run of the boot job replaces its own) and, in a variant
 * matrix, per leg (`variant` is the leg's name).
 */
export const changelogArtifact = (variant?: Expr): Expr =>
  variant
    ? concat(lit('keel-changelog-'), variant, lit('-'), github('run_id'))
    : concat(lit('keel-changelog-'), github('run_id'));
/** Directory (relative to the workspace) the promote job downloads it to. */
export const CHANGELOG_DIR = 'keel-changelog';
/** Step ids in the promote job. */
export const RELEASE_NOTES_STEP = 'release-notes';
export const GITHUB_RELEASE_STEP = 'github-release';

/** Boot job, after the changelog step: its Markdown, for the promote job. */
export function uploadChangelog(markdown: Expr, artifact: Expr = changelogArtifact()): ActionStep {
  return actionStep({
    name: 'Hand the release notes to the promote job (artifact of this run)',
    uses: pins.uploadArtifact,
    with: {
      name: artifact,
      path: markdown,
      'retention-days': 7,
      'if-no-files-found': 'warn',
      overwrite: true,
    },
    local: { local: 'artifact-upload', name: artifact, paths: [markdown] },
    // The changelog step may have failed (it does not gate): then there is nothing to hand over
    // (and an empty path would name the whole workspace).
    if: ne(markdown, ''),
    continueOnError: true,
  });
}

/**
 * Promote job, after the promote step: fetch the notes (a missing artifact is not a failure; the
 * release then says the changelog was not available) and publish the release. Both run only when
 * every earlier step, promote included, succeeded (the implicit success()), and `if` holds (in a
 * variant matrix: the main image's leg; the repository has one release per date).
 */
export function publishRelease(spec: {
  releaseDate: Expr;
  stableTag: Expr;
  artifact?: Expr;
  if?: Expr;
}): [ActionStep, KeelStep<'github-release'>] {
  const artifact = spec.artifact ?? changelogArtifact();
  const only = spec.if ? { if: spec.if } : {};
  const download = actionStep({
    id: RELEASE_NOTES_STEP,
    name: 'Take the release notes the boot job wrote',
    uses: pins.downloadArtifact,
    with: { name: artifact, path: CHANGELOG_DIR },
    local: { local: 'artifact-download', name: artifact, path: CHANGELOG_DIR },
    continueOnError: true,
    ...only,
  });
  const release = keel['github-release'](
    GITHUB_RELEASE_STEP,
    {
      'release-date': spec.releaseDate,
      'stable-tag': spec.stableTag,
      'notes-file': `${CHANGELOG_DIR}/changelog.md`,
      token: secret('GITHUB_TOKEN'),
    },
    { name: 'GitHub Release stable.<date> with the changelog as its notes', ...only },
  );
  return [download, release];
}
