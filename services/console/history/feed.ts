/**
 * The delivery-log topic into the history store: a consumer group of this console's own that commits nothing to Kafka.
 * The store's positions are the truth: at start the consumer is sought to them, and a batch from before them (a
 * consumer restarted by kafkajs from the beginning) is skipped up to them, so nothing is stored twice and nothing is
 * re-read from the topic's beginning. A batch's attempts and its position are written in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { contracts, type DeliveryLog } from '../../../schemas/index.ts';
import { onFatalCrash, type Consumer, type EachBatchPayload, type Kafka } from '../../common/kafka.ts';
import type { Logger } from '../../common/logger.ts';
import { DecodeError, type SchemaRegistryClient } from '../../common/registry.ts';
import type { DeliveryLogWatch } from '../../operator/actions.ts';
import type { HistoryStore, Positions, StoredAttempt } from './store.ts';

export interface HistoryFeedOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  store: HistoryStore;
  topic: string;
  groupPrefix: string;
  logger: Logger;
}

export class HistoryFeed implements DeliveryLogWatch {
  readonly #options: HistoryFeedOptions;
  readonly #consumer: Consumer;
  readonly #waiters = new Map<string, Set<(entry: DeliveryLog) => void>>();
  #positions: Positions = new Map();
  #failed: Error | undefined;

  constructor(options: HistoryFeedOptions) {
    this.#options = options;
    this.#consumer = options.kafka.consumer({ groupId: `${options.groupPrefix}.history.${randomUUID()}`, maxWaitTimeInMs: 500 });
  }

  /** Why the feed stopped following the delivery log for good, if it did. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  async start(): Promise<void> {
    const { topic, store, logger } = this.#options;
    onFatalCrash(this.#consumer, (error) => {
      this.#failed = error;
      logger.error({ err: error }, 'the history stopped reading the delivery log for good; the console reports not ready');
    }, { maxRestarts: 5 });
    this.#positions = await store.positions();
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topic, fromBeginning: true });
    await this.#consumer.run({ autoCommit: false, eachBatch: (payload) => this.#batch(payload) });
    // Held by kafkajs until each partition's first fetch, so no batch before them is fetched.
    for (const [partition, offset] of this.#positions) this.#consumer.seek({ topic, partition, offset });
  }

  stop(): Promise<void> {
    return this.#consumer.disconnect();
  }

  /** The next record of `deliveryId` to arrive, or undefined after `timeoutMs`. */
  next(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined> {
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

  async #batch({ batch, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.isEmpty()) return;
    const { topic, partition } = batch;
    const { registry, store, logger } = this.#options;
    const known = this.#positions.get(partition);
    const position = known === undefined ? undefined : BigInt(known);
    let messages = batch.messages;
    if (known !== undefined && position !== undefined && BigInt(messages[0]!.offset) < position) {
      if (position > BigInt(batch.highWatermark)) {
        logger.warn({ partition, position: known, end: batch.highWatermark }, 'the delivery-log partition ends before the history\'s position (the topic was recreated): storing it from its start');
      } else {
        messages = messages.filter((message) => BigInt(message.offset) >= position);
        if (messages.length === 0) {
          logger.debug({ partition, fetchedFrom: batch.firstOffset(), next: known }, 'history skipped a batch it already stored');
          this.#consumer.seek({ topic, partition, offset: known });
          return;
        }
      }
    }
    const attempts: StoredAttempt[] = [];
    for (const message of messages) {
      try {
        attempts.push({ partition, offset: message.offset, entry: await registry.decode(contracts.deliveryLog, message.value) });
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        logger.warn({ partition, offset: message.offset, reason: error.reason }, 'skipping an undecodable delivery-log record');
      }
    }
    const next = String(BigInt(batch.lastOffset()) + 1n);
    await store.append(attempts, new Map([[partition, next]]));
    this.#positions.set(partition, next);
    // `fetchedFrom`: where the fetch began, before anything already stored was skipped.
    logger.debug({ partition, fetchedFrom: batch.firstOffset(), next, attempts: attempts.length }, 'history stored a batch');
    for (const { entry } of attempts) for (const resolve of this.#waiters.get(entry.deliveryId) ?? []) resolve(entry);
  }
}
