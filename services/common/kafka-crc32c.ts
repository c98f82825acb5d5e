/**
 * kafkajs checksums every record batch it produces with a CRC-32C written in JavaScript, a byte at a time: over a third
 * of the client's CPU per produced record (bench/floor.ts produce). This swaps in a native CRC-32C (@node-rs/crc32,
 * SSE4.2 where the CPU has it) by seeding Node's module cache with kafkajs's own module id, so kafkajs's
 * `require('../crc32C')` gets the native function. Imported by kafka.ts before kafkajs; the broker verifies every
 * checksum, so a wrong one could never pass unnoticed (every produce would fail with CORRUPT_MESSAGE).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { crc32c } from '@node-rs/crc32';

const require = createRequire(import.meta.url);
/** The module kafkajs 2.x requires for record-batch checksums. */
export const KAFKAJS_CRC32C_MODULE = join(dirname(require.resolve('kafkajs')), 'src/protocol/recordBatch/crc32C/index.js');

/** What kafkajs's module exports: the unsigned CRC-32C of a buffer. */
export const nativeCrc32c = (buffer: Buffer): number => crc32c(buffer);

// Another kafkajs layout: leave its own implementation in place rather than guess.
if (existsSync(KAFKAJS_CRC32C_MODULE) && !require.cache[KAFKAJS_CRC32C_MODULE]) {
  require.cache[KAFKAJS_CRC32C_MODULE] = { id: KAFKAJS_CRC32C_MODULE, filename: KAFKAJS_CRC32C_MODULE, loaded: true, exports: nativeCrc32c } as NodeJS.Module;
}
