/**
 * Consumer offsets committed on a timer instead of per batch. A commit is a request to the group coordinator and a
 * write to __consumer_offsets; at moderate rates a batch holds a few records, so committing each one cost a request
 * per few records. The caller hands over an offset only once everything before it is durable (its outputs
 * acknowledged), so at-least-once holds; a crash re-reads at most one interval's records.
 *
 * After a rebalance the offsets of partitions this member lost are dropped, never committed: the coordinator accepts
 * any member's commit for any partition, so a late one could move the new owner's position backwards.
 *
 * A failed commit (a rebalance under way, a coordinator moving) is tried again at the next flush: dropping it would make
 * a restart re-send every record handled since the last commit that went through, each forking a new retry chain.
 */
import type { Consumer } from './kafka.ts';
import type { Logger } from './logger.ts';

export const partitionKey = (topic: string, partition: number) => `${topic}:${partition}`;

/** The partitions of a member assignment (kafkajs's GROUP_JOIN payload), by partitionKey. */
export function assignedPartitions(assignment: Record<string, number[]>): Set<string> {
  return new Set(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((partition) => partitionKey(topic, partition))));
}

/**
 * Commits stop() tries before giving up (the process is going away; its records will be redelivered), and how long it
 * keeps starting new ones: a commit to an unreachable coordinator takes seconds, and a stop must end well within the
 * service's stop timeout.
 */
const STOP_ATTEMPTS = 3;
const STOP_RETRY_MS = 5000;

export class OffsetCommitter {
  readonly #consumer: Pick<Consumer, 'commitOffsets'>;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #pending = new Map<string, { topic: string; partition: number; offset: string }>();
  /** Partitions of the commit in flight that this member still owns: only those go back to pending if it fails. */
  readonly #inFlight = new Set<string>();
  #committing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(consumer: Pick<Consumer, 'commitOffsets'>, logger: Logger, intervalMs = 200) {
    this.#consumer = consumer;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), this.#intervalMs);
  }

  /** `offset` is the next one to read: everything before it is done. */
  set(topic: string, partition: number, offset: string): void {
    this.#pending.set(partitionKey(topic, partition), { topic, partition, offset });
  }

  /** After a rebalance: forget the offsets of partitions not in `owned` (partitionKey). */
  retain(owned: ReadonlySet<string>): void {
    for (const key of this.#pending.keys()) if (!owned.has(key)) this.#pending.delete(key);
    for (const key of this.#inFlight) if (!owned.has(key)) this.#inFlight.delete(key);
  }

  /** Commits what was set since the last call; calls never overlap, so commits never go out of order. */
  flush(): Promise<void> {
    this.#committing = this.#committing.then(() => this.#commit());
    return this.#committing;
  }

  /** Stops the timer and commits what is left, trying a failed commit a few times more: there is no next tick. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const began = Date.now();
    for (let attempt = 1; ; attempt += 1) {
      await this.flush();
      if (this.#pending.size === 0) return;
      if (attempt >= STOP_ATTEMPTS || Date.now() - began > STOP_RETRY_MS) break;
      await new Promise((resolve) => setTimeout(resolve, this.#intervalMs));
    }
    this.#logger.warn({ partitions: this.#pending.size }, 'offsets still not committed when stopping; their records will be redelivered after a restart');
  }

  async #commit(): Promise<void> {
    if (this.#pending.size === 0) return;
    const offsets = [...this.#pending.values()];
    this.#pending.clear();
    for (const { topic, partition } of offsets) this.#inFlight.add(partitionKey(topic, partition));
    try {
      await this.#consumer.commitOffsets(offsets);
    } catch (error) {
      // Back to pending for the next flush (the timer's next tick: no loop here), unless a newer offset was set meanwhile
      // or the partition was revoked (its new owner's position must not be moved).
      for (const offset of offsets) {
        const key = partitionKey(offset.topic, offset.partition);
        if (this.#inFlight.has(key) && !this.#pending.has(key)) this.#pending.set(key, offset);
      }
      this.#logger.warn({ err: error }, 'offset commit failed (a rebalance?); trying again at the next flush');
    } finally {
      this.#inFlight.clear();
    }
  }
}
