/**
 * Keel's signature library: the public surface other hops use.
 *
 *   import { verifyImage, readPublicKey } from '../../lib/sign/index.js';
 *   const { key } = readPublicKey(inputs['public-key']);          // PEM contents or a .pub path
 *   const r = await verifyImage(client, ref, key);                 // ref = repo@sha256:…
 *   if (!r.verified) throw new UserError(`${ref} is not signed with the given key: ${r.reason}`);
 *
 * `verifyImage` applies containers/image's `sigstoreSigned` rules (what bootc/rpm-ostree/podman
 * enforce) to cosign's legacy `.sig` signatures, and optionally checks cosign-3 bundles; see
 * verify.ts. Signing, key files and the client configuration live in the sibling modules.
 */
export {
  verifyImage,
  type VerifyOptions,
  type VerifyResult,
  type VerifyFormat,
  type DigestVerification,
  type SignatureCheck,
} from './verify.js';
export { identityMatches, MATCH_REPOSITORY, type SignedIdentity } from './identity.js';
export { readPublicKey, parsePublicKey, keyId } from './keys.js';
