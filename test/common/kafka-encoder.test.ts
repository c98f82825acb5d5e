/**
 * kafkajs's encoders grew by doubling into zero-filled buffers, zeroing a large record many times on its way out; they
 * now grow into uninitialised memory, and only what was written is ever read.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ensureAvailable, encoderFixed, KAFKAJS_ENCODER_MODULE } from '../../services/common/kafka-encoder.ts';
import '../../services/common/kafka.ts';

const require = createRequire(import.meta.url);
type Encoder = { buffer: Buffer; writeBytes(value: Buffer): Encoder; writeInt32(value: number): Encoder; writeEncoder(value: Encoder): Encoder; size(): number };
const Encoder = require(KAFKAJS_ENCODER_MODULE) as { new (): Encoder; prototype: { ensureAvailable: unknown } };

describe("kafkajs's encoder", () => {
  it('grows with the replaced method', () => {
    expect(encoderFixed).toBe(true);
    expect(Encoder.prototype.ensureAvailable).toBe(ensureAvailable);
  });

  it('gives exactly the bytes written, nested as a produce request nests them, at every size up to a megabyte', () => {
    for (const size of [0, 1, 511, 512, 4096, 250_000, 1_048_576]) {
      const value = randomBytes(size);
      const inner = new Encoder().writeBytes(value);
      const outer = new Encoder().writeInt32(inner.size()).writeEncoder(inner);
      const expected = Buffer.alloc(8 + size);
      expected.writeInt32BE(4 + size, 0);
      expected.writeInt32BE(size, 4);
      value.copy(expected, 8);
      expect(outer.buffer).toEqual(expected);
    }
  });
});
