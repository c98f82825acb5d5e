import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, kafkaConnection, type Kafka } from '../../services/common/kafka.ts';
import { TopicWindow } from '../../services/console/topic-window.ts';
import { testCluster, testLogger } from '../helpers.ts';

describe("the console's topic windows", () => {
  const cluster = testCluster('topic-window');
  const topic = `${cluster.TOPIC_PREFIX}window`;
  let kafka: Kafka;
  const windows: TopicWindow[] = [];

  beforeAll(async () => {
    kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-topic-window', logger: testLogger });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'a', value: 'one' }, { key: 'b', value: 'two' }] });
    await producer.disconnect();
  });
  afterAll(async () => {
    await Promise.allSettled(windows.map((window) => window.stop()));
  });

  // A window whose consumer stopped used to leave the console serving a window that no longer moved, and "ready".
  it('reads its topics from the beginning, and says so when its consumer stopped for good', async () => {
    const seen: string[] = [];
    const reading = new TopicWindow(kafka, { name: 'reading', topics: [topic], groupPrefix: cluster.TOPIC_PREFIX, logger: testLogger, onRecord: async ({ message }) => void seen.push(message.value!.toString()) });
    const broken = new TopicWindow(kafka, { name: 'broken', topics: [topic], groupPrefix: cluster.TOPIC_PREFIX, logger: testLogger, onRecord: async () => {
      throw Object.assign(new Error('the store cannot keep records'), { retriable: false });
    } });
    windows.push(reading, broken);
    await Promise.all([reading.start(), broken.start()]);
    await expect.poll(() => seen, { timeout: 20_000 }).toEqual(['one', 'two']);
    await expect.poll(() => broken.failure?.message, { timeout: 60_000 }).toMatch(/the store cannot keep records/);
    expect(reading.failure).toBeUndefined();
  });
});
