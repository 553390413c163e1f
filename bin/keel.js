#!/usr/bin/env node
// The `keel` command. Installed (npm pack / npm install -g): the self-contained bundle
// dist/cli/index.js, no dependency needed at run time. In a Keel checkout (cli/keel.ts next to
// this file): the TypeScript sources through tsx (a dev dependency), so an edit runs at once;
// KEEL_CLI_BUNDLE=1 runs the bundle there too.
import fs from 'node:fs';

const sources = new URL('../cli/keel.ts', import.meta.url);
if (fs.existsSync(sources) && process.env.KEEL_CLI_BUNDLE !== '1') {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/cli/index.js');
}
