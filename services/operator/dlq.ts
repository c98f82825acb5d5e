/**
 * The deliveries' dead-letter topic for operators: list what is there (by rule, time, reason) and replay it back into
 * the pipeline. A replayed command keeps its delivery id (so receivers still de-duplicate) and goes on with the next
 * attempt number, the whole retry schedule and a new age, on the pool its rule's selectors choose now.
 */
import { contracts, type DeliveryCommand, type EventRule } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../common/dead-letter.ts';
import { sentAgain } from '../common/deliveries.ts';
import { headerValue, type Kafka, type KafkaMessage } from '../common/kafka.ts';
import type { DispatcherPool } from '../../schemas/index.ts';
import { choosePool } from '../common/pools.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import { redactUrlsIn } from '../common/rules.ts';
import type { TopicNames } from '../common/topics.ts';
import type { CommandSender } from './command-sender.ts';
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

/** Sends a plan's replays, one by one (acknowledged each), telling `onSent` after each. */
export async function sendReplays(plan: ReplayPlan, sender: CommandSender, onSent: (done: number) => void = () => undefined): Promise<number> {
  let done = 0;
  for (const { entry, topic } of plan.replay) {
    await sender.send(topic, sentAgain(entry.command!, entry.command!.attempt, Date.now()), { 'replayed-from': `${entry.topic}:${entry.partition}:${entry.offset}` });
    onSent((done += 1));
  }
  return done;
}
