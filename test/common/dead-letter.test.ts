/** Dead-letter copies and logged bodies fit the records that carry them, whatever the input's size (issue 24, item 1). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deadLetter, DLQ_HEADERS, fitted } from '../../services/common/dead-letter.ts';
import { loggedBody, utf8Prefix } from '../../services/common/deliveries.ts';
import { MAX_RECORD_BYTES, recordBytes } from '../../services/common/limits.ts';

const sha256 = (value: string | Buffer) => createHash('sha256').update(value).digest('hex');
const source = (value: Buffer, headers: Record<string, string> = {}) =>
  ({ topic: 'workflow-events', partition: 1, message: { key: Buffer.from('k'), value, headers, offset: '42', timestamp: '0', attributes: 0 } });

describe('dead-letter copies (item 1)', () => {
  it('keep a record that fits as it is, byte for byte, with the reason headers', () => {
    const copy = deadLetter(source(Buffer.from('small'), { origin: 'engine' }), 'matcher', 'malformed-avro', 'bad');
    expect(copy.value).toEqual(Buffer.from('small'));
    expect(copy.headers).toMatchObject({ origin: 'engine', [DLQ_HEADERS.reason]: 'malformed-avro', [DLQ_HEADERS.offset]: '42' });
    expect(copy.headers![DLQ_HEADERS.value]).toBeUndefined();
  });

  it('cut a value near max.message.bytes to fit with the reason headers, keeping its size and hash', () => {
    const raw = Buffer.alloc(1_048_300, 1);
    const copy = deadLetter(source(raw, { origin: 'engine' }), 'matcher', 'too-large', 'x'.repeat(5000));
    expect(recordBytes(copy)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(copy.headers).toMatchObject({ origin: 'engine', [DLQ_HEADERS.originalBytes]: '1048300', [DLQ_HEADERS.originalSha256]: sha256(raw) });
    expect(String(copy.headers![DLQ_HEADERS.value])).toMatch(/^truncated: 1048300 bytes .* the first \d+ are kept$/);
    expect(raw.subarray(0, (copy.value as Buffer).length).equals(copy.value as Buffer)).toBe(true);
  });

  it('drop original headers that would take more than a quarter of the room, and say so', () => {
    const raw = Buffer.alloc(600_000, 2);
    const copy = fitted({ key: null, value: raw, headers: { bulky: 'h'.repeat(400_000) } }, { [DLQ_HEADERS.reason]: 'too-large' });
    expect(recordBytes(copy)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(copy.headers!.bulky).toBeUndefined();
    expect(String(copy.headers![DLQ_HEADERS.value])).toMatch(/without the original headers/);
  });
});

describe('logged bodies (item 1)', () => {
  it('keep a body within the limit whole, a longer one cut on a character boundary, with the whole size and SHA-256', () => {
    expect(loggedBody('{"a":1}', 16)).toEqual({ body: '{"a":1}', bodyTruncated: false, bodyBytes: 7, bodySha256: sha256('{"a":1}') });
    // What JSON makes of control characters: six bytes each; and a cut inside a three-byte character.
    const escaped = JSON.stringify('\u0001'.repeat(1000));
    expect(loggedBody(escaped, 100)).toMatchObject({ bodyTruncated: true, bodyBytes: 6002, bodySha256: sha256(escaped) });
    expect(utf8Prefix(Buffer.from('ab€'), 4)).toBe('ab');
    expect(utf8Prefix(Buffer.from('ab€'), 5)).toBe('ab€');
  });
});
