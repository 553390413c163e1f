import fs from 'node:fs';
import { loadDeclarations } from '../../lib/declarations.js';
import type { ActionIO } from '../../lib/io.js';
import { UserError } from '../../lib/errors.js';
import { existingPath, list, readInputs, str } from '../../lib/inputs.js';
import { resolveSettings, SETTING_NAMES, type SettingName } from '../../lib/settings.js';
import { code, table } from '../../lib/summary.js';

/** The declarations file a reusable workflow reads when the caller names none. */
export const DEFAULT_DECLARATIONS = 'declarations/distro.yaml';

export const inputs = {
  declarations: existingPath('file'),
  required: list({
    expected: 'newline-separated setting names that must not come out empty',
    item: (n) => ((SETTING_NAMES as string[]).includes(n) ? undefined : `expected one of ${SETTING_NAMES.join(', ')}`),
  }),
  ...(Object.fromEntries(SETTING_NAMES.map((n) => [n, str()])) as Record<SettingName, ReturnType<typeof str>>),
};

/**
 * settings: the validate and smoke-boot settings of the caller's declarations, each overridden by
 * its non-empty input, as outputs the later steps of a reusable workflow pass to the hops.
 */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const file = inp.declarations || (fs.existsSync(DEFAULT_DECLARATIONS) ? DEFAULT_DECLARATIONS : '');
  if (!file) io.notice(`no ${DEFAULT_DECLARATIONS}: the settings are Keel's defaults and the inputs`);
  const settings = resolveSettings(file ? loadDeclarations(file) : undefined, inp);
  const missing = inp.required.filter((n) => settings[n as SettingName].value === '');
  if (missing.length)
    throw new UserError(
      missing
        .map((n) => `${n} is empty: set ${settings[n as SettingName].path} in your declarations, or the input ${n}`)
        .join('; '),
    );
  for (const name of SETTING_NAMES) io.setOutput(name, settings[name].value);
  const rows = SETTING_NAMES.map((n) => [
    code(n),
    settings[n].value ? code(settings[n].value.replace(/\n/g, ', ')) : '(empty)',
    settings[n].source === 'input' ? 'input' : `${settings[n].source} (${settings[n].path})`,
  ]);
  await io.summary(
    `### settings\n\nFrom ${file ? code(file) : "Keel's defaults"}:\n\n${table(['setting', 'value', 'from'], rows)}`,
  );
}
