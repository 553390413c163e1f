#!/usr/bin/env node
// npm's prepack step: records which Keel commit the package is packed from in keel-package.json
// (shipped in the package, never committed). `keel init` pins the caller workflows to Keel's
// reusable workflows at that commit; `dirty` says the packed files may differ from it. Without
// git (e.g. packing an unpacked tarball) no commit is recorded and `keel init` asks for
// --keel-ref. Refuses to pack without the CLI bundle the package's `keel` runs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
if (!fs.existsSync(path.join(root, 'dist', 'cli', 'index.js'))) {
  console.error('dist/cli/index.js is missing: run npm run bundle before npm pack');
  process.exit(1);
}
const git = (...args) => spawnSync('git', ['-C', root, ...args], { encoding: 'utf8' });
const head = git('rev-parse', '--verify', 'HEAD^{commit}');
const record = {};
if (head.status === 0) {
  record.commit = head.stdout.trim();
  record.dirty = git('status', '--porcelain', '--untracked-files=no').stdout.trim() !== '';
}
fs.writeFileSync(path.join(root, 'keel-package.json'), `${JSON.stringify(record, null, 2)}\n`);
process.stderr.write(`keel-package.json: ${JSON.stringify(record)}\n`);
