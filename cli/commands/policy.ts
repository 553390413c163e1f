import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../actions/lib/errors.js';
import { renderClientConfig, type ClientConfig } from '../../actions/lib/sign/client-config.js';
import { parsePublicKeyInput } from '../../actions/lib/signature-gate.js';

/**
 * `keel policy`: the client files that make bootc/rpm-ostree/podman ENFORCE Keel's signatures
 * for one image, written under `outDir` mirroring the client's absolute paths:
 *   <outDir>/etc/containers/policy.json
 *   <outDir>/etc/containers/registries.d/<name>.yaml
 *   <outDir>/<keyPath>                 (default etc/pki/containers/<name>.pub)
 * so a Containerfile can `COPY <outDir>/ /`. Returns the written paths, the instructions
 * (markdown: Containerfile lines, `bootc switch --enforce-container-sigpolicy`,
 * `ostree-image-signed:docker://…`) and warnings (e.g. a policy default bootc refuses).
 */
export interface PolicyOptions {
  /** registry/repo (a tag or digest is ignored). */
  image: string;
  /** The cosign public key file (cosign.pub) to ship. */
  publicKeyPath: string;
  outDir: string;
  /** Base name of the key and registries.d files (default: the repository's last component). */
  name?: string;
  /** Key path on the client (default /etc/pki/containers/<name>.pub). */
  keyPath?: string;
  /** The client's existing policy.json to merge into (its `default` is kept). */
  existingPolicyPath?: string;
  /** New policy only: accept unsigned images from other registries (default false). */
  acceptOtherRegistries?: boolean;
  /** Tag for the switch instructions (default stable). */
  tag?: string;
}

export interface PolicyResult {
  files: string[];
  instructions: string;
  warnings: string[];
  config: ClientConfig;
}

export async function policy(opts: PolicyOptions): Promise<PolicyResult> {
  if (!fs.existsSync(opts.publicKeyPath))
    throw new UserError(`policy: public key ${opts.publicKeyPath} does not exist`);
  const { pem } = parsePublicKeyInput(opts.publicKeyPath);
  let existingPolicy: string | undefined;
  if (opts.existingPolicyPath) {
    if (!fs.existsSync(opts.existingPolicyPath))
      throw new UserError(`policy: ${opts.existingPolicyPath} does not exist`);
    existingPolicy = fs.readFileSync(opts.existingPolicyPath, 'utf8');
  }
  const config = renderClientConfig({
    image: opts.image,
    name: opts.name,
    keyPath: opts.keyPath,
    publicKeyPem: pem,
    existingPolicy,
    acceptOtherRegistries: opts.acceptOtherRegistries,
    tag: opts.tag,
    sourceDir: opts.outDir,
  });
  const files: string[] = [];
  for (const f of config.files) {
    const dest = path.join(opts.outDir, f.path);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, f.content, { mode: f.mode });
    files.push(dest);
  }
  return { files, instructions: config.instructions, warnings: config.warnings, config };
}
