import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logRelay } from '../../services/common/logger.ts';

/** A destination that collects what is written; `isTTY` makes it look like a terminal. */
function sink(isTTY = false) {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, lines: async () => { await new Promise((resolve) => setImmediate(resolve)); return text.split('\n').filter(Boolean); } };
}

// No colours: the assertions read the text.
process.env.NO_COLOR = '1';

describe('logger', () => {
  it('writes JSON records when the destination is not a terminal, with secrets redacted', async () => {
    const out = sink();
    createLogger('matcher', 'info', { destination: out.stream }).info({ rule: { id: 'r1', secrets: [{ secret: 'whsec_hidden' }] } }, 'rule applied');
    const [line, ...rest] = await out.lines();
    expect(rest).toEqual([]);
    expect(JSON.parse(line!)).toMatchObject({ level: 30, service: 'matcher', msg: 'rule applied', rule: { id: 'r1', secrets: '[redacted]' } });
  });

  it('writes one readable line per record on a terminal: time, level, service, message, the fields that matter', async () => {
    const out = sink(true);
    const logger = createLogger('dispatcher', 'info', { destination: out.stream });
    logger.info({ ops: 'http://127.0.0.1:9402', pid: 1, hostname: 'h' }, 'started');
    logger.child({ component: 'kafka' }).warn({ broker: '127.0.0.1:9092', error: 'Connection timeout', clientId: 'x', stack: 'Error: x\n    at y' }, 'Connection error');
    logger.error({ err: new Error('first\nsecond'), rule: { id: 'r1', secrets: [{ secret: 'whsec_hidden' }] } }, 'could not send');
    const lines = await out.lines();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO:  dispatcher +started ops=http:\/\/127\.0\.0\.1:9402$/);
    expect(lines[1]).toMatch(/\] WARN:  dispatcher\/kafka +Connection error broker=127\.0\.0\.1:9092 error="Connection timeout"$/);
    expect(lines[2]).toMatch(/\] ERROR: dispatcher +could not send err="first\\nsecond" rule=\{"id":"r1","secrets":"\[redacted\]"\}$/);
    expect(lines.join('\n')).not.toContain('whsec_hidden');
  });

  it('LOG_FORMAT overrides the terminal check either way', async () => {
    const file = sink(false);
    createLogger('console', 'info', { destination: file.stream, format: 'pretty' }).info('hello');
    expect(await file.lines()).toEqual([expect.stringMatching(/INFO: +console +hello$/)]);
    const terminal = sink(true);
    createLogger('console', 'info', { destination: terminal.stream, format: 'json' }).info('hello');
    expect(JSON.parse((await terminal.lines())[0]!)).toMatchObject({ service: 'console', msg: 'hello' });
  });
});

describe('log relay (npm start renders its children)', () => {
  const record = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1), service: 'dispatcher', pool: 'demo', msg: 'slow endpoint' });

  it('renders child records as its own pretty lines, under the name the supervisor gave the child', async () => {
    const out = sink(true);
    const relay = logRelay(undefined, out.stream);
    relay('dispatcher-demo', record);
    relay('console', 'not a record: a crash before the logger existed');
    expect(await out.lines()).toEqual([
      expect.stringMatching(/\] WARN:  dispatcher-demo +slow endpoint pool=demo$/),
      expect.stringMatching(/\] INFO:  console +not a record: a crash before the logger existed$/),
    ]);
  });

  it('passes child records through unchanged as JSON when not on a terminal, and wraps other lines as records', async () => {
    const out = sink(false);
    const relay = logRelay(undefined, out.stream);
    relay('dispatcher-demo', record);
    relay('console', 'plain text');
    const [first, second] = await out.lines();
    expect(first).toBe(record);
    expect(JSON.parse(second!)).toMatchObject({ level: 30, service: 'console', msg: 'plain text' });
  });
});
