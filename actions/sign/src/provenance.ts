import { PackageURL } from 'packageurl-js';
import type { RunContext } from '../../lib/context.js';

/**
 * SLSA v1 provenance (https://slsa.dev/provenance/v1) of the run that built and signs an image,
 * in GitHub's workflow build type (the one actions/attest-build-provenance writes), so the usual
 * verifiers read it: the builder (the workflow at its ref), the repository and commit, the
 * run id and attempt, the workflow inputs, and the resolved dependencies the image records
 * (its base image digest) or the caller knows (the Containerfile's digest).
 */
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const GITHUB_BUILD_TYPE = 'https://actions.github.io/buildtypes/workflow/v1';

export interface ProvenanceFacts {
  context: RunContext;
  /** Labels of the image (org.opencontainers.image.base.name / .base.digest are read). */
  labels: Record<string, string>;
  /** The Containerfile the image was built from, when given: repository path and SHA-256. */
  containerfile?: { path: string; sha256: string };
}

interface ResourceDescriptor {
  uri?: string;
  name?: string;
  digest: Record<string, string>;
  annotations?: Record<string, string>;
}

/** pkg:oci purl of the base image (`name` may carry a tag: it goes into the annotation). */
function baseImage(labels: Record<string, string>): ResourceDescriptor | undefined {
  const digest = labels['org.opencontainers.image.base.digest'];
  if (!digest || !/^sha256:[a-f0-9]{64}$/.test(digest)) return undefined;
  const name = labels['org.opencontainers.image.base.name'] ?? '';
  const repo = name.replace(/@.*$/, '').replace(/:[^:/]+$/, '');
  const last = repo.split('/').pop() || 'base';
  const qualifiers = repo ? { repository_url: repo } : undefined;
  return {
    uri: new PackageURL('oci', undefined, last.toLowerCase(), digest, qualifiers, undefined).toString(),
    name: 'base-image',
    digest: { sha256: digest.slice('sha256:'.length) },
    ...(name ? { annotations: { 'org.opencontainers.image.base.name': name } } : {}),
  };
}

export function slsaProvenance(f: ProvenanceFacts): Record<string, unknown> {
  const c = f.context;
  const w = c.workflow;
  const repoUrl = c.repository ? `${c.serverUrl}/${c.repository}` : '';
  const at = w.workflowRef.indexOf('@');
  const workflowPath = at > 0 ? w.workflowRef.slice(c.repository.length + 1, at) : '';
  const inputs = (c.event.inputs ?? undefined) as Record<string, unknown> | undefined;
  const deps: ResourceDescriptor[] = [];
  if (repoUrl && c.sha) deps.push({ uri: `git+${repoUrl}@${w.ref || c.sha}`, digest: { gitCommit: c.sha } });
  const base = baseImage(f.labels);
  if (base) deps.push(base);
  if (f.containerfile) {
    deps.push({
      name: f.containerfile.path,
      ...(repoUrl && c.sha ? { uri: `git+${repoUrl}@${c.sha}#${f.containerfile.path}` } : {}),
      digest: { sha256: f.containerfile.sha256 },
    });
  }
  return {
    buildDefinition: {
      buildType: GITHUB_BUILD_TYPE,
      externalParameters: {
        workflow: { ref: at > 0 ? w.workflowRef.slice(at + 1) : w.ref, repository: repoUrl, path: workflowPath },
        ...(inputs && typeof inputs === 'object' ? { inputs } : {}),
      },
      internalParameters: {
        github: {
          event_name: c.eventName,
          repository_id: w.repositoryId,
          repository_owner_id: w.repositoryOwnerId,
          runner_environment: w.runnerEnvironment,
        },
      },
      resolvedDependencies: deps,
    },
    runDetails: {
      // Outside GitHub Actions (keel run) there is no workflow to name: say so, do not invent one.
      builder: { id: w.workflowRef ? `${c.serverUrl}/${w.workflowRef}` : 'urn:keel:local-run' },
      metadata: {
        invocationId:
          repoUrl && c.runId
            ? `${repoUrl}/actions/runs/${c.runId}/attempts/${w.runAttempt || '1'}`
            : `urn:keel:local-run:${c.runId || 'unknown'}`,
      },
    },
  };
}
