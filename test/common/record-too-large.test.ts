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
const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-too-large', logger: testLogger });
let producer: Producer;

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  // A topic configured below the broker's default: the case a client-side size check cannot know about.
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '20000' }] }] });
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
});
