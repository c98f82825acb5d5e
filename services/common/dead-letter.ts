/**
 * Dead-letter records: the original key, value and headers, kept byte for byte, plus headers that say where the
 * record came from and why it was refused, so it can be inspected and replayed. A value that carries secrets is
 * replaced (redacted, or dropped) and a header says so.
 */
import { createHash } from 'node:crypto';
import type { IHeaders, KafkaMessage, Message } from './kafka.ts';
import { MAX_RECORD_BYTES, recordBytes } from './limits.ts';

export const DLQ_HEADERS = {
  reason: 'dlq-reason',
  error: 'dlq-error',
  topic: 'dlq-source-topic',
  partition: 'dlq-source-partition',
  offset: 'dlq-source-offset',
  service: 'dlq-service',
  at: 'dlq-at',
  /** Present when the value is not the original: `redacted: …`, `dropped: …` or `truncated: …`, and why. */
  value: 'dlq-value',
  /** Of a copy cut to fit: the original value's size in bytes and its hex SHA-256. */
  originalBytes: 'dlq-original-bytes',
  originalSha256: 'dlq-original-sha256',
} as const;

/** What replaces a secret in a dead-letter copy (the loggers' censor says the same). */
export const REDACTED = '[redacted]';

export interface DeadLetterSource {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/** The headers that say why (and, for a refused input record, from where) a record was dead-lettered. */
export function deadLetterHeaders(service: string, reason: string, error: string, source?: { topic: string; partition: number; offset: string }): IHeaders {
  return {
    [DLQ_HEADERS.reason]: reason,
    // Bounded: an error text must never make the dead-letter record itself too large to write.
    [DLQ_HEADERS.error]: error.slice(0, 2000),
    ...(source ? { [DLQ_HEADERS.topic]: source.topic, [DLQ_HEADERS.partition]: String(source.partition), [DLQ_HEADERS.offset]: source.offset } : {}),
    [DLQ_HEADERS.service]: service,
    [DLQ_HEADERS.at]: new Date().toISOString(),
  };
}

/**
 * An input record refused as it is: original key, value and headers, plus the reason headers; or, with `replacement`,
 * with its value replaced (a redacted copy, or null) and a header saying what was done and why.
 */
export function deadLetter(source: DeadLetterSource, service: string, reason: string, error: string, replacement?: { value: Buffer | null; note: string }): Message {
  const ours = deadLetterHeaders(service, reason, error, { topic: source.topic, partition: source.partition, offset: source.message.offset });
  if (replacement) ours[DLQ_HEADERS.value] = replacement.note;
  return fitted({ key: source.message.key, value: replacement ? replacement.value : source.message.value, headers: source.message.headers ?? {} }, ours);
}

/**
 * A dead-letter record that fits in MAX_RECORD_BYTES: `record` (its key, value and own headers) with `ours` (the reason
 * headers) added. A record near the limit would not fit once they are: the reason headers always stay, the original
 * headers when they fit in a quarter of the room, and the value is cut to what is left, with its whole size and hash.
 */
export function fitted(record: { key?: Message['key']; value: Buffer | null; headers: IHeaders }, ours: IHeaders, limit = MAX_RECORD_BYTES): Message {
  const whole: Message = { key: record.key, value: record.value, headers: { ...record.headers, ...ours } };
  if (recordBytes(whole) <= limit || record.value === null) return whole;
  const value = record.value;
  const note = { [DLQ_HEADERS.originalBytes]: String(value.length), [DLQ_HEADERS.originalSha256]: createHash('sha256').update(value).digest('hex') };
  const bare = { key: record.key, value: null, headers: { ...ours, ...note, [DLQ_HEADERS.value]: '' } };
  const keepHeaders = recordBytes({ ...bare, headers: { ...bare.headers, ...record.headers } }) - recordBytes(bare) <= limit / 4;
  const headers = keepHeaders ? { ...record.headers, ...bare.headers } : bare.headers;
  const room = Math.max(0, limit - recordBytes({ ...bare, headers }) - 200);
  headers[DLQ_HEADERS.value] = `truncated: ${value.length} bytes do not fit in a record with the reason headers; the first ${room} are kept${keepHeaders ? '' : ', without the original headers'}${ours[DLQ_HEADERS.value] ? ` (${String(ours[DLQ_HEADERS.value])})` : ''}`;
  return { key: record.key, value: value.subarray(0, room), headers };
}
