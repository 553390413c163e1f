// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { getOctokit } from '@actions/github';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { packagesEmulator, type PackagesEmulator } from '../../emulators/github/packages.js';
import { workflowRunsEmulator, type WorkflowRunsEmulator } from '../../emulators/github/workflow-runs.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeOciImage, sh, skopeoDigest, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * The emulator's packages and Actions-runs areas checked through the client the actions ship
 * (Octokit's rest.packages / rest.actions / rest.users), with the packages backed by a real
 * docker-registry: a deleted version is a deleted manifest, as skopeo sees it.
 */
describe('GitHub emulator: packages and workflow runs', () => {
  const TOKEN = 'ghp_operationsEmulatorToken';
  let reg: Registry;
  let emu: GithubEmulator;
  let pk: PackagesEmulator;
  let wr: WorkflowRunsEmulator;
  const gh = () => getOctokit(TOKEN, { baseUrl: emu.url });
  const container = { package_type: 'container' as const };
  const push = (ref: string) => skopeoPush(`oci:${makeOciImage(tmpdir()).dir}:latest`, `${reg.host}/${ref}`);
  const tagsOf = (repo: string) =>
    (
      JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`])).Tags as string[]
    ).sort();

  beforeAll(async () => {
    reg = await startRegistry();
    pk = packagesEmulator({ registry: reg, accounts: { Acme: 'Organization', alice: 'User' } });
    wr = workflowRunsEmulator();
    emu = await startGithubEmulator({
      repos: { 'acme/os': { files: { 'README.md': '# os\n' } } },
      token: TOKEN,
      extensions: [pk.extension, wr.extension],
    });
  });
  afterAll(async () => {
    await emu.close();
    await reg.stop();
  });

  it('tells an organization from a user, as GitHub does', async () => {
    const o = gh();
    expect((await o.rest.users.getByUsername({ username: 'acme' })).data).toMatchObject({
      login: 'Acme',
      type: 'Organization',
    });
    expect((await o.rest.users.getByUsername({ username: 'alice' })).data).toMatchObject({ type: 'User' });
    expect((await o.rest.orgs.get({ org: 'acme' })).data).toMatchObject({ login: 'Acme' });
    await expect(o.rest.orgs.get({ org: 'alice' })).rejects.toMatchObject({ status: 404 });
    await expect(o.rest.users.getByUsername({ username: 'nobody' })).rejects.toMatchObject({ status: 404 });
  });

  it('lists the versions of an organization package: every manifest with its tags, paginated', async () => {
    const stable = push('acme/os:stable');
    const pr = push('acme/os:pr-5');
    sh('skopeo', [
      'copy',
      '-q',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${reg.host}/acme/os:pr-5`,
      `docker://${reg.host}/acme/os:candidate.20260101`,
    ]);
    const o = gh();
    const pkg = await o.rest.packages.getPackageForOrganization({ ...container, package_name: 'os', org: 'acme' });
    expect(pkg.data).toMatchObject({
      name: 'os',
      package_type: 'container',
      version_count: 2,
      owner: { login: 'Acme', type: 'Organization' },
    });
    const versions = await o.paginate(o.rest.packages.getAllPackageVersionsForPackageOwnedByOrg, {
      ...container,
      package_name: 'os',
      org: 'acme',
      per_page: 1,
    });
    expect(versions).toHaveLength(2);
    const byDigest = new Map(versions.map((v) => [v.name, v.metadata?.container?.tags?.slice().sort()]));
    expect(byDigest.get(stable)).toEqual(['stable']);
    expect(byDigest.get(pr)).toEqual(['candidate.20260101', 'pr-5']);
    expect(new Set(versions.map((v) => v.id)).size).toBe(2);
    // The user path for an organization is a 404, as on GitHub (callers must ask which it is).
    await expect(
      o.rest.packages.getAllPackageVersionsForPackageOwnedByUser({
        ...container,
        package_name: 'os',
        username: 'acme',
      }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('deleting a version deletes the manifest in the registry, with every tag on it', async () => {
    const o = gh();
    const before = await o.rest.packages.getAllPackageVersionsForPackageOwnedByOrg({
      ...container,
      package_name: 'os',
      org: 'acme',
    });
    const prVersion = before.data.find((v) => v.metadata?.container?.tags?.includes('pr-5'))!;
    const del = await o.rest.packages.deletePackageVersionForOrg({
      ...container,
      package_name: 'os',
      org: 'acme',
      package_version_id: prVersion.id,
    });
    expect(del.status).toBe(204);
    expect(pk.deleted).toContain(`acme/os@${prVersion.name}`);
    expect(tagsOf('acme/os')).toEqual(['stable']);
    const after = await o.rest.packages.getAllPackageVersionsForPackageOwnedByOrg({
      ...container,
      package_name: 'os',
      org: 'acme',
    });
    expect(after.data.map((v) => v.name)).toEqual([skopeoDigest(`${reg.host}/acme/os:stable`)]);
    await expect(
      o.rest.packages.deletePackageVersionForOrg({
        ...container,
        package_name: 'os',
        org: 'acme',
        package_version_id: prVersion.id,
      }),
    ).rejects.toMatchObject({ status: 404 });
    // GitHub refuses to delete the last version of a package.
    await expect(
      o.rest.packages.deletePackageVersionForOrg({
        ...container,
        package_name: 'os',
        org: 'acme',
        package_version_id: after.data[0]!.id,
      }),
    ).rejects.toMatchObject({ status: 400 });
    // Packages endpoints need a token, even to read.
    expect((await fetch(`${emu.url}/orgs/acme/packages/container/os/versions`)).status).toBe(401);
  });

  it('serves user packages with nested names (package_name distro/os is sent as distro%2Fos)', async () => {
    const a = push('alice/distro/os:stable');
    const b = push('alice/distro/os:pr-2');
    const o = gh();
    const versions = await o.rest.packages.getAllPackageVersionsForPackageOwnedByUser({
      ...container,
      package_name: 'distro/os',
      username: 'alice',
    });
    expect(versions.data.map((v) => v.name).sort()).toEqual([a, b].sort());
    const pr = versions.data.find((v) => v.name === b)!;
    await o.rest.packages.deletePackageVersionForUser({
      ...container,
      package_name: 'distro/os',
      username: 'alice',
      package_version_id: pr.id,
    });
    expect(tagsOf('alice/distro/os')).toEqual(['stable']);
    await expect(
      o.rest.packages.getPackageForOrganization({ ...container, package_name: 'distro/os', org: 'alice' }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('lists runs and jobs with step conclusions, and re-runs failed jobs once as a new attempt', async () => {
    const o = gh();
    const head = emu.state.repo('acme/os').resolve('main')!;
    const older = wr.addRun({
      repository: 'acme/os',
      workflow: 'build.yml',
      event: 'push',
      branch: 'main',
      headSha: head,
      jobs: [{ name: 'build', conclusion: 'success', steps: [{ name: 'Build', conclusion: 'success' }] }],
    });
    const run = wr.addRun({
      repository: 'acme/os',
      workflow: 'build.yml',
      event: 'schedule',
      branch: 'main',
      headSha: head,
      jobs: [
        { name: 'build', conclusion: 'success', steps: [{ name: 'Build', conclusion: 'success' }] },
        {
          name: 'push',
          conclusion: 'failure',
          steps: [
            { name: 'Push [transient]', conclusion: 'failure' },
            { name: 'Sign', conclusion: 'skipped' },
          ],
        },
      ],
    });
    wr.addRun({ repository: 'acme/os', workflow: 'other.yml', event: 'push', branch: 'main', headSha: head, jobs: [] });
    const list = await o.rest.actions.listWorkflowRuns({
      owner: 'acme',
      repo: 'os',
      workflow_id: 'build.yml',
      branch: 'main',
    });
    expect(list.data.total_count).toBe(2);
    expect(list.data.workflow_runs.map((r) => [r.id, r.conclusion, r.run_attempt])).toEqual([
      [run.id, 'failure', 1],
      [older.id, 'success', 1],
    ]);
    expect(
      (
        await o.rest.actions.listWorkflowRuns({ owner: 'acme', repo: 'os', workflow_id: 'build.yml', event: 'push' })
      ).data.workflow_runs.map((r) => r.id),
    ).toEqual([older.id]);
    const jobs = await o.rest.actions.listJobsForWorkflowRun({ owner: 'acme', repo: 'os', run_id: run.id });
    expect(jobs.data.jobs.map((j) => [j.name, j.conclusion, j.steps?.map((s) => [s.name, s.conclusion])])).toEqual([
      ['build', 'success', [['Build', 'success']]],
      [
        'push',
        'failure',
        [
          ['Push [transient]', 'failure'],
          ['Sign', 'skipped'],
        ],
      ],
    ]);

    expect((await o.rest.actions.reRunWorkflowFailedJobs({ owner: 'acme', repo: 'os', run_id: run.id })).status).toBe(
      201,
    );
    const again = (await o.rest.actions.getWorkflowRun({ owner: 'acme', repo: 'os', run_id: run.id })).data;
    expect([again.run_attempt, again.status, again.conclusion]).toEqual([2, 'queued', null]);
    await expect(
      o.rest.actions.reRunWorkflowFailedJobs({ owner: 'acme', repo: 'os', run_id: run.id }),
    ).rejects.toMatchObject({ status: 403 });
    wr.finishAttempt(run.id, { push: 'success' });
    const done = (await o.rest.actions.getWorkflowRun({ owner: 'acme', repo: 'os', run_id: run.id })).data;
    expect([done.run_attempt, done.status, done.conclusion]).toEqual([2, 'completed', 'success']);
    const all = await o.rest.actions.listJobsForWorkflowRun({
      owner: 'acme',
      repo: 'os',
      run_id: run.id,
      filter: 'all',
    });
    expect(all.data.jobs.map((j) => [j.name, j.run_attempt, j.conclusion])).toEqual([
      ['build', 1, 'success'],
      ['push', 1, 'failure'],
      ['build', 2, 'success'],
      ['push', 2, 'success'],
    ]);
    await expect(
      o.rest.actions.reRunWorkflowFailedJobs({ owner: 'acme', repo: 'os', run_id: older.id }),
    ).rejects.toMatchObject({ status: 403 });
    expect(wr.reruns).toEqual([{ runId: run.id, attempt: 2 }]);
  });
});
