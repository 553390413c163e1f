import fs from 'node:fs';
import path from 'node:path';

/**
 * The one place third-party actions are pinned: `owner/repo@<full commit SHA> # vX.Y.Z`. Never a
 * tag or a branch (a moved tag would run other code with this workflow's secrets).
 *
 * Where the SHAs come from (GitHub itself is not reachable from this workplace): each SHA was
 * found in several unrelated public repositories' workflows and pin lists in the public code
 * index, always with the same version comment, e.g. a Flutter repository's test asserting
 * `actions/checkout@11bd7190… # v4.2.2`, `actions/upload-artifact@ea165f8d… # v4.6.2` and
 * `actions/download-artifact@d3f86a10… # v4.3.0` in its workflow, and a security write-up noting
 * "These correspond to checkout v4.2.2 and upload-artifact v4.6.2". They are the commits the
 * v4.2.2 / v4.6.2 / v4.3.0 release tags point at. Renovate/Dependabot can keep them current.
 */
export interface Pin {
  /** owner/repo (or owner/repo/path). */
  action: string;
  /** Full 40-hex commit SHA. */
  sha: string;
  /** The release the SHA is, written as a trailing comment. */
  version: string;
}

export const pins = {
  checkout: { action: 'actions/checkout', sha: '11bd71901bbe5b1630ceea73d27597364c9af683', version: 'v4.2.2' },
  uploadArtifact: {
    action: 'actions/upload-artifact',
    sha: 'ea165f8d65b6e75b540449e92b4886f43607fa02',
    version: 'v4.6.2',
  },
  // v4.1.0+ has `run-id` + `github-token` (download from another run, e.g. the build that
  // triggered a workflow_run).
  downloadArtifact: {
    action: 'actions/download-artifact',
    sha: 'd3f86a106a0bac45b974a628896c90dbdf5c8093',
    version: 'v4.3.0',
  },
  // Grype, reading Keel's CycloneDX SBOM (`sbom:` input). Pinned to the v7.4.0 commit, found with
  // that version in several unrelated repositories' workflows and pin tables.
  grypeScan: {
    action: 'anchore/scan-action',
    sha: 'e1165082ffb1fe366ebaf02d8526e7c4989ea9d2',
    version: 'v7.4.0',
  },
} as const satisfies Record<string, Pin>;

export const usesText = (p: Pin) => `${p.action}@${p.sha}`;

/**
 * Keel's own actions as the reusable workflows reference them: by the full SHA of the commit
 * whose dist/ they run, stamped into KEEL_RELEASE_FILE by `keel release` (cli/commands/release.ts),
 * with the release version as the trailing comment. A moving tag (`@v0`) appears only in docs.
 */
export const KEEL_REPO = 'keel-project/keel';
export const KEEL_RELEASE_FILE = 'workflows-src/keel-release.json';

export interface KeelRelease {
  /** Full 40-hex commit SHA whose actions/ and dist/ the reusable workflows run. */
  sha: string;
  /** The release it is, vX.Y.Z (the trailing comment). */
  version: string;
}

export function parseKeelRelease(text: string, file = KEEL_RELEASE_FILE): KeelRelease {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const r = raw as Partial<KeelRelease>;
  if (typeof r.sha !== 'string' || !/^[0-9a-f]{40}$/.test(r.sha))
    throw new Error(`${file}: sha must be a full 40-hex commit SHA (run: keel release)`);
  if (typeof r.version !== 'string' || !/^v\d+\.\d+\.\d+$/.test(r.version))
    throw new Error(`${file}: version must be vX.Y.Z`);
  return { sha: r.sha, version: r.version };
}

export function loadKeelRelease(root: string): KeelRelease {
  const file = path.join(root, KEEL_RELEASE_FILE);
  if (!fs.existsSync(file)) throw new Error(`${KEEL_RELEASE_FILE} is missing: run keel release`);
  return parseKeelRelease(fs.readFileSync(file, 'utf8'));
}

export const keelRemoteUses = (hop: string, release: KeelRelease) => `${KEEL_REPO}/actions/${hop}@${release.sha}`;
export const keelLocalUses = (hop: string) => `./actions/${hop}`;
