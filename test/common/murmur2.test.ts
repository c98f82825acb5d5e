import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { keyPartition, murmur2 } from '../../services/common/murmur2.ts';

// The reference: kafkajs's own (64-bit emulating) port of the Java client's hash, which this one replaces.
const reference = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer) => number;

describe('murmur2', () => {
  it("gives the Java client's values (Kafka's own UtilsTest vectors)", () => {
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) expect([key, murmur2(Buffer.from(key))]).toEqual([key, hash]);
  });

  it("agrees with kafkajs's implementation on random keys of every tail length, and so on partitions", () => {
    for (let length = 0; length < 300; length += 1) {
      const key = randomBytes(length);
      expect(murmur2(key)).toBe(reference(key));
      expect(keyPartition(key, 6)).toBe((reference(key) & 0x7fffffff) % 6);
    }
  });
});
