/**
 * A record the broker refuses as too large is that record's outcome: on a real broker, one caller's oversized record
 * fails only that caller, the others sharing its produce request are written, and the producer goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createProducer, kafkaConnection, type Producer } from '../../services/common/kafka.ts';
import { OutputQueue, RecordTooLargeError } from '../../services/common/output-batch.ts';
import { readTopic, testCluster, testLogger } from '../helpers.ts';

const cluster = testCluster('too-large');
const topic = `${cluster.TOPIC_PREFIX}small-records`;
const twoPartitions = `${cluster.TOPIC_PREFIX}small-records-2`;
const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-too-large', logger: testLogger });
let producer: Producer;

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  // A topic configured below the broker's default: the case a client-side size check cannot know about.
  const small = [{ name: 'max.message.bytes', value: '20000' }];
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, configEntries: small }, { topic: twoPartitions, numPartitions: 2, configEntries: small }] });
  await admin.disconnect();
  producer = createProducer(kafka);
  await producer.connect();
});
afterAll(() => producer?.disconnect());

describe('record too large', () => {
  it('fails only the caller whose record the broker refused; the others in the same request are written', async () => {
    const queue = new OutputQueue(producer);
    const record = (value: string) => [[topic, { key: null, value }]] as const;
    // Given in one turn: they share one produce request, which the broker refuses whole.
    const outcomes = await Promise.allSettled([queue.send(record('first')), queue.send(record('x'.repeat(30_000))), queue.send(record('third'))]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const refused = (outcomes[1] as PromiseRejectedResult).reason;
    expect(refused).toBeInstanceOf(RecordTooLargeError);
    expect((refused as RecordTooLargeError).bytes).toBeGreaterThan(30_000);
    // The producer is not poisoned by the refusal.
    await queue.send(record('after'));
    const written = await readTopic(cluster, topic, 3);
    expect(written.map((message) => message.value!.toString()).sort()).toEqual(['after', 'first', 'third']);
  });

  it('keeps the producer sound when the refusal was partial: the partition written beside the refused one gets every later record once, none dropped as a duplicate', async () => {
    const queue = new OutputQueue(producer);
    const to = (partition: number, value: string) => [[twoPartitions, { key: null, partition, value }]] as const;
    // One request, two partitions: the broker appends partition 0's two records and refuses partition 1's. kafkajs
    // then rewinds the sequence numbers of both partitions, so partition 0's next batch would reuse numbers already
    // written: refused as out of order forever after, or (same count) acknowledged as a duplicate and dropped.
    const outcomes = await Promise.allSettled([queue.send(to(0, 'first')), queue.send(to(0, 'second')), queue.send(to(1, 'x'.repeat(30_000)))]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    await queue.send([...to(0, 'third'), ...to(0, 'fourth')]);
    await queue.send(to(1, 'fifth'));
    const all = ['first', 'second', 'third', 'fourth', 'fifth'];
    const written = (await readTopic(cluster, twoPartitions, (received) => all.every((value) => received.some((message) => message.value!.toString() === value))))
      .map((message) => message.value!.toString());
    // At least once: the refused request's appended records are sent again (the client cannot tell which partitions
    // the broker took), every later record exactly once.
    for (const value of ['third', 'fourth', 'fifth']) expect(written.filter((seen) => seen === value)).toHaveLength(1);
  });
});
