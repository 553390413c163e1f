import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { DSSEBundleBuilder, type Signer, type Witness } from '@sigstore/sign';
import { cosignStatement, PAYLOAD_TYPE_INTOTO } from './bundle.js';

/**
 * Creating cosign-3 bundles (kept apart from bundle.ts so that verifiers do not bundle
 * @sigstore/sign).
 */

/**
 * Signs the statement for `digest` into a bundle (JSON bytes). The DSSE `keyid` is removed:
 * sigstore-go/cosign skip a signature whose keyid does not match theirs (it is not signed anyway).
 */
export async function createBundle(signer: Signer, witnesses: Witness[], digest: string): Promise<Buffer> {
  const builder = new DSSEBundleBuilder({ signer, witnesses });
  const bundle = await builder.create({ data: cosignStatement(digest), type: PAYLOAD_TYPE_INTOTO });
  const json = bundleToJSON(bundle) as SerializedBundle;
  if (json.dsseEnvelope) {
    for (const s of json.dsseEnvelope.signatures) delete (s as { keyid?: string }).keyid;
  }
  return Buffer.from(JSON.stringify(json));
}
