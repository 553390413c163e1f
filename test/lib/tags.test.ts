// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import {
  buildTags,
  promotionTags,
  pullRequestOf,
  releaseDateOf,
  streamFromEvent,
  tagProblem,
} from '../../actions/lib/tags.js';

describe('tag grammar', () => {
  it('push/schedule/dispatch → candidate, candidate.<date>', () => {
    for (const ev of ['push', 'schedule', 'workflow_dispatch']) {
      expect(buildTags({ stream: streamFromEvent(ev), releaseDate: '20261122' })).toEqual([
        'candidate',
        'candidate.20261122',
      ]);
    }
  });

  it('a labelled PR → pr-N only', () => {
    const pr = pullRequestOf({ event: { pull_request: { number: 42, labels: [{ name: 'vm-test' }, { name: 'x' }] } } });
    expect(buildTags({ stream: streamFromEvent('pull_request'), releaseDate: '20261122', pr })).toEqual(['pr-42']);
  });

  it('an unlabelled PR is refused with the reason', () => {
    const pr = pullRequestOf({ event: { pull_request: { number: 7, labels: [] } } });
    expect(() => buildTags({ stream: 'pr', releaseDate: '20261122', pr })).toThrow(
      /refusing to push: pull request #7 does not carry the 'vm-test' label/,
    );
  });

  it('promotion → stable, stable.<date>, <date>', () => {
    expect(promotionTags('20261122')).toEqual(['stable', 'stable.20261122', '20261122']);
  });

  it('never latest', () => {
    expect(tagProblem('latest')).toMatch(/never writes 'latest'/);
    expect(() => buildTags({ stream: 'candidate', releaseDate: '20261122', candidateTag: 'latest' })).toThrow(/never/);
    expect(() => promotionTags('20261122', 'latest')).toThrow(/never/);
  });

  it('dates are UTC', () => {
    expect(releaseDateOf(new Date('2026-11-22T23:59:59-05:00'))).toBe('20261123');
  });

  it('an unknown event asks for the stream input', () => {
    expect(() => streamFromEvent('release')).toThrow(/set the stream input/);
  });
});
