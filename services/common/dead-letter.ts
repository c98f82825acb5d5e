/**
 * Dead-letter records: the original key, value and headers, kept byte for byte, plus headers that say where the
 * record came from and why it was refused, so it can be inspected and replayed. A value that carries secrets is
 * replaced (redacted, or dropped) and a header says so.
 */
import type { IHeaders, KafkaMessage, Message } from './kafka.ts';

export const DLQ_HEADERS = {
  reason: 'dlq-reason',
  error: 'dlq-error',
  topic: 'dlq-source-topic',
  partition: 'dlq-source-partition',
  offset: 'dlq-source-offset',
  service: 'dlq-service',
  at: 'dlq-at',
  /** Present when the value is not the original: `redacted: …` or `dropped: …`, and why. */
  value: 'dlq-value',
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
  const headers = { ...source.message.headers, ...deadLetterHeaders(service, reason, error, { topic: source.topic, partition: source.partition, offset: source.message.offset }) };
  if (!replacement) return { key: source.message.key, value: source.message.value, headers };
  return { key: source.message.key, value: replacement.value, headers: { ...headers, [DLQ_HEADERS.value]: replacement.note } };
}
