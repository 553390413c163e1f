import { UserError } from '../../lib/errors.js';
import { api, orMissing, type Octokit } from '../../lib/github.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import { mapLimit } from '../../lib/pool.js';
import { tagProblem } from '../../lib/tags.js';

/**
 * Where a repository's tags come from and how a manifest is deleted. Both backends delete whole
 * manifests (every tag on one goes with it): the registry API (`DELETE /v2/<name>/manifests/<digest>`)
 * and GitHub Packages (a package version is a manifest with all its tags).
 */
export interface Backend {
  name: 'registry' | 'github-packages';
  /** Completes "…; <deletesWhat>, so deleting it would remove that too". */
  deletesWhat: string;
  /** tag → digest, every tag of the repository. */
  listTags(): Promise<Map<string, string>>;
  /** Deletes one manifest by digest; false when it was already gone. */
  deleteDigest(digest: string): Promise<boolean>;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** The registry API: tags listed (paginated), each resolved with a HEAD. */
export function registryBackend(client: RegistryClient, repo: string): Backend {
  return {
    name: 'registry',
    deletesWhat: 'this registry deletes manifests, not tags',
    async listTags() {
      const tags = (await client.listTags(repo)).filter((t) => !tagProblem(t) || t === 'latest');
      const heads = await mapLimit(tags, 8, (t) => client.headManifest(repo, t));
      const out = new Map<string, string>();
      tags.forEach((t, i) => {
        const d = heads[i]?.digest;
        // A tag deleted between the listing and its HEAD is simply not there any more.
        if (d && DIGEST.test(d)) out.set(t, d);
      });
      return out;
    },
    deleteDigest: (digest) => client.deleteManifest(repo, digest),
  };
}

export interface PackageRef {
  owner: string;
  /** The package name: the repository path below the owner (`os`, or `distro/os`). */
  name: string;
}

/** ghcr.io/OWNER/NAME[/MORE] → owner OWNER, package NAME[/MORE]. */
export function packageOf(repository: string): PackageRef | undefined {
  const i = repository.indexOf('/');
  if (i <= 0 || i === repository.length - 1) return undefined;
  return { owner: repository.slice(0, i), name: repository.slice(i + 1) };
}

interface Version {
  id: number;
  name: string;
  metadata?: { container?: { tags?: string[] } };
}

/**
 * GitHub Packages: the package's versions (each a manifest digest with its tags), deleted by
 * version id. Whether the owner is an organization or a user is asked of the API, never assumed.
 */
export async function githubPackagesBackend(octokit: Octokit, pkg: PackageRef, log: Logger): Promise<Backend> {
  const owner = await api(
    `GET /users/${pkg.owner}`,
    () => octokit.rest.users.getByUsername({ username: pkg.owner }),
    () => new UserError(`GitHub knows no user or organization '${pkg.owner}' (from the image's repository path)`),
  );
  const isOrg = owner.data.type === 'Organization';
  const base = { package_type: 'container' as const, package_name: pkg.name };
  const where = `${isOrg ? 'organization' : 'user'} ${pkg.owner}`;
  log.info(`GitHub Packages: container package ${pkg.name} of ${where}`);
  const notFound = () =>
    new UserError(
      `GitHub Packages has no container package '${pkg.name}' for ${where}, or the token cannot read it (it needs read:packages and delete:packages, or a GITHUB_TOKEN with packages: write on a package linked to this repository)`,
    );
  const ids = new Map<string, number>();
  return {
    name: 'github-packages',
    deletesWhat: 'a package version carries every tag of its manifest',
    async listTags() {
      const versions: Version[] = await api(
        `list versions of ${pkg.name}`,
        () =>
          isOrg
            ? octokit.paginate(octokit.rest.packages.getAllPackageVersionsForPackageOwnedByOrg, {
                ...base,
                org: pkg.owner,
                state: 'active',
                per_page: 100,
              })
            : octokit.paginate(octokit.rest.packages.getAllPackageVersionsForPackageOwnedByUser, {
                ...base,
                username: pkg.owner,
                per_page: 100,
              }),
        notFound,
      );
      const out = new Map<string, string>();
      ids.clear();
      for (const v of versions) {
        if (!DIGEST.test(v.name) || !Number.isSafeInteger(v.id)) continue;
        ids.set(v.name, v.id);
        for (const t of v.metadata?.container?.tags ?? []) if (!tagProblem(t) || t === 'latest') out.set(t, v.name);
      }
      return out;
    },
    async deleteDigest(digest) {
      const id = ids.get(digest);
      if (id === undefined) return false;
      const done = await orMissing(`delete version ${id} (${digest}) of ${pkg.name}`, () =>
        isOrg
          ? octokit.rest.packages.deletePackageVersionForOrg({ ...base, org: pkg.owner, package_version_id: id })
          : octokit.rest.packages.deletePackageVersionForUser({ ...base, username: pkg.owner, package_version_id: id }),
      );
      ids.delete(digest);
      return done !== undefined;
    },
  };
}
