import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { progressLine } from '../../services/common/progress.ts';

function sink(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

describe('progressLine', () => {
  it('redraws one line in place on a terminal and ends it when done', () => {
    const out = sink(true);
    const bar = progressLine(out.stream);
    bar.update('delivered 10/100');
    bar.update('delivered 100/100');
    bar.done();
    expect(out.text()).toBe('\r\x1b[2Kdelivered 10/100\r\x1b[2Kdelivered 100/100\n');
  });

  it('writes whole lines elsewhere, at most one per interval, and always the last state', () => {
    vi.useFakeTimers();
    try {
      const out = sink(false);
      const bar = progressLine(out.stream, { everyMs: 5000 });
      for (let second = 0; second <= 12; second += 1) {
        bar.update(`delivered ${second}`);
        vi.advanceTimersByTime(1000);
      }
      bar.done();
      expect(out.text()).toBe('delivered 0\ndelivered 5\ndelivered 10\ndelivered 12\n');
      expect(out.text()).not.toContain('\r');
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not repeat the last line when it was just written', () => {
    const out = sink(false);
    const bar = progressLine(out.stream);
    bar.update('replaying 1/1');
    bar.done();
    expect(out.text()).toBe('replaying 1/1\n');
  });
});
