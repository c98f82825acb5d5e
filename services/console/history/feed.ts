/**
 * Topics into the history store: a consumer group of this console's own that commits nothing to Kafka. The store's
 * positions are the truth: at start the consumer is sought to them, and a batch from before them (a consumer
 * restarted by kafkajs from the beginning) is skipped up to them, so nothing is stored twice and nothing is re-read
 * from the topic's beginning. Records and their positions are written in one transaction: the batches a fetch brings,
 * up to 5,000 records, together (a commit and a roll-up of the endpoints' buckets cost the same for a few hundred
 * records as for thousands). A store that takes several writes at once (PostgreSQL) gets them, each of other
 * partitions, while the next fetch is read. A write that fails is tried again for about a minute; one that keeps
 * failing stops the feed (the console reports not ready), and a restart reads on from the positions stored.
 *
 * Two feeds fill the history: the delivery log's attempts (HistoryFeed, which also tells a waiting Test its result)
 * and the first command of each delivery from the pools' command topics (CommandFeed: the event a resend needs).
 */
import { randomUUID } from 'node:crypto';
import { contracts, type Contract, type DeliveryCommand, type DeliveryLog } from '../../../schemas/index.ts';
import { onFatalCrash, type Consumer, type EachBatchPayload, type Kafka } from '../../common/kafka.ts';
import type { Logger } from '../../common/logger.ts';
import { DecodeError, type SchemaRegistryClient } from '../../common/registry.ts';
import type { DeliveryLogWatch } from '../../operator/actions.ts';
import type { HistoryStore, Segment } from './store.ts';

export interface FeedOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  store: HistoryStore;
  groupPrefix: string;
  logger: Logger;
  /** How long to wait before each new try of a write that failed; past the last, the feed gives up. */
  writeRetryDelaysMs?: readonly number[];
}

interface TopicFeedSpec<T> {
  /** What the feed stores, in the log lines: "delivery log", "commands". */
  name: string;
  topics: string | RegExp;
  contract: Contract<T>;
  write: (segments: Array<Segment<T>>) => Promise<void>;
  onStored?: (records: T[]) => void;
}

/** Records written in one transaction at most; fewer when the fetches bring fewer. */
const GROUP_RECORDS = 5000;
/** A write that fails is tried again for about a minute (a database restarting, a failover) before the feed gives up. */
const WRITE_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000, 30_000];

/** A partition's records read and not yet written, and the offset its first fetch began at (for the log). */
interface Pending<T> {
  segment: Segment<T>;
  fetchedFrom: string;
}

/**
 * The partitions read and free to write dealt into at most `lanes` writes, each partition to the write with the fewest
 * records so far, largest first: as even as whole partitions allow.
 */
export function writesOf<P extends { segment: Segment<unknown> }>(free: Array<[string, P]>, lanes: number): Array<Array<[string, P]>> {
  const writes = Array.from({ length: Math.min(Math.max(0, lanes), free.length) }, () => ({ records: 0, partitions: [] as Array<[string, P]> }));
  if (writes.length === 0) return [];
  for (const partition of [...free].sort(([, a], [, b]) => b.segment.records.length - a.segment.records.length)) {
    const lightest = writes.reduce((least, write) => (write.records < least.records ? write : least));
    lightest.partitions.push(partition);
    lightest.records += partition[1].segment.records.length;
  }
  return writes.map(({ partitions }) => partitions);
}

const matches = (topics: string | RegExp, topic: string) => (typeof topics === 'string' ? topics === topic : topics.test(topic));

class TopicFeed<T> {
  readonly #options: FeedOptions;
  readonly #spec: TopicFeedSpec<T>;
  readonly #consumer: Consumer;
  /** How far each partition has been read: what is stored, and what waits to be. */
  readonly #positions = new Map<string, bigint>();
  /** Read, not yet written, by partition. */
  readonly #pending = new Map<string, Pending<T>>();
  #pendingRecords = 0;
  #flushScheduled = false;
  /**
   * The writes in flight, by the partitions each writes: at most the store's parallelWrites, and a partition in one
   * at a time, so a later write of it never lands without the earlier.
   */
  readonly #writing = new Map<Promise<void>, string[]>();
  #failed: Error | undefined;

  constructor(options: FeedOptions, spec: TopicFeedSpec<T>) {
    this.#options = options;
    this.#spec = spec;
    // Fetches of at most 2 MB (kafkajs: 10 MB): a fetch's buffer lives as long as any record decoded from it, and a
    // feed catching up fetches full ones back to back (peak RSS 361 → 343 MB storing 300,000 attempts).
    this.#consumer = options.kafka.consumer({ groupId: `${options.groupPrefix}.history.${randomUUID()}`, maxWaitTimeInMs: 500, maxBytes: 2 * 1024 * 1024 });
  }

  get failure(): Error | undefined {
    return this.#failed;
  }

  async start(): Promise<void> {
    const { store, logger } = this.#options;
    const { name, topics } = this.#spec;
    onFatalCrash(this.#consumer, (error) => {
      this.#failed = error;
      logger.error({ err: error }, `the history stopped reading the ${name} for good; the console reports not ready`);
    }, { maxRestarts: 5 });
    const positions = (await store.positions()).filter(({ topic }) => matches(topics, topic));
    for (const { topic, partition, next } of positions) this.#positions.set(`${topic}:${partition}`, BigInt(next));
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [topics], fromBeginning: true });
    await this.#consumer.run({ autoCommit: false, eachBatch: (payload) => this.#batch(payload) });
    // Held by kafkajs until each partition's first fetch, so no batch before them is fetched.
    for (const { topic, partition, next } of positions) {
      try {
        this.#consumer.seek({ topic, partition, offset: next });
      } catch (error) {
        // A topic gone since (a retired pool's): nothing of it to read.
        logger.debug({ topic, partition, err: error }, `the history did not seek a ${name} partition it no longer reads`);
      }
    }
  }

  /** Stops reading, then stores what was read. */
  async stop(): Promise<void> {
    await this.#consumer.disconnect();
    while ((this.#writing.size > 0 || this.#pending.size > 0) && !this.#failed) await this.#flush();
  }

  async #batch({ batch, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.isEmpty() || this.#failed) return;
    const { topic, partition } = batch;
    const { registry, logger } = this.#options;
    const { name, contract } = this.#spec;
    const key = `${topic}:${partition}`;
    const position = this.#positions.get(key);
    let messages = batch.messages;
    if (position !== undefined && BigInt(messages[0]!.offset) < position) {
      if (position > BigInt(batch.highWatermark)) {
        logger.warn({ topic, partition, position: String(position), end: batch.highWatermark }, `the ${name} partition ends before the history's position (the topic was recreated): storing it from its start`);
      } else {
        messages = messages.filter((message) => BigInt(message.offset) >= position);
        if (messages.length === 0) {
          logger.debug({ topic, partition, fetchedFrom: batch.firstOffset(), next: String(position) }, 'history skipped a batch it already stored');
          this.#consumer.seek({ topic, partition, offset: String(position) });
          return;
        }
      }
    }
    const records: T[] = [];
    for (const message of messages) {
      try {
        records.push(await registry.decode(contract, message.value));
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        logger.warn({ topic, partition, offset: message.offset, reason: error.reason }, `skipping an undecodable ${name} record`);
      }
    }
    const next = BigInt(batch.lastOffset()) + 1n;
    const read = { topic, partition, next: String(next) };
    const pending = this.#pending.get(key);
    if (pending) {
      for (const record of records) pending.segment.records.push(record);
      pending.segment.position = read;
    } else this.#pending.set(key, { segment: { records, position: read }, fetchedFrom: batch.firstOffset()! });
    this.#pendingRecords += records.length;
    this.#positions.set(key, next);
    // Full: read on only once a write ends. Else written once the batches in hand are handed over (kafkajs hands a
    // fetch's batches over one after the other, without waiting in between), or after a write in flight.
    while (this.#pendingRecords >= GROUP_RECORDS && !this.#failed) await this.#flush();
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        void this.#flush();
      });
    }
  }

  /**
   * Starts writing what was read of the partitions no write in flight holds, in as many writes as lanes are free
   * (writesOf); resolves when a write in flight ends.
   */
  #flush(): Promise<void> {
    const busy = new Set([...this.#writing.values()].flat());
    const free = [...this.#pending].filter(([key]) => !busy.has(key));
    for (const group of writesOf(free, this.#options.store.parallelWrites - this.#writing.size)) {
      for (const [key, { segment }] of group) {
        this.#pending.delete(key);
        this.#pendingRecords -= segment.records.length;
      }
      const write: Promise<void> = this.#write(group.map(([, pending]) => pending)).finally(() => {
        this.#writing.delete(write);
        if (this.#pending.size > 0) void this.#flush();
      });
      this.#writing.set(write, group.map(([key]) => key));
    }
    return this.#writing.size > 0 ? Promise.race(this.#writing.keys()) : Promise.resolve();
  }

  async #write(pending: Array<Pending<T>>): Promise<void> {
    const { logger } = this.#options;
    const { name } = this.#spec;
    const segments = pending.map(({ segment }) => segment);
    const delays = this.#options.writeRetryDelaysMs ?? WRITE_RETRY_DELAYS_MS;
    for (let attempt = 1; !this.#failed; attempt += 1) {
      try {
        await this.#spec.write(segments);
        for (const { segment: { records, position }, fetchedFrom } of pending) {
          // `fetchedFrom`: where the fetch began, before anything already stored was skipped.
          logger.debug({ topic: position.topic, partition: position.partition, fetchedFrom, next: position.next, records: records.length }, 'history stored a batch');
          this.#spec.onStored?.(records);
        }
        return;
      } catch (error) {
        const delay = delays[attempt - 1];
        if (delay === undefined) {
          this.#failed = error as Error;
          logger.error({ err: error }, `the history could not store the ${name}; it stops reading it and the console reports not ready (a restart reads on from what was stored)`);
          await this.#consumer.disconnect().catch(() => undefined);
          return;
        }
        logger.warn({ err: error, attempt }, `the history could not store the ${name}; trying again`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

/** The delivery log's attempts into the history. */
export class HistoryFeed implements DeliveryLogWatch {
  readonly #feed: TopicFeed<DeliveryLog>;
  readonly #waiters = new Map<string, Set<(entry: DeliveryLog) => void>>();
  readonly #store: HistoryStore;
  #running = false;

  constructor(options: FeedOptions & { topic: string }) {
    this.#store = options.store;
    this.#feed = new TopicFeed(options, {
      name: 'delivery log', topics: options.topic, contract: contracts.deliveryLog,
      write: (segments) => options.store.append(segments),
      onStored: (attempts) => {
        for (const entry of attempts) for (const resolve of this.#waiters.get(entry.deliveryId) ?? []) resolve(entry);
      },
    });
  }

  /** Why the feed stopped following the delivery log for good, if it did. */
  get failure(): Error | undefined {
    return this.#feed.failure;
  }

  async start(): Promise<void> {
    await this.#feed.start();
    this.#running = true;
  }

  stop(): Promise<void> {
    this.#running = false;
    return this.#feed.stop();
  }

  /**
   * The next record of `deliveryId` to arrive, or undefined after `timeoutMs`: as this feed stores it, or, while
   * another console feeds a shared history, as it appears there.
   */
  next(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined> {
    return this.#running ? this.#stored(deliveryId, timeoutMs) : this.#polled(deliveryId, timeoutMs);
  }

  async #polled(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 250))) {
      const [entry] = (await this.#store.query({ deliveryId, limit: 1 })).entries;
      if (entry) return entry;
    }
    return undefined;
  }

  #stored(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(deliveryId) ?? new Set();
      this.#waiters.set(deliveryId, waiters);
      const done = (entry: DeliveryLog | undefined) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(deliveryId);
        resolve(entry);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      waiters.add(done);
    });
  }
}

/** Each delivery's first command, from every pool's command topic (`topics`), into the history. */
export class CommandFeed extends TopicFeed<DeliveryCommand> {
  constructor(options: FeedOptions & { topics: RegExp }) {
    super(options, { name: 'commands', topics: options.topics, contract: contracts.deliveryCommand, write: (segments) => options.store.appendCommands(segments) });
  }
}
