/**
 * The deliveries' dead-letter topic for operators: list what is there (by rule, time, reason) and replay it back into
 * the pipeline. A replayed command keeps its delivery id (so receivers still de-duplicate) and goes on with the next
 * attempt number, the whole retry schedule and a new age, on the pool its rule's selectors choose now.
 */
import { contracts, type DeliveryCommand } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../common/dead-letter.ts';
import { headerValue, type Kafka, type KafkaMessage } from '../common/kafka.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import { redactUrlsIn } from '../common/rules.ts';
import type { TopicNames } from '../common/topics.ts';
import type { SendAgain } from './send-again.ts';
import { drainRanges, readRanges } from './topic-ranges.ts';

export interface DeadDelivery {
  topic: string;
  partition: number;
  offset: string;
  /** When it was dead-lettered (ms). */
  at: number;
  reason: string;
  /** Why, with anything URL-like redacted (older records quote a refused rule's URL, credentials and all). */
  error: string;
  /** The service that dead-lettered it, and the topic it was refused from (when it was an input record). */
  service: string | undefined;
  sourceTopic: string | undefined;
  key: string | undefined;
  bytes: number;
  /** Undefined when the record itself could not be decoded (it cannot be replayed then). */
  command: DeliveryCommand | undefined;
}

export interface DlqFilter {
  ruleId?: string;
  since?: number;
  until?: number;
  reason?: string;
  /** `partition:offset` of one record. */
  position?: string;
}

/** Every record of the dead-letter topic up to its current end, decoded, oldest first. */
export async function readDeadDeliveries(kafka: Kafka, registry: SchemaRegistryClient, names: TopicNames): Promise<DeadDelivery[]> {
  const topic = names.deliveriesDlq;
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const found: DeadDelivery[] = [];
  await readRanges(kafka, names, drainRanges(topic, ends), async ({ partition, message }) => {
    found.push(await deadLetterEntry(registry, topic, partition, message, true));
  });
  return found.sort((a, b) => a.at - b.at);
}

/** One dead-letter record as operators see it; `commands` says whether the topic holds delivery commands to decode. */
export async function deadLetterEntry(registry: SchemaRegistryClient, topic: string, partition: number, message: KafkaMessage, commands: boolean): Promise<DeadDelivery> {
  let command: DeliveryCommand | undefined;
  if (commands) {
    try {
      command = await registry.decode(contracts.deliveryCommand, message.value);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
    }
  }
  const header = (name: string) => headerValue(message.headers, name);
  return {
    topic,
    partition,
    offset: message.offset,
    at: Date.parse(header(DLQ_HEADERS.at) ?? '') || Number(message.timestamp),
    reason: header(DLQ_HEADERS.reason) ?? 'unknown',
    error: redactUrlsIn(header(DLQ_HEADERS.error) ?? ''),
    service: header(DLQ_HEADERS.service),
    sourceTopic: header(DLQ_HEADERS.topic),
    key: message.key?.toString(),
    bytes: message.value?.length ?? 0,
    command,
  };
}

export function filterDeadDeliveries(entries: DeadDelivery[], filter: DlqFilter): DeadDelivery[] {
  return entries.filter((entry) =>
    (!filter.ruleId || entry.command?.ruleId === filter.ruleId) &&
    (filter.since === undefined || entry.at >= filter.since) &&
    (filter.until === undefined || entry.at <= filter.until) &&
    (!filter.reason || entry.reason === filter.reason) &&
    (!filter.position || `${entry.partition}:${entry.offset}` === filter.position));
}

/** A dead-lettered delivery as one to send again: after its last attempt, saying where it was replayed from. */
export function replayOf(entry: DeadDelivery): SendAgain<DeadDelivery> {
  return {
    entry, command: entry.command, missing: `not a decodable command (${entry.reason})`, lastAttempt: entry.command?.attempt ?? 0,
    headers: { 'replayed-from': `${entry.topic}:${entry.partition}:${entry.offset}` },
  };
}
