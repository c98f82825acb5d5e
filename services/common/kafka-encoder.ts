/**
 * kafkajs 2.2.4 encodes a produce request through nested encoders (record, record batch, request, size prefix), each
 * copying the one inside it and growing by doubling into a zero-filled Buffer.alloc: a 250 kB record is zeroed about
 * eight times over on its way out. With a tenth of the events near the size limit, zero-filling was a fifth of the
 * matcher's CPU (bench:isolation --scenario slow). Only the bytes an encoder has written are ever read (its `buffer`
 * is the slice up to its offset), so the room it grows into need not be zeroed first.
 *
 * This replaces that one method with the same growth into uninitialised memory. Only the exact code kafkajs 2.2.4
 * ships is replaced: another version's method is left as it is.
 */
import { kafkajsModule, replaceKafkajsMethod } from './kafkajs-method.ts';

const ENCODER = 'src/protocol/encoder.js';
export const KAFKAJS_ENCODER_MODULE = kafkajsModule(ENCODER);
/** SHA-256 of kafkajs 2.2.4's Encoder.prototype.ensureAvailable source. */
const KNOWN_SOURCE_SHA256 = '5aa16d1fa42902216d6e3f6dc6a63250a3cea1be85abbdea3d6b4f7740575448';

/** The fields of kafkajs's Encoder the method reads and writes. */
export interface EncoderState {
  buf: Buffer;
  offset: number;
}

/** kafkajs's growth rule: the next power of two that holds what is written and what comes. */
const nextPowerOfTwo = (value: number): number => 1 << (31 - Math.clz32(value) + 1);

export function ensureAvailable(this: EncoderState, length: number): void {
  if (this.offset + length <= this.buf.length) return;
  const grown = Buffer.allocUnsafe(nextPowerOfTwo(this.offset + length));
  this.buf.copy(grown, 0, 0, this.offset);
  this.buf = grown;
}

/** Whether kafkajs's encoder now grows without zero-filling (false for a kafkajs whose method differs). */
export const encoderFixed: boolean = replaceKafkajsMethod(ENCODER, 'ensureAvailable', KNOWN_SOURCE_SHA256, ensureAvailable);
