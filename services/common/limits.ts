/**
 * The sizes the services accept and write. An event is copied into a command and a request body per matching rule, so
 * it is kept well under the broker's 1 MB default; every record a service writes is sized against MAX_RECORD_BYTES
 * before it is sent.
 */
import type { Message } from './kafka.ts';

/** The largest records the consumers accept; anything larger is dead-lettered as `too-large`. */
export const MAX_EVENT_BYTES = 256 * 1024;
/** A command is an event plus a few ids and timestamps. */
export const MAX_COMMAND_BYTES = MAX_EVENT_BYTES + 4 * 1024;
/** Rules and pool announcements: valid ones are a few hundred bytes (rule headers are capped at 8 kB). */
export const MAX_TABLE_ENTRY_BYTES = 64 * 1024;
/**
 * The largest record a service writes: the broker's default `message.max.bytes` (1,048,588) less the framing of the
 * record batch that carries it, with room to spare. A copy that would be larger (a dead letter of a record near the
 * limit plus its reason headers) is cut to fit; a broker configured lower still refuses, and that is handled too.
 */
export const MAX_RECORD_BYTES = 1_000_000;

/**
 * What one produce request carries at most (a larger record goes alone). Kafka limits each partition's record batch
 * to `max.message.bytes`, so a request bounded by count alone (500 events near MAX_EVENT_BYTES) is refused whole.
 */
export const MAX_REQUEST_BYTES = 512 * 1024;

/** Per-record framing in a record batch (length, attributes, deltas, header counts), generously rounded up. */
const RECORD_OVERHEAD_BYTES = 80;

/** What a record weighs in a produce request: key, value, headers and framing. */
export function recordBytes(message: Message): number {
  let size = RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) size += Buffer.byteLength(name) + byteLength(value as Buffer | string | undefined);
  return size;
}

function byteLength(value: Buffer | string | null | undefined | Array<Buffer | string>): number {
  if (value === null || value === undefined) return 0;
  if (Array.isArray(value)) return value.reduce((sum, item) => sum + byteLength(item), 0);
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}
