import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../../services/common/offset-tracker.ts';

describe('offset tracker', () => {
  it('moves the committable offset only past records that are done with every record before them', () => {
    const tracker = new OffsetTracker();
    for (const offset of ['10', '11', '12', '13']) tracker.start(offset);
    expect(tracker.done('12')).toBeUndefined();
    expect(tracker.done('11')).toBeUndefined();
    expect(tracker.done('10')).toBe('13');
    expect(tracker.done('13')).toBe('14');
  });

  it('ignores offsets it never started or already finished', () => {
    const tracker = new OffsetTracker();
    tracker.start('5');
    expect(tracker.done('4')).toBeUndefined();
    expect(tracker.done('5')).toBe('6');
    expect(tracker.done('5')).toBeUndefined();
  });

  it('stays correct across many records finished in a scrambled order, past 64-bit-unsafe offsets', () => {
    const tracker = new OffsetTracker();
    const first = 2n ** 60n;
    const offsets = Array.from({ length: 5000 }, (_, index) => String(first + BigInt(index)));
    offsets.forEach((offset) => tracker.start(offset));
    // Finish in blocks of 100, each block backwards: the commit moves once per block, to the block's end.
    const commits: string[] = [];
    for (let block = 0; block < offsets.length; block += 100) {
      for (let index = block + 99; index >= block; index -= 1) {
        const moved = tracker.done(offsets[index]!);
        if (moved !== undefined) commits.push(moved);
      }
    }
    expect(commits).toHaveLength(50);
    expect(commits.at(-1)).toBe(String(first + 5000n));
    expect(commits[0]).toBe(String(first + 100n));
  });
});
