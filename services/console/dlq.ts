/**
 * The deliveries' dead-letter topic for operators: list what is there (by rule, time, reason) and replay it back into
 * the pipeline. A replayed command keeps its delivery id (so receivers still de-duplicate) and starts again at
 * attempt 1 on the pool its rule's selectors choose now.
 */
import { randomUUID } from 'node:crypto';
import { contracts, type DeliveryCommand, type EventRule } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../common/dead-letter.ts';
import { headerValue, type Kafka } from '../common/kafka.ts';
import type { DispatcherPool } from '../../schemas/index.ts';
import { choosePool } from '../common/pools.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import type { TopicNames } from '../common/topics.ts';

export interface DeadDelivery {
  partition: number;
  offset: string;
  /** When it was dead-lettered (ms). */
  at: number;
  reason: string;
  error: string;
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
  const remaining = new Map(ends.filter(({ offset, low }) => BigInt(offset) > BigInt(low)).map(({ partition, offset }) => [partition, BigInt(offset)]));
  const found: DeadDelivery[] = [];
  if (remaining.size === 0) return found;
  const consumer = kafka.consumer({ groupId: `dlq-reader-${randomUUID()}`, maxWaitTimeInMs: 250 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          let command: DeliveryCommand | undefined;
          try {
            command = await registry.decode(contracts.deliveryCommand, message.value);
          } catch (error) {
            if (!(error instanceof DecodeError)) throw error;
          }
          found.push({
            partition,
            offset: message.offset,
            at: Date.parse(headerValue(message.headers, DLQ_HEADERS.at) ?? '') || Number(message.timestamp),
            reason: headerValue(message.headers, DLQ_HEADERS.reason) ?? 'unknown',
            error: headerValue(message.headers, DLQ_HEADERS.error) ?? '',
            command,
          });
          if (BigInt(message.offset) + 1n >= (remaining.get(partition) ?? 0n)) remaining.delete(partition);
          if (remaining.size === 0) resolve();
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return found.sort((a, b) => a.at - b.at);
}

export function filterDeadDeliveries(entries: DeadDelivery[], filter: DlqFilter): DeadDelivery[] {
  return entries.filter((entry) =>
    (!filter.ruleId || entry.command?.ruleId === filter.ruleId) &&
    (filter.since === undefined || entry.at >= filter.since) &&
    (filter.until === undefined || entry.at <= filter.until) &&
    (!filter.reason || entry.reason === filter.reason) &&
    (!filter.position || `${entry.partition}:${entry.offset}` === filter.position));
}

export interface ReplayPlan {
  replay: Array<{ entry: DeadDelivery; topic: string }>;
  refused: Array<{ entry: DeadDelivery; why: string }>;
}

/** Where each record goes back to, or why it cannot (undecodable, rule gone, no pool fits). */
export function planReplay(entries: DeadDelivery[], rules: (id: string) => EventRule | undefined, pools: Iterable<DispatcherPool>, names: TopicNames): ReplayPlan {
  const plan: ReplayPlan = { replay: [], refused: [] };
  const poolList = [...pools];
  for (const entry of entries) {
    const rule = entry.command && rules(entry.command.ruleId);
    if (!entry.command) plan.refused.push({ entry, why: `not a decodable command (${entry.reason})` });
    else if (!rule) plan.refused.push({ entry, why: `rule ${entry.command.ruleId} no longer exists` });
    else {
      const route = choosePool(rule, entry.command.event, poolList);
      if (route.ok) plan.replay.push({ entry, topic: names.deliveries(route.pool) });
      else plan.refused.push({ entry, why: route.error });
    }
  }
  return plan;
}

/** The command as it goes back: same delivery id and event, attempt 1, due now. */
export function replayed(command: DeliveryCommand, now = Date.now()): DeliveryCommand {
  return { ...command, attempt: 1, notBefore: now };
}
