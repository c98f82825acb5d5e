/**
 * The command source's offset bookkeeping across rebalances. The consumer here is a stand-in that replays what kafkajs
 * does around a rebalance (GROUP_JOIN with the new assignment, a re-fetch from the committed offset): it tests this
 * module's decisions, not Kafka — the end-to-end behaviour is covered by the crash and chaos runs on a real broker.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Consumer, EachBatchPayload, KafkaMessage } from '../../services/common/kafka.ts';
import { CommandSource } from '../../services/dispatcher/command-source.ts';
import { testLogger } from '../helpers.ts';

const EVENTS = { GROUP_JOIN: 'group-join', CRASH: 'crash', FETCH: 'fetch' } as const;

class StandInConsumer extends EventEmitter {
  readonly events = EVENTS;
  readonly commits: Array<Array<{ topic: string; partition: number; offset: string }>> = [];
  #eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  #releaseCommit: (() => void) | undefined;
  commitsInProgress = 0;
  maxCommitsInProgress = 0;
  slowCommits = false;

  async connect() {}
  async subscribe() {}
  async disconnect() {}
  async run({ eachBatch }: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) {
    this.#eachBatch = eachBatch;
  }

  join(assignment: Record<string, number[]>) {
    this.emit(EVENTS.GROUP_JOIN, { payload: { memberAssignment: assignment } });
  }

  /** Delivers records `from`..`to` of a partition, as a fetch would. */
  deliver(topic: string, partition: number, from: number, to: number, valueBytes = 0) {
    const messages = Array.from({ length: to - from + 1 }, (_, index) => ({ offset: String(from + index), headers: {}, key: null, value: valueBytes ? Buffer.alloc(valueBytes) : null }) as unknown as KafkaMessage);
    return this.#eachBatch!({
      batch: { topic, partition, messages },
      resolveOffset: () => undefined,
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
    } as unknown as EachBatchPayload);
  }

  readonly paused: string[] = [];
  pause(topics: Array<{ topic: string; partitions?: number[] }>) {
    for (const { topic, partitions } of topics) this.paused.push(partitions ? partitions.map((partition) => `${topic}:${partition}`).join(',') : topic);
  }

  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>) {
    this.commitsInProgress += 1;
    this.maxCommitsInProgress = Math.max(this.maxCommitsInProgress, this.commitsInProgress);
    if (this.slowCommits) await new Promise<void>((resolve) => (this.#releaseCommit = resolve));
    this.commits.push(offsets);
    this.commitsInProgress -= 1;
  }

  finishCommit() {
    this.#releaseCommit?.();
  }
}

function source(consumer: StandInConsumer, { maxHeldBytes = Number.POSITIVE_INFINITY, renderedBytes = 0 } = {}) {
  const handled: string[] = [];
  const pending = new Map<string, () => void>();
  const commandSource = new CommandSource({
    consumer: consumer as unknown as Consumer,
    topics: ['commands'],
    concurrency: 1,
    dueAt: () => undefined,
    maxHeld: 100,
    maxHeldBytes,
    handle: (_topic, partition, message, hold) => {
      const key = `${partition}:${message.offset}`;
      handled.push(key);
      hold(renderedBytes);
      return new Promise<void>((resolve) => pending.set(key, resolve));
    },
    onFatal: (error) => { throw error; },
    onRebalance: () => undefined,
    logger: testLogger,
  });
  const finish = async (...keys: string[]) => {
    for (const key of keys) pending.get(key)!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { commandSource, handled, finish };
}

describe('command source', () => {
  it('rebalances: a partition kept is not handled twice when re-fetched, and a revoked one is never committed', async () => {
    const consumer = new StandInConsumer();
    const { commandSource, handled, finish } = source(consumer);
    await commandSource.start();
    consumer.join({ commands: [0, 1] });
    await consumer.deliver('commands', 0, 0, 2);
    await consumer.deliver('commands', 1, 0, 1);
    expect(handled).toEqual(['0:0', '0:1', '0:2', '1:0', '1:1']);

    // A member joins: partition 1 moves to it, partition 0 stays. kafkajs re-fetches partition 0 from its committed
    // offset (nothing committed yet) while its records are still in hand.
    consumer.join({ commands: [0] });
    await consumer.deliver('commands', 0, 0, 3);
    expect(handled).toEqual(['0:0', '0:1', '0:2', '1:0', '1:1', '0:3']); // only the new record

    await finish('0:0', '0:1', '0:2', '0:3', '1:0', '1:1');
    await commandSource.flush();
    const committed = consumer.commits.flat();
    expect(committed).toContainEqual({ topic: 'commands', partition: 0, offset: '4' });
    expect(committed.filter((entry) => entry.partition === 1)).toEqual([]); // the new owner's to commit
    await commandSource.stop(Date.now());
  });

  it('flushCommits calls can overlap: commits are serialised, never two in flight', async () => {
    const consumer = new StandInConsumer();
    const { commandSource, finish } = source(consumer);
    await commandSource.start();
    consumer.join({ commands: [0] });
    await consumer.deliver('commands', 0, 0, 1);
    consumer.slowCommits = true;
    await finish('0:0');
    const first = commandSource.flush();
    await finish('0:1');
    const second = commandSource.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(consumer.commitsInProgress).toBe(1);
    consumer.finishCommit();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    consumer.finishCommit();
    await second;
    expect(consumer.maxCommitsInProgress).toBe(1);
    expect(consumer.commits.map((offsets) => offsets[0]!.offset)).toEqual(['1', '2']); // in order, never backwards
    consumer.slowCommits = false;
    await commandSource.stop(Date.now());
  });

  it('item 3: reading waits while the records in hand and their rendered bodies hold maxHeldBytes, and goes on as room frees', async () => {
    const consumer = new StandInConsumer();
    // Records of 300 bytes whose handlers each hold a 500-byte body: with the first in hand (800 bytes, under the
    // bound) the second starts; with 1,600 held the third waits.
    const { commandSource, handled, finish } = source(consumer, { maxHeldBytes: 1000, renderedBytes: 500 });
    await commandSource.start();
    consumer.join({ commands: [0] });
    const delivering = consumer.deliver('commands', 0, 0, 3, 300);
    await new Promise((resolve) => setImmediate(resolve));
    expect(handled).toEqual(['0:0', '0:1']);
    expect(commandSource.heldBytes).toBe(1600);
    await finish('0:0');
    expect(handled).toEqual(['0:0', '0:1', '0:2']);
    await finish('0:1', '0:2');
    await delivering;
    expect(handled).toEqual(['0:0', '0:1', '0:2', '0:3']);
    await finish('0:3');
    expect(commandSource.heldBytes).toBe(0);
    await commandSource.stop(Date.now());
  });

  it('stops reading when it stops: every topic is paused while the records in hand finish, so no batch is fetched again and again meanwhile', async () => {
    const consumer = new StandInConsumer();
    const { commandSource, handled, finish } = source(consumer);
    await commandSource.start();
    consumer.join({ commands: [0] });
    await consumer.deliver('commands', 0, 0, 1);
    const stopped = commandSource.stop(Date.now() + 5000);
    expect(consumer.paused).toEqual(['commands']);
    // A batch kafkajs hands over meanwhile is left alone.
    await consumer.deliver('commands', 0, 2, 3);
    expect(handled).toEqual(['0:0', '0:1']);
    await finish('0:0', '0:1');
    await stopped;
    expect(consumer.commits.at(-1)).toEqual([{ topic: 'commands', partition: 0, offset: '2' }]);
  });
});
