/**
 * Retiring a dispatcher pool for good. Its announcement is tombstoned on the dispatcher-pools topic, so matchers stop
 * routing to it (a rule that only it could take then gets a `failed` "no pool" log record), and every command still
 * waiting in its command and retry topics is dead-lettered `pool-retired` with a `dead_lettered` log record, instead of
 * silently expiring with the topic's retention. Its consumer group's offsets then move to the end of what was drained,
 * so a second run drains nothing twice. The decisions are pure functions; `retirePool` does the Kafka I/O.
 */
import { contracts, type DeliveryCommand, type DeliveryLog, type DispatcherPool, type EventRule } from '../../schemas/index.ts';
import { deadLetter, type DeadLetterSource } from '../common/dead-letter.ts';
import { deliveryLogRecord } from '../common/deliveries.ts';
import { createProducer, retryRetriable, type Admin, type Kafka, type Message } from '../common/kafka.ts';
import { OutputBatch } from '../common/output-batch.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import { DEFAULT_POOL, type TopicNames } from '../common/topics.ts';
import { drainRanges, readRanges, type DrainRange } from './topic-ranges.ts';

export const POOL_RETIRED = 'pool-retired';

export interface PoolState {
  pool: string;
  /** The pool's current announcement; undefined once retired (or never announced). */
  announcement: DispatcherPool | undefined;
  /** The pool's command topic and retry topics that exist on the cluster. */
  topics: string[];
  group: string;
  /** Members of the pool's consumer group: its running dispatchers. */
  members: number;
}

/** Why `pool` must not be retired now, if it must not. `--force` overrides live members only. */
export function retirementRefusal(state: PoolState, force: boolean): string | undefined {
  const { pool, group, members } = state;
  if (pool === DEFAULT_POOL) return 'the default pool cannot be retired: every rule without delegate selectors is sent to it';
  if (!state.announcement && state.topics.length === 0) return `no pool "${pool}": it has no announcement and no command topic`;
  if (members > 0 && !force) {
    return `${members} dispatcher(s) of pool "${pool}" are still members of consumer group ${group}: stop them first `
      + '(a killed one leaves after the session timeout, ~10 s), give --group if they use another DISPATCHER_GROUP_ID, '
      + 'or retire the pool anyway with --force (which waits for the group to empty before draining)';
  }
  return undefined;
}

/** The pool's command topic and its retry topics (of any schedule it ever had), among `existing`. */
export function poolTopics(names: TopicNames, pool: string, existing: Iterable<string>): string[] {
  const commands = names.deliveries(pool);
  return [...existing].filter((topic) => topic === commands || topic.startsWith(`${commands}.retry.`)).sort();
}


/** One drained record, decoded or with the reason it could not be. */
export type DrainedRecord = { source: DeadLetterSource; command: DeliveryCommand } | { source: DeadLetterSource; error: DecodeError };

/**
 * What a drained record leaves behind: its dead-letter copy (byte for byte, with the reason headers the dispatcher's
 * dead letters carry) and, for a decodable command, its `dead_lettered` log record.
 */
export function retiredRecords(service: string, pool: string, drained: DrainedRecord, rule: EventRule | undefined, now = Date.now()): { deadLetter: Message; log: DeliveryLog | undefined } {
  if ('error' in drained) return { deadLetter: deadLetter(drained.source, service, drained.error.reason, drained.error.message), log: undefined };
  const { command, source } = drained;
  const error = `pool "${pool}" was retired before this delivery ended; replay it through another pool`;
  const copy = deadLetter(source, service, POOL_RETIRED, error);
  return {
    deadLetter: { ...copy, headers: { ...copy.headers, 'delivery-id': command.deliveryId } },
    log: deliveryLogRecord(command, rule, { outcome: 'dead_lettered', error }, pool, now),
  };
}

export interface RetirementIo {
  /** Who retires the pool: named in the dead letters' headers. */
  service: string;
  kafka: Kafka;
  registry: SchemaRegistryClient;
  names: TopicNames;
  /** The pools and rules as they are now (the CLI's tables). */
  announcement: (pool: string) => DispatcherPool | undefined;
  rule: (id: string) => EventRule | undefined;
}

export interface RetirementOptions {
  group: string;
  force: boolean;
  /** How long --force waits for the group's members to leave. */
  emptyTimeoutMs: number;
  /** How long to wait for matchers to apply the tombstone before checking that nothing more arrived. */
  settleMs: number;
  onProgress?: (drained: number) => void;
}

export interface RetirementResult {
  /** Whether this run removed the announcement (false: it was already retired). */
  tombstoned: boolean;
  topics: string[];
  deadLettered: number;
  /** Of which records that could not be decoded as commands (dead-lettered with their decode reason). */
  undecodable: number;
}

export class RetirementRefused extends Error {}

/** The pool's state as operators see it (`pools list`) and as the retirement checks it. */
export async function poolState(admin: Admin, names: TopicNames, pool: string, group: string, announcement: DispatcherPool | undefined): Promise<PoolState> {
  const [topics, { groups }] = await Promise.all([admin.listTopics(), admin.describeGroups([group])]);
  return { pool, announcement, topics: poolTopics(names, pool, topics), group, members: groups[0]?.members.length ?? 0 };
}

export async function retirePool(io: RetirementIo, pool: string, options: RetirementOptions): Promise<RetirementResult> {
  const { kafka, names } = io;
  const admin = kafka.admin();
  await admin.connect();
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    const state = await poolState(admin, names, pool, options.group, io.announcement(pool));
    const refusal = retirementRefusal(state, options.force);
    if (refusal) throw new RetirementRefused(refusal);
    if (state.announcement) await producer.send({ topic: names.dispatcherPools, acks: -1, messages: [{ key: pool, value: null }] });
    // Kafka lets an outsider move a group's offsets only while it has no members; and a live member would deliver
    // what is being dead-lettered.
    await waitForEmptyGroup(admin, options.group, options.force ? options.emptyTimeoutMs : 0);

    const logCodec = await io.registry.codec(`${names.deliveryLog}-value`, contracts.deliveryLog);
    const outputs = new OutputBatch(producer);
    const result: RetirementResult = { tombstoned: state.announcement !== undefined, topics: state.topics, deadLettered: 0, undecodable: 0 };
    const handle = async (drained: DrainedRecord) => {
      const { deadLetter: copy, log } = retiredRecords(io.service, pool, drained, 'command' in drained ? io.rule(drained.command.ruleId) : undefined);
      outputs.add(names.deliveriesDlq, copy);
      if (log) outputs.add(names.deliveryLog, { key: log.deliveryId, value: logCodec.encode(log) });
      else result.undecodable += 1;
      result.deadLettered += 1;
      if (outputs.full) await outputs.send();
      options.onProgress?.(result.deadLettered);
    };

    let ranges = (await Promise.all(state.topics.map(async (topic) => {
      const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), retryRetriable(() => admin.fetchOffsets({ groupId: options.group, topics: [topic] }))]);
      return drainRanges(topic, ends, committed?.partitions ?? []);
    }))).flat();
    const drainedTo = new Map<string, DrainRange>();
    // A matcher may route a last few commands here before it applies the tombstone: drain until nothing more arrives.
    while (ranges.length > 0) {
      await readRanges(kafka, names, ranges, async (source) => handle(await decoded(source, io.registry)));
      for (const range of ranges) drainedTo.set(`${range.topic}:${range.partition}`, range);
      await new Promise((resolve) => setTimeout(resolve, options.settleMs));
      ranges = (await Promise.all(state.topics.map(async (topic) => drainRanges(topic, await admin.fetchTopicOffsets(topic),
        [...drainedTo.values()].filter((range) => range.topic === topic).map(({ partition, to }) => ({ partition, offset: String(to) })))))).flat();
    }
    // Durable (acks=all) before the offsets move: a failure before this point drains the same records again next time.
    await outputs.send();
    for (const topic of state.topics) {
      const partitions = [...drainedTo.values()].filter((range) => range.topic === topic).map(({ partition, to }) => ({ partition, offset: String(to) }));
      if (partitions.length) await retryRetriable(() => admin.setOffsets({ groupId: options.group, topic, partitions }));
    }
    return result;
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
}

async function waitForEmptyGroup(admin: Admin, group: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { groups } = await admin.describeGroups([group]);
    const members = groups[0]?.members.length ?? 0;
    if (members === 0) return;
    if (Date.now() >= deadline) {
      throw new RetirementRefused(`consumer group ${group} still has ${members} member(s) after ${timeoutMs} ms; the pool no longer gets new commands, `
        + 'run `pools retire` again once its dispatchers stopped');
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}


async function decoded(source: DeadLetterSource, registry: SchemaRegistryClient): Promise<DrainedRecord> {
  try {
    return { source, command: await registry.decode(contracts.deliveryCommand, source.message.value) };
  } catch (error) {
    // Registry outages propagate: nothing is committed, the next run drains the same records again.
    if (!(error instanceof DecodeError)) throw error;
    return { source, error };
  }
}
