// test-kind: integration
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { errors, runAction, warnings, type StepResult } from '../harness/run-action.js';
import {
  startGithubEmulator,
  type EmulatedRepo,
  type GithubEmulator,
  type RepoSeed,
} from '../../emulators/github/index.js';

/**
 * site-bump, bundled and driven the runner's way, against the local GitHub API emulator
 * (the real client is Octokit, as shipped). Every scenario asserts what the site repository
 * looks like afterwards: branches, commits and the files they change, pull requests, the
 * auto-merge flag, and which requests were made.
 */
const TOKEN = 'ghp_siteBumpSecretToken0123456789';

const RELEASE_TS = `// Release metadata for the download page (bumped by the release pipeline).
export const LATEST_ISO_DATE = "20250301";
export const LATEST_ISO_FILE = 'margine-20250301.iso';
`;
const INDEX_TSX = `import { LATEST_ISO_DATE, LATEST_ISO_FILE } from "../lib/release";

export default function Home() {
  return <a href={\`/iso/\${LATEST_ISO_FILE}\`}>Download ({LATEST_ISO_DATE})</a>;
}
`;
// The layout the anchor's site had before PR #182: the constants lived in the route file.
const INDEX_TSX_OLD = `export const LATEST_ISO_DATE = "20250301";
export const LATEST_ISO_FILE = "margine-20250301.iso";

export default function Home() {
  return <a href={\`/iso/\${LATEST_ISO_FILE}\`}>Download ({LATEST_ISO_DATE})</a>;
}
`;

const site = (extra: Partial<RepoSeed> = {}, files: Record<string, string> = {}): RepoSeed => ({
  files: {
    'README.md': '# margine site\n',
    'package.json': '{ "name": "site", "devDependencies": { "prettier": "^3.3.0" } }\n',
    'src/lib/release.ts': RELEASE_TS,
    'src/routes/index.tsx': INDEX_TSX,
    'public/logo.png': { content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]), mode: '100644' },
    'scripts/deploy.sh': { content: '#!/bin/sh\nexec true\n', mode: '100755' },
    ...files,
  },
  ...extra,
});

// Over 1 MB: the contents API answers without the content (encoding "none"); the blob API has it.
const BIG_RELEASE_TS = `${'// padding padding padding padding padding padding padding padding\n'.repeat(17_000)}${RELEASE_TS}`;

const CANDIDATES = 'src/lib/release.ts\nsrc/routes/index.tsx';

describe('site-bump (bundled, driven the runner way, GitHub API emulator)', () => {
  let emu: GithubEmulator;
  let mark = 0;

  beforeAll(async () => {
    emu = await startGithubEmulator({
      token: TOKEN,
      repos: {
        'acme/created': site(),
        'acme/moved': site(
          {},
          { 'src/lib/release.ts': '// nothing here yet\n', 'src/routes/index.tsx': INDEX_TSX_OLD },
        ),
        'acme/stale-files': site(),
        'acme/twice': site({}, { 'src/routes/index.tsx': INDEX_TSX_OLD }),
        'acme/no-automerge': site({ allowAutoMerge: false }),
        'acme/flaky': site(),
        'acme/down': site(),
        'acme/forbidden': site(),
        'acme/multi': site(
          {},
          {
            'src/config/iso.yaml': 'iso:\n  LATEST_ISO_FILE: margine-20250301.iso\n',
            'src/lib/release.ts': 'export const LATEST_ISO_DATE = "20250301";\n',
          },
        ),
        'acme/ghes': site(),
        'acme/leftover': site(),
        'acme/search': site(),
        'acme/big': site({}, { 'src/lib/release.ts': BIG_RELEASE_TS }),
      },
    });
  });
  afterAll(() => emu.close());
  beforeEach(() => {
    emu.setFaults([]);
    mark = emu.state.requests.length;
  });

  /** The requests made during this test. */
  const requests = () => emu.state.requests.slice(mark);
  const writes = () => requests().filter((r) => r.method !== 'GET');
  const bump = (inputs: Record<string, string>, env: Record<string, string> = {}): Promise<StepResult> =>
    runAction({
      action: 'site-bump',
      inputs: { token: TOKEN, 'api-url': emu.url, constant: 'LATEST_ISO_DATE', value: '20250415', ...inputs },
      env: { GITHUB_REPOSITORY: 'acme/os', GITHUB_RUN_ID: '4242', GITHUB_SERVER_URL: 'https://github.com', ...env },
      timeoutMs: 30_000,
    });
  const snapshot = (repo: EmulatedRepo) => ({ refs: new Map(repo.refs), pulls: repo.pulls.length });
  const unchanged = (repo: EmulatedRepo, before: ReturnType<typeof snapshot>) => {
    expect(new Map(repo.refs)).toEqual(before.refs);
    expect(repo.pulls.length).toBe(before.pulls);
  };

  it('skips with a warning, and succeeds, when no token is configured', async () => {
    const r = await bump({ repository: 'acme/created', token: '' });
    expect(r.code).toBe(0);
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ result: 'skipped', 'pr-number': '', 'pr-url': '' });
    expect(warnings(r).join('\n')).toMatch(
      /no token given, so acme\/created was not bumped to LATEST_ISO_DATE=20250415/,
    );
    expect(r.summary).toMatch(/Skipped/);
    expect(requests()).toEqual([]);
  });

  it('creates one commit changing exactly the file that defines the constant, a branch, a PR, and enables auto-merge', async () => {
    const repo = emu.state.repo('acme/created');
    const main = repo.resolve('main')!;
    const r = await bump({ repository: 'acme/created', files: CANDIDATES });
    expect(errors(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({
      result: 'created',
      'pr-number': '1',
      'pr-url': `${emu.url}/acme/created/pull/1`,
      branch: 'keel/release-20250415',
      'auto-merge-enabled': 'true',
    });

    // The base is untouched; the branch is one commit on top of it, changing one file, value only.
    expect(repo.resolve('main')).toBe(main);
    expect(repo.branches()).toEqual(['keel/release-20250415', 'main']);
    const tip = repo.resolve('keel/release-20250415')!;
    expect(r.outputs['commit-sha']).toBe(tip);
    expect(repo.commit(tip)!.parents).toEqual([main]);
    expect(repo.changedFiles(main, tip)).toEqual(['src/lib/release.ts']);
    expect(repo.file(tip, 'src/lib/release.ts')).toBe(RELEASE_TS.replace('"20250301"', '"20250415"'));
    expect(repo.files(tip)['scripts/deploy.sh']).toBe('#!/bin/sh\nexec true\n');
    expect(repo.commit(tip)!.message).toMatch(
      /^chore\(release\): bump LATEST_ISO_DATE to 20250415\n\nLATEST_ISO_DATE: 20250301 -> 20250415 \(src\/lib\/release\.ts\)/,
    );

    // The PR names the release, targets main, and auto-merges by squash.
    expect(repo.pulls).toHaveLength(1);
    const pr = repo.pulls[0]!;
    expect(pr).toMatchObject({ number: 1, state: 'open', head: 'keel/release-20250415', base: 'main' });
    expect(pr.title).toBe('chore(release): bump LATEST_ISO_DATE to 20250415');
    expect(pr.body).toContain('Release **20250415**');
    expect(pr.body).toContain('https://github.com/acme/os/actions/runs/4242');
    expect(pr.autoMerge?.mergeMethod).toBe('SQUASH');

    // Through the Git Data API and GraphQL, never the contents PUT; the token masked and never printed.
    expect(writes().map((w) => `${w.method} ${w.path}`)).toEqual([
      'POST /repos/acme/created/git/trees',
      'POST /repos/acme/created/git/commits',
      'POST /repos/acme/created/git/refs',
      'POST /repos/acme/created/pulls',
      'POST /graphql',
    ]);
    expect(requests().every((q) => q.authorized)).toBe(true);
    expect(r.masked).toContain(TOKEN);
    expect(r.stdout.replace(/::add-mask::.*\n/g, '')).not.toContain(TOKEN);
    expect(r.stderr).not.toContain(TOKEN);
    expect(r.summary).toContain('20250415');
  });

  it('is idempotent: a re-run while the PR is open reports it (exists) and writes nothing', async () => {
    const repo = emu.state.repo('acme/created');
    const before = snapshot(repo);
    const r = await bump({ repository: 'acme/created', files: CANDIDATES });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({
      result: 'exists',
      'pr-number': '1',
      'pr-url': `${emu.url}/acme/created/pull/1`,
      'commit-sha': '',
    });
    expect(writes()).toEqual([]);
    unchanged(repo, before);
  });

  it('after the PR is merged, a re-run is up-to-date and writes nothing', async () => {
    const repo = emu.state.repo('acme/created');
    repo.mergePull(1, 'SQUASH');
    expect(repo.file('main', 'src/lib/release.ts')).toContain('"20250415"');
    const before = snapshot(repo);
    const r = await bump({ repository: 'acme/created', files: CANDIDATES });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ result: 'up-to-date', 'pr-number': '', 'pr-url': '' });
    expect(writes()).toEqual([]);
    unchanged(repo, before);
    expect(r.summary).toMatch(/Up to date/);
  });

  it('follows the constant when it moves to another candidate file (the anchor defect: the edit lands in the file that defines it)', async () => {
    const repo = emu.state.repo('acme/moved');
    // Site PR #182: the constants move from the route file to src/lib/release.ts.
    repo.commitFiles(
      'main',
      { 'src/lib/release.ts': RELEASE_TS, 'src/routes/index.tsx': INDEX_TSX },
      'Move release constants\n',
    );
    const main = repo.resolve('main')!;
    const r = await bump({
      repository: 'acme/moved',
      files: 'src/routes/index.tsx\nsrc/lib/release.ts',
      'extra-constants': 'LATEST_ISO_FILE=margine-20250415.iso',
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.result).toBe('created');
    const tip = repo.resolve('keel/release-20250415')!;
    expect(repo.changedFiles(main, tip)).toEqual(['src/lib/release.ts']);
    expect(repo.file(tip, 'src/lib/release.ts')).toBe(
      RELEASE_TS.replace('"20250301"', '"20250415"').replace("'margine-20250301.iso'", "'margine-20250415.iso'"),
    );
    expect(repo.file(tip, 'src/routes/index.tsx')).toBe(INDEX_TSX);
  });

  it('finds a constant that moved out of every candidate file by searching the repository, with a warning', async () => {
    const repo = emu.state.repo('acme/stale-files');
    const main = repo.resolve('main')!;
    const r = await bump({ repository: 'acme/stale-files', files: 'src/routes/index.tsx' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.result).toBe('created');
    expect(warnings(r).join('\n')).toMatch(
      /LATEST_ISO_DATE is defined in src\/lib\/release\.ts:2, which is not in 'files'/,
    );
    expect(repo.changedFiles(main, repo.resolve('keel/release-20250415')!)).toEqual(['src/lib/release.ts']);
  });

  it('searches the repository when no files are given (binary and lock files skipped)', async () => {
    const repo = emu.state.repo('acme/search');
    const main = repo.resolve('main')!;
    const r = await bump({ repository: 'acme/search', 'auto-merge': 'false' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ result: 'created', 'auto-merge-enabled': 'false' });
    expect(repo.changedFiles(main, repo.resolve('keel/release-20250415')!)).toEqual(['src/lib/release.ts']);
    expect(repo.pulls[0]!.autoMerge).toBeNull();
    // Source-like files only: not the PNG, not the README.
    const byBlob = new Map(
      Object.entries(repo.files(main)).map(([p]) => [repo.flatten(repo.commit(main)!.tree).get(p)!.sha, p]),
    );
    const read = requests()
      .filter((q) => q.method === 'GET' && q.path.includes('/git/blobs/'))
      .map((q) => byBlob.get(q.path.split('/').pop()!));
    expect(read.sort()).toEqual(['package.json', 'scripts/deploy.sh', 'src/lib/release.ts', 'src/routes/index.tsx']);
    expect(writes().some((w) => w.path === '/graphql')).toBe(false);
  });

  it('fails listing every definition when the constant is defined twice, and writes nothing', async () => {
    const repo = emu.state.repo('acme/twice');
    const before = snapshot(repo);
    const r = await bump({ repository: 'acme/twice', files: CANDIDATES });
    expect(r.code).toBe(1);
    expect(r.outputs.result ?? '').toBe('');
    const msg = errors(r).join('\n');
    expect(msg).toMatch(/LATEST_ISO_DATE is defined 2 times in acme\/twice@main/);
    expect(msg).toContain('src/lib/release.ts:2');
    expect(msg).toContain('src/routes/index.tsx:1');
    expect(writes()).toEqual([]);
    unchanged(repo, before);
    expect(r.summary).toMatch(/Failed/);
  });

  it('leaves the PR open with a warning when the repository does not allow auto-merge', async () => {
    const repo = emu.state.repo('acme/no-automerge');
    const r = await bump({ repository: 'acme/no-automerge', files: CANDIDATES });
    expect(r.code).toBe(0);
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ result: 'created', 'pr-number': '1', 'auto-merge-enabled': 'false' });
    expect(warnings(r).join('\n')).toMatch(
      /could not enable auto-merge on #1 \(Pull request Auto merge is not allowed for this repository\); the pull request stays open/,
    );
    expect(repo.pulls[0]).toMatchObject({ state: 'open', autoMerge: null });
    expect(r.summary).toMatch(/refused/);
  });

  it('retries API 5xx (and a lost answer to a POST) through the retry policy, ending with one branch and one PR', async () => {
    const repo = emu.state.repo('acme/flaky');
    const main = repo.resolve('main')!;
    emu.setFaults([
      { method: 'GET', path: /\/git\/ref\/heads/, times: 2, status: 502 },
      { method: 'POST', path: /\/git\/trees$/, times: 1, status: 503, retryAfter: 0 },
      // The PR is created but the answer is lost: the retry meets "already exists" and adopts it.
      { method: 'POST', path: /\/pulls$/, times: 1, status: 502, when: 'after' },
      { method: 'POST', path: /^\/graphql$/, times: 1, status: 500 },
    ]);
    const r = await bump({ repository: 'acme/flaky', files: CANDIDATES });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ result: 'created', 'pr-number': '1', 'auto-merge-enabled': 'true' });
    expect(repo.branches()).toEqual(['keel/release-20250415', 'main']);
    expect(repo.pulls).toHaveLength(1);
    expect(repo.pulls[0]!.autoMerge?.mergeMethod).toBe('SQUASH');
    expect(repo.changedFiles(main, repo.resolve('keel/release-20250415')!)).toEqual(['src/lib/release.ts']);
    const count = (re: RegExp) => requests().filter((q) => re.test(`${q.method} ${q.path}`)).length;
    expect(count(/^GET \/repos\/acme\/flaky\/git\/ref\/heads/)).toBe(3);
    expect(count(/^POST .*\/git\/trees$/)).toBe(2);
    expect(count(/^POST .*\/pulls$/)).toBe(2);
    expect(count(/^POST \/graphql$/)).toBe(2);
    expect(warnings(r).filter((w) => /retrying/.test(w)).length).toBe(5);
  });

  it('gives up after a bounded number of attempts when the API stays down, before writing anything', async () => {
    const repo = emu.state.repo('acme/down');
    const before = snapshot(repo);
    emu.setFaults([{ path: /^\/repos\/acme\/down$/, status: 500 }]);
    const r = await bump({ repository: 'acme/down' });
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(
      /GET \/repos\/\{owner\}\/\{repo\}: gave up after 5 attempts: HTTP 500: Server Error/,
    );
    expect(requests().length).toBe(5);
    unchanged(repo, before);
  });

  it('fails at once on a 4xx with GitHub’s message (no retry), leaving no branch behind', async () => {
    const repo = emu.state.repo('acme/forbidden');
    const before = snapshot(repo);
    emu.setFaults([
      {
        method: 'POST',
        path: /\/git\/trees$/,
        status: 403,
        body: { message: 'Resource not accessible by personal access token', status: '403' },
      },
    ]);
    const r = await bump({ repository: 'acme/forbidden', files: CANDIDATES });
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual(['POST tree: HTTP 403: Resource not accessible by personal access token']);
    expect(writes().map((w) => w.path)).toEqual(['/repos/acme/forbidden/git/trees']);
    unchanged(repo, before);
  });

  it('moves several constants in different files together, in one commit', async () => {
    const repo = emu.state.repo('acme/multi');
    const main = repo.resolve('main')!;
    const r = await bump({
      repository: 'acme/multi',
      'extra-constants': '# the ISO name moves with the date\nLATEST_ISO_FILE=margine-20250415.iso',
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.result).toBe('created');
    const tip = repo.resolve('keel/release-20250415')!;
    expect(repo.commit(tip)!.parents).toEqual([main]);
    expect(repo.changedFiles(main, tip)).toEqual(['src/config/iso.yaml', 'src/lib/release.ts']);
    expect(repo.file(tip, 'src/config/iso.yaml')).toBe('iso:\n  LATEST_ISO_FILE: margine-20250415.iso\n');
    expect(repo.file(tip, 'src/lib/release.ts')).toBe('export const LATEST_ISO_DATE = "20250415";\n');
    expect(repo.pulls[0]!.title).toBe('chore(release): bump LATEST_ISO_DATE to 20250415 (with LATEST_ISO_FILE)');
  });

  it('works against GitHub Enterprise Server URLs (REST /api/v3, GraphQL /api/graphql)', async () => {
    const repo = emu.state.repo('acme/ghes');
    const r = await bump({ repository: 'acme/ghes', files: CANDIDATES, 'api-url': `${emu.ghesUrl}/` });
    expect(errors(r)).toEqual([]);
    expect(r.outputs).toMatchObject({ result: 'created', 'auto-merge-enabled': 'true' });
    expect(requests().every((q) => q.path.startsWith('/api/'))).toBe(true);
    expect(writes().at(-1)!.path).toBe('/api/graphql');
    expect(repo.pulls[0]!.autoMerge).not.toBeNull();
  });

  it('finishes the job when an earlier run left the branch but no PR', async () => {
    const repo = emu.state.repo('acme/leftover');
    const main = repo.resolve('main')!;
    repo.refs.set('refs/heads/keel/release-20250415', main);
    const r = await bump({ repository: 'acme/leftover', files: CANDIDATES });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.result).toBe('created');
    expect(warnings(r).join('\n')).toMatch(/branch keel\/release-20250415 already exists without an open pull request/);
    expect(repo.changedFiles(main, repo.resolve('keel/release-20250415')!)).toEqual(['src/lib/release.ts']);
    expect(repo.pulls).toHaveLength(1);
  });

  it('reads a candidate file over 1 MB through the blob API and rewrites only its value', async () => {
    const repo = emu.state.repo('acme/big');
    const main = repo.resolve('main')!;
    expect(BIG_RELEASE_TS.length).toBeGreaterThan(1024 * 1024);
    const r = await bump({ repository: 'acme/big', files: 'src/lib/release.ts' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.result).toBe('created');
    const tip = repo.resolve('keel/release-20250415')!;
    expect(repo.changedFiles(main, tip)).toEqual(['src/lib/release.ts']);
    expect(repo.file(tip, 'src/lib/release.ts')).toBe(BIG_RELEASE_TS.replace('"20250301"', '"20250415"'));
    expect(requests().some((q) => q.path.includes('/git/blobs/'))).toBe(true);
  });

  describe('bad input fails naming the input, before any side effect', () => {
    it.each([
      [
        'repository',
        { repository: 'acme' },
        `Input 'repository' has value "acme": expected owner/name of the site repository on GitHub`,
      ],
      [
        'repository',
        { repository: 'acme/site/extra' },
        `Input 'repository' has value "acme/site/extra": expected owner/name of the site repository on GitHub`,
      ],
      [
        'constant',
        { repository: 'acme/created', constant: 'LATEST-ISO' },
        `Input 'constant' has value "LATEST-ISO": expected a constant name (letters, digits, _ and $, not starting with a digit)`,
      ],
      [
        'api-url',
        { repository: 'acme/created', 'api-url': 'ftp://x' },
        /^Input 'api-url' has value "ftp:\/\/x": scheme ftp is not https: expected the https URL/,
      ],
      [
        'extra-constants',
        { repository: 'acme/created', 'extra-constants': 'LATEST_ISO_FILE' },
        /^Input 'extra-constants' has value "LATEST_ISO_FILE": expected newline-separated NAME=value lines/,
      ],
      [
        'value',
        { repository: 'acme/created', value: '2025 04 15' },
        /^Input 'value' has value "2025 04 15": the branch "keel\/release-2025 04 15" contains a space/,
      ],
      [
        'auto-merge',
        { repository: 'acme/created', 'auto-merge': 'yes' },
        `Input 'auto-merge' has value "yes": expected true or false`,
      ],
    ])('%s', async (_name, inputs, message) => {
      const r = await bump(inputs as Record<string, string>);
      expect(r.code).toBe(1);
      expect(errors(r)).toHaveLength(1);
      if (typeof message === 'string') expect(errors(r)[0]).toBe(message);
      else expect(errors(r)[0]).toMatch(message);
      expect(requests()).toEqual([]);
      expect(r.summary).toContain(`Failed: ${errors(r)[0]!.slice(0, 20)}`);
    });

    it('a value that is not a date where the current value is one: fails naming the input, writes nothing', async () => {
      const repo = emu.state.repo('acme/created');
      const before = snapshot(repo);
      const r = await bump({ repository: 'acme/created', value: '2025-05-01', files: CANDIDATES });
      expect(r.code).toBe(1);
      expect(errors(r)).toEqual([
        `Input 'value' has value "2025-05-01": expected a UTC date YYYYMMDD, like the current value "20250415" in src/lib/release.ts:2`,
      ]);
      expect(writes()).toEqual([]);
      unchanged(repo, before);
    });

    it('a missing base branch or repository: a clear message, nothing written', async () => {
      const r1 = await bump({ repository: 'acme/created', base: 'release' });
      expect(errors(r1)).toEqual([`base branch 'release' does not exist in acme/created`]);
      const r2 = await bump({ repository: 'acme/missing' });
      expect(errors(r2)).toEqual(['repository acme/missing does not exist, or the token cannot read it']);
      const r3 = await bump({ repository: 'acme/created', token: 'ghp_wrong' });
      expect(errors(r3)).toEqual(['GET repository acme/created: HTTP 401: Bad credentials (check the token)']);
      expect(writes()).toEqual([]);
    });
  });
});
