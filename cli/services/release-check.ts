import fs from 'node:fs';
import type { GithubEmulator } from '../../emulators/github/index.js';

/**
 * For the demo: why the GitHub emulator does not hold the release `tag` of `repository` with the
 * changelog (the file at `notesFile`) as its notes; undefined when it does. Reads the emulator's
 * state (no request), so it checks what github-release wrote, not what it answered.
 */
export function stableReleaseProblem(
  github: GithubEmulator,
  repository: string,
  tag: string,
  notesFile: string,
): string | undefined {
  const repo = github.state.repos.get(repository.toLowerCase());
  if (!repo) return `the GitHub emulator has no repository ${repository}`;
  const releases = github.state.releases.list(repo).filter((r) => r.tagName === tag);
  if (releases.length !== 1) return `${repository} has ${releases.length} releases ${tag}, expected exactly one`;
  if (!repo.refs.has(`refs/tags/${tag}`)) return `${repository} has no git tag ${tag}`;
  const notes = fs.readFileSync(notesFile, 'utf8');
  if (releases[0]!.body !== notes) return `the notes of ${tag} are not the changelog ${notesFile}`;
  return undefined;
}
