/**
 * The command source: owns the consumer of a pool's command and retry topics — group membership, offsets, pause and
 * seek, rebalances and back-pressure — and hands each record to a handler that resolves once the record's outputs are
 * durable.
 *
 * - Records of a partition are handled concurrently; the partition's offset is committed only past records whose
 *   handler resolved, contiguously, so a kill -9 at any moment loses nothing.
 * - A delayed (retry) topic's partition is paused until its first record is due: nothing sleeps inside a handler.
 * - A rebalance drops the state of partitions this member lost: their handlers finish, but their offsets are never
 *   committed here (another member owns them now). A partition it keeps is re-fetched from its committed offset;
 *   records already started are recognised by offset and not handled twice.
 * - While `maxHeld` records, or `maxHeldBytes` of them and their rendered bodies, are being handled, reading waits —
 *   and keeps heartbeating, so a long wait never costs the group membership.
 * - A handler that rejects means the outputs could not be written (Kafka down past retries): the source reports it as
 *   fatal, and the process restarts from the last commit.
 */
import { MAX_TIMER_MS } from '../common/config.ts';
import { onFatalCrash, type Consumer, type EachBatchPayload, type KafkaMessage } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { assignedPartitions, OffsetCommitter, partitionKey } from '../common/offset-committer.ts';
import { OffsetTracker } from '../common/offset-tracker.ts';

export interface CommandSourceSettings {
  consumer: Consumer;
  topics: string[];
  /** Partitions handled at the same time. */
  concurrency: number;
  /** When a record is due: undefined for one due at once, else the time its partition waits for (the retry topics). */
  dueAt: (topic: string, message: KafkaMessage) => number | undefined;
  /** Records being handled at most; past this, reading waits. */
  maxHeld: number;
  /** Bytes held at most — the records' values plus what their handlers hold for them (rendered bodies); past this, reading waits. */
  maxHeldBytes: number;
  /** `hold(bytes)` counts more bytes against `maxHeldBytes` until the handler settles. */
  handle: (topic: string, partition: number, message: KafkaMessage, hold: (bytes: number) => void) => Promise<void>;
  onFatal: (error: Error) => void;
  /** Told of every rebalance after the first join (metrics: a member evicted for not heartbeating shows here). */
  onRebalance: () => void;
  logger: Logger;
}

interface PartitionState {
  tracker: OffsetTracker;
  /** The highest offset started: a re-fetched record at or below it is already handled or in hand. */
  lastStarted: bigint;
}

const HEARTBEAT_WHILE_WAITING_MS = 1000;

export class CommandSource {
  readonly #settings: CommandSourceSettings;
  readonly #partitions = new Map<string, PartitionState>();
  readonly #committer: OffsetCommitter;
  #held = 0;
  #heldBytes = 0;
  #roomWaiters: Array<() => void> = [];
  #consuming = false;
  #stopping = false;

  constructor(settings: CommandSourceSettings) {
    this.#settings = settings;
    this.#committer = new OffsetCommitter(settings.consumer, settings.logger);
  }

  get consuming(): boolean {
    return this.#consuming;
  }

  /** Records being handled now. */
  get held(): number {
    return this.#held;
  }

  /** Bytes held now: the records being handled and what their handlers hold for them. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  async start(): Promise<void> {
    const { consumer, topics, concurrency, onFatal } = this.#settings;
    onFatalCrash(consumer, (error) => {
      this.#consuming = false;
      onFatal(error);
    });
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (joined) this.#settings.onRebalance();
      joined = true;
      this.#assigned(payload.memberAssignment);
    });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: concurrency, eachBatch: (payload) => this.#batch(payload) });
    this.#consuming = true;
    this.#committer.start();
  }

  /** Stops reading, lets the records in hand finish (until `deadline`), commits, leaves the group. */
  async stop(deadline: number): Promise<void> {
    this.#stopping = true;
    this.#consuming = false;
    // Nothing more is read: a batch that is not handled is fetched again at once, so while the records in hand finish
    // (up to an attempt's timeout) an unpaused consumer would fetch and decode the same batches in a busy loop.
    this.#settings.consumer.pause(this.#settings.topics.map((topic) => ({ topic })));
    while (this.#held > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await this.#committer.stop();
    await this.#settings.consumer.disconnect();
  }

  /** Commits the offsets finished since the last commit. */
  flush(): Promise<void> {
    return this.#committer.flush();
  }

  /** After a rebalance: forget partitions now owned elsewhere, with their offsets not yet committed. */
  #assigned(assignment: Record<string, number[]>): void {
    const owned = assignedPartitions(assignment);
    for (const key of this.#partitions.keys()) if (!owned.has(key)) this.#partitions.delete(key);
    this.#committer.retain(owned);
  }

  async #batch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const key = partitionKey(topic, partition);
    let state = this.#partitions.get(key);
    if (!state) this.#partitions.set(key, (state = { tracker: new OffsetTracker(), lastStarted: -1n }));
    // Whether to go on can only change while this loop awaits (a seek, a rebalance and stop() all run elsewhere), and
    // kafkajs's isStale() costs a JSON.stringify: asked at the start and after each wait, not per record. For the same
    // reason the position is resolved once before each wait and at the end, not per record.
    const goOn = () => isRunning() && !isStale() && !this.#stopping;
    if (!goOn()) return;
    let resolved: string | undefined;
    const resolve = () => {
      if (resolved !== undefined) resolveOffset(resolved);
      resolved = undefined;
    };
    for (const message of batch.messages) {
      if (BigInt(message.offset) <= state.lastStarted) {
        resolved = message.offset;
        continue;
      }
      const due = this.#settings.dueAt(topic, message);
      if (due !== undefined && due > Date.now()) {
        resolve();
        return this.#pauseUntil(topic, partition, message.offset, due);
      }
      if (this.#full()) {
        resolve();
        while (this.#full()) {
          await Promise.race([new Promise<void>((wake) => this.#roomWaiters.push(wake)), new Promise((wake) => setTimeout(wake, HEARTBEAT_WHILE_WAITING_MS))]);
          await heartbeat();
          if (!goOn()) return;
        }
      }
      this.#begin(key, state, topic, partition, message);
      resolved = message.offset;
    }
    resolve();
    await heartbeat();
  }

  /** No room for another record: as many held as allowed, or as many bytes (one record always goes, however large). */
  #full(): boolean {
    return this.#held >= this.#settings.maxHeld || (this.#held > 0 && this.#heldBytes >= this.#settings.maxHeldBytes);
  }

  #begin(key: string, state: PartitionState, topic: string, partition: number, message: KafkaMessage): void {
    state.tracker.start(message.offset);
    state.lastStarted = BigInt(message.offset);
    this.#held += 1;
    let bytes = message.value?.length ?? 0;
    this.#heldBytes += bytes;
    const hold = (more: number) => {
      bytes += more;
      this.#heldBytes += more;
    };
    this.#settings.handle(topic, partition, message, hold).then(
      () => {
        this.#release(bytes);
        // Revoked meanwhile: the partition's offsets are its new owner's to commit.
        if (this.#partitions.get(key) !== state) return;
        const offset = state.tracker.done(message.offset);
        if (offset !== undefined) this.#committer.set(topic, partition, offset);
      },
      (error: Error) => {
        this.#release(bytes);
        this.#settings.logger.error({ err: error, topic, partition, offset: message.offset }, 'could not record a delivery; restarting from the last commit');
        this.#settings.onFatal(error);
      },
    );
  }

  #release(bytes: number): void {
    this.#held -= 1;
    this.#heldBytes -= bytes;
    if (this.#roomWaiters.length === 0) return;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }

  #pauseUntil(topic: string, partition: number, offset: string, due: number): void {
    const { consumer } = this.#settings;
    consumer.pause([{ topic, partitions: [partition] }]);
    consumer.seek({ topic, partition, offset });
    setTimeout(() => {
      if (!this.#stopping) consumer.resume([{ topic, partitions: [partition] }]);
    }, Math.min(due - Date.now(), MAX_TIMER_MS)).unref();
  }
}
