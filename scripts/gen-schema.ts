// Writes declarations/distro.schema.json from the zod schema (run by `npm run generate`).
import fs from 'node:fs';
import path from 'node:path';
import { declarationsJsonSchema } from '../actions/lib/declarations.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'declarations', 'distro.schema.json');
fs.writeFileSync(out, `${JSON.stringify(declarationsJsonSchema(), null, 2)}\n`);
process.stderr.write(`wrote ${path.relative(root, out)}\n`);
