import type { Distro } from '../../actions/lib/declarations.js';
import {
  aptInstall,
  checkout,
  DISK_PACKAGES,
  enableKvm,
  Params,
  registryToken,
  registryUser,
  releaseDate,
  RELEASE_SIGNING_SECRETS,
  type GenerateOptions,
  type Mode,
} from '../common.js';
import {
  and,
  callOutput,
  concat,
  eq,
  github,
  lines,
  lit,
  ne,
  secret,
  template,
  type Expr,
  type TemplateVars,
} from '../expr.js';
import { freeDiskStep } from '../free-disk.js';
import { actionStep, job, keel, runStep, type RunStep, type Triggers, type Workflow } from '../model.js';
import { iaConfiguredStep } from '../ia-optional.js';
import { pins } from '../pins.js';
import {
  publishableMedia,
  untestedDiskWarning,
  untestedMetadataLine,
  untestedPublishNotice,
} from '../untested-media.js';

/**
 * build-disk.yml: pins :stable to a digest once, builds the ISO from that digest and boot-tests
 * it (the build-disk hop fails unless the boot reached multi-user), then hands ISO + SHA256SUMS
 * by artifact to a separate `publish` job (re-runnable alone, sized for a slow Internet Archive
 * ingest) that uploads to the Internet Archive and bumps the download site, with the release
 * date and file name of the build job. No publish unless the boot test passed.
 */
export const DISK_SOURCE = 'workflows-src/workflows/build-disk.ts';
const FROM_ENVIRONMENT = 'Normally a secret of the release environment (its value wins over one passed here).';
export const DISK_ARTIFACT = 'keel-disk';
export const DISK_DIR = 'disk-out';

/** `key:value` metadata lines of ia-upload from the declarations (lists repeat the key). */
function metadataLines(meta: Record<string, string | string[]>, vars: TemplateVars): Expr {
  const out: Expr[] = [];
  for (const [k, v] of Object.entries(meta)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (/[\r\n]/.test(item)) throw new Error(`internet-archive.metadata.${k}: one line per value`);
      out.push(concat(`${k}:`, template(item, vars)));
    }
  }
  return lines(...out);
}

/**
 * Reusable variant only: the templates arrive as inputs, so they are expanded at run time. The
 * values come in through env (never interpolated into the script).
 */
function expandStep<K extends string>(
  vars: { date: Expr; file: Expr; digest: Expr },
  templates: Record<K, Expr>,
): RunStep<K> {
  const names = Object.keys(templates) as K[];
  const envName = (n: string) => `T_${n.toUpperCase().replace(/-/g, '_')}`;
  return runStep({
    id: 'expand',
    name: 'Expand {date}, {file} and {digest} in the publication templates',
    env: {
      DATE: vars.date,
      FILE: vars.file,
      DIGEST: vars.digest,
      ...Object.fromEntries(names.map((n) => [envName(n), templates[n]])),
    },
    run: [
      'expand() { local s=$1; s=${s//"{date}"/"$DATE"}; s=${s//"{file}"/"$FILE"}; s=${s//"{digest}"/"$DIGEST"}; printf \'%s\' "$s"; }',
      'delim="keel_$(od -An -N8 -tx1 /dev/urandom | tr -d \' \\n\')"',
      ...names.map((n) => `{ echo "${n}<<$delim"; expand "$${envName(n)}"; echo; echo "$delim"; } >> "$GITHUB_OUTPUT"`),
    ].join('\n'),
    local: { local: 'expand-templates', vars, templates },
    outputs: names,
  });
}

export function buildDiskWorkflow(decl: Distro, mode: Mode, opts: GenerateOptions = {}): Workflow {
  const p = new Params(mode, opts);
  const file = mode === 'dogfood' ? 'build-disk.yml' : 'reusable-build-disk.yml';
  const iso = decl.iso;
  const ia = decl['internet-archive'];
  const site = decl.site;
  if (!p.reusable) {
    if (!iso) throw new Error('build-disk.yml needs declarations iso');
    if (!iso['publish-untested'] && (!iso['boot-test'] || iso.backend === 'bib'))
      throw new Error(
        'build-disk.yml publishes only boot-tested media: declarations iso.boot-test must be true and iso.backend live (bib media are not boot-tested), or iso.publish-untested true',
      );
    if (!ia)
      throw new Error('build-disk.yml publishes to the Internet Archive: declarations internet-archive is required');
    if (!decl.signing)
      throw new Error('build-disk.yml verifies the image signature: declarations signing.public-key is required');
  }
  const image = p.v('image', `${decl.image.registry}/${decl.image.name}`, {
    description: 'Image repository, registry/name (e.g. ghcr.io/my-org/my-os).',
    required: true,
  });
  const stable = p.v('stable-tag', decl.tags.stable, {
    description: 'Stable tag word: the media are built from the digest it points at.',
    default: 'stable',
  });
  const publicKey = p.v('public-key', decl.signing?.['public-key'] ?? '', {
    description:
      'Cosign public key (path in your repository, or PEM): the pinned digest must verify with it before any media are built.',
    required: true,
  });
  const isoName = p.setting('iso-name', iso?.name ?? '', { description: 'File name stem: <iso-name>-<date>.<type>.' });
  const publishUntested = p.setting('publish-untested', iso?.['publish-untested'] ?? false, {
    description:
      'Publish media whose boot test did not run (iso-boot-test: false, or iso-backend: bib), marked as not boot-tested in the summary and the Internet Archive description: true or false.',
  });
  // Reusable: the caller's declarations, read by the settings step of each job.
  const declarations = p.v('declarations', 'declarations/distro.yaml', {
    description: 'Path of your distro declarations: the iso, internet-archive and site settings are read from it.',
    default: 'declarations/distro.yaml',
  });
  const runsOn = p.runsOn();
  const user = registryUser();
  const token = registryToken();

  const date = releaseDate();
  // :stable pinned to a digest exactly once; everything after uses the digest.
  const resolve = keel.resolve(
    'stable',
    { image: concat(image, ':', stable), username: user, password: token },
    { name: 'Pin :stable to its digest' },
  );
  const disk = keel['build-disk'](
    'disk',
    {
      'image-ref': resolve.outputs['image-ref'],
      type: p.setting('iso-type', iso?.type ?? 'iso', { description: 'iso, qcow2 or raw.' }),
      backend: p.setting('iso-backend', iso?.backend ?? 'live', { description: 'live or bib.' }),
      name: concat(isoName, '-', date.outputs['release-date']),
      ...(p.reusable || iso?.label
        ? {
            label: p.setting('iso-label', iso?.label ?? '', {
              description: 'ISO volume label (empty in both: derived from the name).',
            }),
          }
        : {}),
      'boot-test': p.setting('iso-boot-test', iso?.['boot-test'] ?? true, {
        description:
          'Boot-test the media (false: boot-passed is skipped; published only with publish-untested): true or false.',
      }),
      'boot-timeout': p.setting('iso-boot-timeout', iso?.['boot-timeout'] ?? 1200, {
        description: 'Seconds the boot test may take.',
        number: true,
      }),
      'release-date': date.outputs['release-date'],
      'output-dir': DISK_DIR,
      'public-key': publicKey,
      username: user,
      password: token,
    },
    { name: 'Verify, build and boot-test the media from the pinned digest' },
  );
  const diskJob = job('disk', {
    name: 'Build and boot-test the install media',
    runsOn,
    timeoutMinutes: 150,
    permissions: { contents: 'read', packages: 'read' },
    // One media build at a time per image, never cancelled (a queued one waits).
    concurrency: { group: concat(lit('keel-build-disk-'), image), cancelInProgress: false },
    outputs: {
      'image-ref': resolve.outputs['image-ref'],
      digest: resolve.outputs.digest,
      'release-date': date.outputs['release-date'],
      file: disk.outputs.name,
      sha256: disk.outputs.sha256,
      'boot-passed': disk.outputs['boot-passed'],
      // Reusable: the caller's setting, for the publish job's condition (a constant in dogfood).
      ...((p.reusable ? { 'publish-untested': publishUntested } : {}) as Record<'publish-untested', Expr>),
    },
    steps: [
      checkout(),
      freeDiskStep(p),
      // Reusable: the caller's iso settings; the media need a name.
      p.settingsStep(declarations, ['iso-name']),
      date,
      enableKvm(),
      aptInstall(DISK_PACKAGES),
      resolve,
      disk,
      untestedDiskWarning(disk.outputs['boot-passed'], publishUntested),
      actionStep({
        name: 'Hand the media to the publish job',
        uses: pins.uploadArtifact,
        with: {
          name: DISK_ARTIFACT,
          path: lines(disk.outputs.path, disk.outputs.sha256sums),
          'retention-days': 3,
          'compression-level': 0,
          'if-no-files-found': 'error',
          overwrite: true,
        },
        local: {
          local: 'artifact-upload',
          name: lit(DISK_ARTIFACT),
          paths: [disk.outputs.path, disk.outputs.sha256sums],
        },
      }),
    ],
  });

  // The publish job: only the build job's values (same release date, same file name).
  const vars = { date: diskJob.refs['release-date'], file: diskJob.refs.file, digest: diskJob.refs.digest };
  const files = lines(
    concat(`${DISK_DIR}/`, diskJob.refs.file),
    `${DISK_DIR}/SHA256SUMS`,
    `${DISK_DIR}/SHA256SUMS.sig`,
  );
  const publishSteps = [];
  publishSteps.push(
    checkout(),
    actionStep({
      name: 'Take the boot-tested media',
      uses: pins.downloadArtifact,
      with: { name: DISK_ARTIFACT, path: DISK_DIR },
      local: { local: 'artifact-download', name: lit(DISK_ARTIFACT), path: DISK_DIR },
    }),
    untestedPublishNotice(diskJob.refs['boot-passed']),
    // A checksum served next to the file proves integrity only: the release key's signature over
    // SHA256SUMS lets a downloader check authenticity (cosign verify-blob, offline). Signed here,
    // in the job that holds the release environment; the build job that ran the image holds no key.
    keel.sign(
      'checksums',
      {
        files: `${DISK_DIR}/SHA256SUMS`,
        'private-key': secret(RELEASE_SIGNING_SECRETS.key),
        password: secret(RELEASE_SIGNING_SECRETS.password),
        mode: 'key',
        'public-key': publicKey,
      },
      { name: 'Sign SHA256SUMS with the release key (SHA256SUMS.sig)' },
    ),
  );
  const iaCommon = {
    files,
    sha256sums: `${DISK_DIR}/SHA256SUMS`,
    'access-key': secret('IA_ACCESS_KEY'),
    'secret-key': secret('IA_SECRET_KEY'),
    'torrent-timeout': p.setting('ia-torrent-timeout', ia?.['torrent-timeout'] ?? 3600, {
      description: 'Seconds to wait for the item torrent.',
      number: true,
    }),
    'require-torrent': p.setting('ia-require-torrent', ia?.['require-torrent'] ?? false, {
      description: 'Fail when the torrent is not ready in time: true or false.',
    }),
  };
  if (!p.reusable) {
    publishSteps.push(
      keel['ia-upload'](
        'ia',
        {
          identifier: template(ia!.identifier, vars),
          metadata: withUntestedNote(diskJob.refs['boot-passed'], metadataLines(ia!.metadata, vars)),
          ...iaCommon,
        },
        { name: 'Publish to the Internet Archive' },
      ),
    );
    if (site) {
      const [first, ...rest] = site.constants;
      publishSteps.push(
        keel['site-bump'](
          'site',
          {
            repository: site.repository,
            constant: first!.name,
            value: template(first!.value, vars),
            ...(rest.length
              ? { 'extra-constants': lines(...rest.map((c) => concat(`${c.name}=`, template(c.value, vars)))) }
              : {}),
            token: secret('SITE_BUMP_TOKEN'),
            ...(site.files.length ? { files: site.files.join('\n') } : {}),
            base: site.base,
            'branch-prefix': site['branch-prefix'],
            'auto-merge': site['auto-merge'],
          },
          { name: 'Point the download site at the new media' },
        ),
      );
    }
  } else {
    const t = {
      identifier: p.setting('ia-identifier', '', {
        description: 'Internet Archive identifier template ({date} = release date), e.g. my-os-live-iso-{date}.',
      }),
      metadata: p.setting('ia-metadata', '', {
        description: 'Item metadata, key:value lines; {date}, {file} and {digest} are expanded.',
      }),
      'site-value': p.setting('site-value', '', {
        description: 'Value of site-constant; {date} and {file} are expanded.',
      }),
      'site-extra-constants': p.setting('site-extra-constants', '', {
        description: 'More NAME=value lines moved in the same commit; {date} and {file} are expanded.',
      }),
    };
    const expand = expandStep(vars, t);
    const iaKeys = iaConfiguredStep();
    const iaOn = eq(iaKeys.outputs.configured, 'true');
    const siteRepo = p.setting('site-repository', '', {
      description: 'Download site repository owner/name (empty in both: no site bump).',
    });
    publishSteps.push(
      // The caller's internet-archive and site settings (after the steps above asked for them).
      p.settingsStep(declarations)!,
      expand,
      iaKeys,
      keel['ia-upload'](
        'ia',
        {
          identifier: expand.outputs.identifier,
          metadata: withUntestedNote(diskJob.refs['boot-passed'], expand.outputs.metadata),
          ...iaCommon,
        },
        { name: 'Publish to the Internet Archive', if: iaOn },
      ),
      keel['site-bump'](
        'site',
        {
          repository: siteRepo,
          constant: p.setting('site-constant', '', {
            description: 'Site constant set to site-value, e.g. LATEST_ISO_DATE.',
          }),
          value: expand.outputs['site-value'],
          'extra-constants': expand.outputs['site-extra-constants'],
          token: secret('SITE_BUMP_TOKEN'),
          files: p.setting('site-files', '', {
            description: 'Candidate files defining the constants (newline-separated).',
          }),
          base: p.setting('site-base', '', { description: 'Site branch the pull request targets.' }),
          'branch-prefix': p.setting('site-branch-prefix', '', { description: 'Prefix of the pull request branch.' }),
          'auto-merge': p.setting('site-auto-merge', '', {
            description: 'Enable auto-merge on the pull request: true or false.',
          }),
        },
        { name: 'Point the download site at the new media', if: and(iaOn, ne(siteRepo, '')) },
      ),
    );
  }
  const publishJob = job('publish', {
    name: 'Publish (Internet Archive, then the download site)',
    needs: [diskJob],
    // build-disk fails the job when the boot test fails; this says it again, explicitly. Never on
    // behalf of a pull request (a caller of the reusable workflow may run on one).
    // Untested media (boot-passed skipped) only with publish-untested.
    if: and(
      ne(github('event_name'), 'pull_request'),
      publishableMedia(diskJob.refs['boot-passed'], p.reusable ? diskJob.refs['publish-untested'] : publishUntested),
    ),
    runsOn,
    // IA ingest is slow: upload budget (4 h by default) + torrent wait, within GitHub's 6 h.
    timeoutMinutes: 360,
    permissions: { contents: 'read' },
    // Reads the IA keys and the site token: release secrets, main only.
    environment: p.environment(decl),
    // A running publication is never cancelled. Its own group: sharing the build job's would let
    // the next run's pending publish replace this run's.
    concurrency: { group: concat(lit('keel-publish-'), image), cancelInProgress: false },
    outputs: {},
    steps: publishSteps,
  });

  const on: Triggers = p.reusable
    ? {
        workflow_call: {
          inputs: p.callInputs,
          secrets: {
            COSIGN_PRIVATE_KEY: {
              description: `Release signing key (cosign.key) that signs SHA256SUMS. ${FROM_ENVIRONMENT}`,
              required: false,
            },
            COSIGN_PASSWORD: { description: `Password of COSIGN_PRIVATE_KEY. ${FROM_ENVIRONMENT}`, required: false },
            IA_ACCESS_KEY: { description: `Internet Archive S3 access key. ${FROM_ENVIRONMENT}`, required: false },
            IA_SECRET_KEY: { description: `Internet Archive S3 secret key. ${FROM_ENVIRONMENT}`, required: false },
            SITE_BUMP_TOKEN: {
              description: `Token with contents and pull-requests write on the site repository; absent: the bump is skipped. ${FROM_ENVIRONMENT}`,
              required: false,
            },
          },
          outputs: {
            'image-ref': {
              description: 'The digest the media were built from.',
              value: callOutput(diskJob.refs['image-ref']),
            },
            file: { description: 'File name of the published media.', value: callOutput(diskJob.refs.file) },
            'release-date': {
              description: 'Release date of the media (YYYYMMDD).',
              value: callOutput(diskJob.refs['release-date']),
            },
          },
        },
      }
    : { workflow_dispatch: {}, schedule: [{ cron: '0 7 * * 0' }] };
  return {
    file,
    source: DISK_SOURCE,
    name: p.reusable ? 'Keel build-disk (reusable)' : `Keel build-disk (${decl.image.name})`,
    on,
    permissions: {},
    actions: p.actionSource(),
    jobs: [diskJob, publishJob],
  };
}

/** The item metadata, led by a not-boot-tested description line when the test was skipped. */
function withUntestedNote(bootPassed: Expr, metadata: Expr): Expr {
  const items = metadata.kind === 'lines' ? metadata.items : [metadata];
  return lines(untestedMetadataLine(bootPassed), ...items);
}
