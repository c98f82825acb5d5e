/**
 * kafkajs's request queue re-armed a 1 ms check forever on every connection that had an answer (tulios/kafkajs#1556):
 * an idle service woke thousands of times a second. The check now runs only while requests wait or the connection is
 * throttled.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createProducer, kafkaConnection } from '../../services/common/kafka.ts';
import { KAFKAJS_REQUEST_QUEUE_MODULE, requestQueueFixed, scheduleCheckPendingRequests } from '../../services/common/kafka-request-queue.ts';
import { testCluster, testLogger } from '../helpers.ts';

const require = createRequire(import.meta.url);
type Queue = { pending: Array<{ send(): void; expectResponse: boolean }>; inflight: Map<number, unknown>; throttledUntil: number; throttleCheckTimeoutId: NodeJS.Timeout | null; checkPendingRequests(): void; destroy(): void };
const RequestQueue = require(KAFKAJS_REQUEST_QUEUE_MODULE) as { new (options: object): Queue; prototype: Queue & { scheduleCheckPendingRequests: unknown } };
const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const queue = () => new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'test:9092', logger });

describe("kafkajs's request queue", () => {
  it('runs the fixed check', () => {
    expect(requestQueueFixed).toBe(true);
    expect(RequestQueue.prototype.scheduleCheckPendingRequests).toBe(scheduleCheckPendingRequests);
  });

  it('arms no check when nothing waits and nothing is throttled (kafkajs 2.2.4 armed one at 1 ms, again and again)', () => {
    const idle = queue();
    idle.checkPendingRequests();
    expect(idle.throttleCheckTimeoutId).toBeNull();
  });

  it('still sends a request held back by client-side throttling once the throttle ends', async () => {
    const throttled = queue();
    let sent = 0;
    throttled.throttledUntil = Date.now() + 50;
    throttled.pending.push({ send: () => (sent += 1), expectResponse: true });
    throttled.checkPendingRequests();
    expect(sent).toBe(0);
    expect(throttled.throttleCheckTimeoutId).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(sent).toBe(1);
    // Nothing waits any more: the check is not re-armed.
    expect(throttled.throttleCheckTimeoutId).toBeNull();
    throttled.destroy();
  });
});

describe('an idle connected producer and consumer (real broker)', () => {
  const cluster = testCluster('request-queue');
  const topic = `${cluster.TOPIC_PREFIX}idle`;
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-request-queue', logger: testLogger });
  const producer = createProducer(kafka);
  const consumer = kafka.consumer({ groupId: `${cluster.TOPIC_PREFIX}idle`, maxWaitTimeInMs: 500 });
  let checks = 0;
  const original = RequestQueue.prototype.checkPendingRequests;

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen!: () => void;
    const received = new Promise<void>((resolve) => (seen = resolve));
    await consumer.run({ eachMessage: async () => seen() });
    await producer.send({ topic, messages: [{ value: 'one answer on every connection' }] });
    await received;
    RequestQueue.prototype.checkPendingRequests = function (this: Queue) {
      checks += 1;
      original.call(this);
    };
  });
  afterAll(async () => {
    RequestQueue.prototype.checkPendingRequests = original;
    await consumer.disconnect();
    await producer.disconnect();
  });

  it('checks its request queues only when answers arrive, not a thousand times a second per connection', async () => {
    checks = 0;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Fetches every 500 ms and heartbeats are a few answers a second; kafkajs 2.2.4 checked ~3,500 times a second here.
    expect(checks / 3).toBeLessThan(50);
  });
});
