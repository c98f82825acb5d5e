/**
 * Dead-letter records: the original key, value and headers, kept byte for byte, plus headers that say where the
 * record came from and why it was refused, so it can be inspected and replayed.
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
} as const;

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

/** An input record refused as it is: original key, value and headers, plus the reason headers. */
export function deadLetter(source: DeadLetterSource, service: string, reason: string, error: string): Message {
  const headers = { ...source.message.headers, ...deadLetterHeaders(service, reason, error, { topic: source.topic, partition: source.partition, offset: source.message.offset }) };
  return { key: source.message.key, value: source.message.value, headers };
}
