import type { Caller } from './callers.js';
import type { BaseChoice, DistroNames } from './declarations.js';

/**
 * KEEL-SETUP.md: what a person must do on GitHub before the first green release (keel init
 * cannot: it touches no account), in order, with the commands that do it.
 */
export interface ChecklistFacts {
  names: DistroNames;
  base: BaseChoice;
  image: string;
  environment: string;
  prLabel: string;
  callers: Caller[];
  commit: string;
  version: string;
}

export function checklistText(f: ChecklistFacts): string {
  const secrets = [...new Set(f.callers.flatMap((c) => c.secrets))].sort();
  const buildName = f.callers.find((c) => c.file === 'build.yml')?.name ?? 'build';
  const perms = f.callers.map(
    (c) =>
      `| \`.github/workflows/${c.file}\` | ${Object.entries(c.permissions)
        .map(([k, v]) => `\`${k}: ${v}\``)
        .join(', ')} | ${c.secrets.length ? c.secrets.map((s) => `\`${s}\``).join(', ') : '—'} |`,
  );
  const env = f.environment;
  return [
    `# ${f.names.title}: setting up the release pipeline`,
    '',
    `Scaffolded by \`keel init\` (Keel ${f.version}; the workflows call Keel's reusable workflows at`,
    `commit \`${f.commit}\`). Do these once, in order; \`OWNER/REPO\` is your GitHub repository.`,
    '',
    '## 1. Signing key',
    '',
    'Generate the key pair outside the repository, commit only the public half:',
    '',
    '```sh',
    'mkdir -p ~/keel-keys',
    `COSIGN_PASSWORD='a long passphrase' keel keygen --out-prefix ~/keel-keys/${f.names.name}`,
    `cp ~/keel-keys/${f.names.name}.pub cosign.pub && git add cosign.pub`,
    '```',
    '',
    `## 2. The \`${env}\` environment and its secrets`,
    '',
    `Every job that signs, promotes or publishes runs in the GitHub environment \`${env}\`. Create it,`,
    'allow only `main` to deploy to it (a pull request runs its own workflow files: repository',
    'secrets would be readable by any branch), then store the secrets in it, not in the repository:',
    '',
    '```sh',
    `gh api -X PUT repos/OWNER/REPO/environments/${env} \\`,
    "  -F 'deployment_branch_policy[protected_branches]=false' -F 'deployment_branch_policy[custom_branch_policies]=true'",
    `gh api -X POST repos/OWNER/REPO/environments/${env}/deployment-branch-policies -f name=main -f type=branch`,
    `gh secret set COSIGN_PRIVATE_KEY --env ${env} < ~/keel-keys/${f.names.name}.key`,
    `gh secret set COSIGN_PASSWORD --env ${env}            # the passphrase of step 1`,
    `gh secret set IA_ACCESS_KEY --env ${env}              # https://archive.org/account/s3.php`,
    `gh secret set IA_SECRET_KEY --env ${env}`,
    '```',
    '',
    `Secrets the called workflows read: ${secrets.map((s) => `\`${s}\``).join(', ')}` +
      (secrets.includes('SITE_BUMP_TOKEN')
        ? ' (`SITE_BUMP_TOKEN` only with a `site:` section in the declarations).'
        : '.'),
    'Optionally add required reviewers to the environment: every signature and promotion then waits',
    'for a person.',
    '',
    `## 3. The \`${f.prLabel}\` label`,
    '',
    `A pull request is built (as \`pr-<N>\`, never signed with the release key, never promoted) only`,
    `while it carries this label; a maintainer adds it after reading the change.`,
    '',
    '```sh',
    `gh label create ${f.prLabel} --description "Build and push this pull request as pr-<N>" --color 0E8A16`,
    '```',
    '',
    '## 4. Branch protection',
    '',
    'Protect `main`: changes through pull requests only, no force pushes. Optionally require the',
    `"${buildName}" check of labelled pull requests.`,
    '',
    '```sh',
    'gh api -X PUT repos/OWNER/REPO/branches/main/protection -F enforce_admins=true \\',
    "  -F 'required_pull_request_reviews[required_approving_review_count]=1' \\",
    '  -F required_status_checks=null -F restrictions=null -F allow_force_pushes=false',
    '```',
    '',
    '## 5. Registry',
    '',
    `The image goes to \`${f.image}\`. On ghcr.io the workflows push with the run's \`GITHUB_TOKEN\``,
    '(no extra secret); the first push creates the package: make it public (package settings) so',
    'machines can pull it without credentials. If your organisation restricts actions, allow',
    '`keel-project/keel` (Settings → Actions → General).',
    '',
    '## What each workflow needs',
    '',
    '| workflow | permissions of the calling job | secrets (from the environment) |',
    '|---|---|---|',
    ...perms,
    '',
    '## 6. Push',
    '',
    `Push to \`main\`: "${buildName}" builds, validates, rechunks, pushes and signs; the smoke-boot`,
    'workflow then boots that exact digest and promotes it to `stable`. Build the ISO with',
    '`gh workflow run build-disk.yml` (it also runs weekly).',
    ...(f.base.kind === 'debian'
      ? [
          '',
          'Note: the base is bootstrapped from Debian packages (`base.bootstrap`). `keel run` builds it',
          "with the installed Keel's scripts; Keel's reusable build workflow builds FROM a registry image",
          'and does not run the bootstrap yet: push the base to your registry once and point',
          '`base.image` at it for GitHub (Keel docs/adoption.md, "Debian-based distros").',
        ]
      : []),
    '',
    '## Locally, before pushing',
    '',
    '```sh',
    'sudo keel run build smoke-boot    # build → … → sign → boot → promote, on this machine',
    '```',
    '',
    'Same workflows, same hops, against a loopback registry, a generated key and local emulators;',
    'run state goes to `.keel/` (ignored by git).',
    '',
  ].join('\n');
}
