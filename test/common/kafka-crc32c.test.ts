import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { KAFKAJS_CRC32C_MODULE, nativeCrc32c } from '../../services/common/kafka-crc32c.ts';
import '../../services/common/kafka.ts';

const require = createRequire(import.meta.url);

describe('native CRC-32C for kafkajs record batches', () => {
  it("is what kafkajs's record batches use, and agrees with kafkajs's own implementation", () => {
    const used = require(KAFKAJS_CRC32C_MODULE) as (buffer: Buffer) => number;
    // kafkajs's JavaScript implementation, loaded from its own file (the module beside the replaced one).
    const original = require(KAFKAJS_CRC32C_MODULE.replace(/index\.js$/, 'crc32C.js')) as (buffer: Buffer) => number;
    expect(used).toBe(nativeCrc32c);
    expect(used(Buffer.from('123456789'))).toBe(0xe3069283); // the CRC-32C check value
    for (const size of [0, 1, 7, 64, 1000, 65_537]) {
      const buffer = randomBytes(size);
      expect(used(buffer)).toBe(original(buffer) >>> 0);
    }
  });
});
