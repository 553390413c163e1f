#!/usr/bin/env node
// The `keel` command: runs cli/keel.ts through tsx (a dependency), so the CLI, the local runner
// and the generators share the TypeScript sources the actions are bundled from.
import { register } from 'tsx/esm/api';

register();
await import('../cli/keel.ts');
