import type { ActionIO } from '../../lib/io.js';
import { digestRef, int, list, oneOf, readInputs, registryInputs, releaseDate, str } from '../../lib/inputs.js';
import { connect } from '../../lib/registry.js';
import { code, seconds, table } from '../../lib/summary.js';
import { promotionTags, releaseDateOf, tagProblem } from '../../lib/tags.js';
import { requireSignatureGate, signatureGateInputs } from '../../lib/signature-gate.js';
import { promote } from './promote.js';

export const inputs = {
  'image-ref': digestRef('the promoted digest must be the one that was tested'),
  tags: list({ item: tagProblem }),
  'stable-tag': str({ default: 'stable', pattern: /^[a-z][a-z0-9-]*$/, expected: 'a lowercase tag word' }),
  'release-date': releaseDate(),
  'require-tag': str({ pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, expected: 'a tag' }),
  ...signatureGateInputs,
  identity: oneOf(['repository', 'tags'] as const, 'repository'),
  retries: int({ default: 5, min: 1, max: 20 }),
  ...registryInputs,
};

/** promote: the tested digest, byte for byte, under the promotion tags. */
export async function run(io: ActionIO): Promise<void> {
  const inp = readInputs(io, inputs);
  const gate = await requireSignatureGate(inp, io, 'promote');
  const ref = inp['image-ref'];
  const digest = ref.digest!;
  const date = inp['release-date'] ?? releaseDateOf(io.context.now());
  // Ordered so the moving tag (stable) is written last: a client following it only moves
  // once every dated tag is in place.
  const base = inp.tags.length ? inp.tags : promotionTags(date, inp['stable-tag']);
  const tags = [...base.filter((t) => t !== inp['stable-tag']), ...base.filter((t) => t === inp['stable-tag'])];
  io.setOutput('digest', digest);
  const started = Date.now();
  const client = connect(ref, inp, io, { retry: { attempts: inp.retries } });
  const signature = await io.group('verify the signature', () => gate.check(client, ref, io, inp.identity));
  const res = await io.group(`tag ${ref.name}`, () =>
    promote(client, { repo: ref.repository, digest, tags, requireTag: inp['require-tag'] || undefined }, io),
  );
  io.setOutput('tags', tags.join('\n'));
  const noop = res.written.length === 0;
  if (noop) io.info(`all promotion tags already point at ${digest}: nothing written`);
  await io.summary(
    `### promote\n\n${table(
      ['image', 'digest', 'tags written', 'already in place', 'required tag', 'signature', 'time'],
      [
        [
          code(ref.name),
          code(digest),
          res.written.map(code).join(' ') || '—',
          res.alreadyThere.map(code).join(' ') || '—',
          inp['require-tag'] ? code(inp['require-tag']) : '—',
          signature,
          seconds(Date.now() - started),
        ],
      ],
    )}${noop ? '\nRe-run: every promotion tag already pointed at this digest; nothing was written.\n' : ''}${movedLines(res.moved, digest)}`,
  );
}

/** One line per tag that moved: where it pointed before and where it points now (a rollback's record). */
function movedLines(moved: { tag: string; from?: string }[], to: string): string {
  if (!moved.length) return '';
  return `\n${moved.map((m) => `- ${code(m.tag)}: ${m.from ? code(m.from) : '(new tag)'} → ${code(to)}`).join('\n')}\n`;
}
