import { parseReference, type ImageReference } from '../oci/reference.js';

/**
 * policy.json `signedIdentity` rules, as containers/image evaluates them
 * (signature/policy_reference_match.go). "intended" is the reference the client pulls
 * (repo:tag or repo@digest); "signed" is the payload's `docker-reference`.
 *
 * - matchRepository: same repository (what Keel's client policy uses: cosign-style repo-only
 *   identities and tag identities both pass).
 * - matchRepoDigestOrExact (c/image's default): a repo-only identity is ALWAYS rejected; pulled by
 *   tag, the identity must be exactly repo:tag; pulled by digest, the repositories must match.
 * - matchExact: both must carry a tag/digest and be equal.
 * - exactReference / exactRepository: compare with a fixed reference / repository instead of the
 *   pulled one.
 */
export type SignedIdentity =
  | { type: 'matchRepository' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchExact' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string };

export const MATCH_REPOSITORY: SignedIdentity = { type: 'matchRepository' };

/** reference.ParseNormalizedNamed: a name with optional tag and/or digest; undefined when invalid. */
function parseNamed(s: string): ImageReference | undefined {
  try {
    return parseReference(s, { requireTagOrDigest: false });
  } catch {
    return undefined;
  }
}

const isNameOnly = (r: ImageReference) => !r.tag && !r.digest;

/** Does the signed `docker-reference` satisfy the rule for a client pulling `intended`? */
export function identityMatches(rule: SignedIdentity, intended: ImageReference, signedReference: string): boolean {
  const signed = parseNamed(signedReference);
  if (!signed) return false;
  switch (rule.type) {
    case 'matchRepository':
      return signed.name === intended.name;
    case 'matchRepoDigestOrExact':
      if (isNameOnly(signed)) return false;
      if (intended.tag) return signed.toString() === intended.toString();
      if (intended.digest) return signed.name === intended.name;
      return false;
    case 'matchExact':
      if (isNameOnly(intended) || isNameOnly(signed)) return false;
      return signed.toString() === intended.toString();
    case 'exactReference': {
      const want = parseNamed(rule.dockerReference);
      if (!want || isNameOnly(want) || isNameOnly(signed)) return false;
      return signed.toString() === want.toString();
    }
    case 'exactRepository': {
      const want = parseNamed(rule.dockerRepository);
      return !!want && signed.name === want.name;
    }
  }
}

export function describeIdentity(rule: SignedIdentity): string {
  switch (rule.type) {
    case 'exactReference':
      return `exactReference ${rule.dockerReference}`;
    case 'exactRepository':
      return `exactRepository ${rule.dockerRepository}`;
    default:
      return rule.type;
  }
}
