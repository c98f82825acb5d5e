/**
 * Exact offset ranges of topics, read once with a throw-away consumer group: what the console's one-off tools read
 * (every dead letter up to now, what a retired pool left behind).
 */
import { randomUUID } from 'node:crypto';
import type { DeadLetterSource } from '../common/dead-letter.ts';
import type { Kafka } from '../common/kafka.ts';
import type { TopicNames } from '../common/topics.ts';

export interface DrainRange {
  topic: string;
  partition: number;
  /** First offset to read, and the end (exclusive). */
  from: bigint;
  to: bigint;
}

/**
 * What is left for a group on one topic: from its committed offset (or, where it never committed, the oldest record
 * still kept) to the end. Partitions with nothing left are omitted; no commits at all means the whole topic.
 */
export function drainRanges(topic: string, ends: ReadonlyArray<{ partition: number; offset: string; low: string }>, committed: ReadonlyArray<{ partition: number; offset: string }> = []): DrainRange[] {
  const commits = new Map(committed.map(({ partition, offset }) => [partition, BigInt(offset)]));
  return ends.flatMap(({ partition, offset, low }) => {
    const commit = commits.get(partition) ?? -1n;
    const from = commit < BigInt(low) ? BigInt(low) : commit;
    return from < BigInt(offset) ? [{ topic, partition, from, to: BigInt(offset) }] : [];
  });
}

/** Reads exactly the given ranges and hands every record to `handle`, in order per partition, in a throw-away group of `names`' install. */
export async function readRanges(kafka: Kafka, names: Pick<TopicNames, 'group'>, ranges: DrainRange[], handle: (source: DeadLetterSource) => Promise<void>): Promise<void> {
  if (ranges.length === 0) return;
  const pending = new Map(ranges.map((range) => [`${range.topic}:${range.partition}`, range]));
  const consumer = kafka.consumer({ groupId: names.group(`console-reader-${randomUUID()}`), allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...new Set(ranges.map((range) => range.topic))], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, heartbeat }) => {
          const range = pending.get(`${batch.topic}:${batch.partition}`);
          if (!range) return;
          for (const message of batch.messages) {
            const offset = BigInt(message.offset);
            if (offset >= range.from && offset < range.to) await handle({ topic: batch.topic, partition: batch.partition, message });
          }
          if (BigInt(batch.lastOffset()) + 1n >= range.to) pending.delete(`${batch.topic}:${batch.partition}`);
          await heartbeat();
          if (pending.size === 0) resolve();
        },
      }).catch(reject);
      for (const range of ranges) consumer.seek({ topic: range.topic, partition: range.partition, offset: String(range.from) });
    });
  } finally {
    await consumer.disconnect();
  }
}
