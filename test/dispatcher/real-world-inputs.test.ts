/**
 * Real-world inputs (issue 24), end to end on a real broker and registry: sizes that real events reach never stop a
 * pool. Each test is named after the reproduction or item it covers.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, type DeliveryCommand, type WorkflowEvent } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { newDeliveryCommand } from '../../services/common/deliveries.ts';
import { createKafka, createProducer, headerValue, kafkaConnection, type Message } from '../../services/common/kafka.ts';
import { MAX_EVENT_BYTES } from '../../services/common/limits.ts';
import { topicNames } from '../../services/common/topics.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { NOT_BEFORE_HEADER } from '../../services/dispatcher/recorder.ts';
import { readTopic, testCluster, testLogger, valid, waitFor } from '../helpers.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import { readLog } from './fixtures.ts';

const cluster = testCluster('inputs', { RETRY_SCHEDULE: [1000, 2000] });
const names = topicNames(cluster.TOPIC_PREFIX);
/** A retry topic of a delay the current schedule does not have: left by an earlier schedule. */
const strandedTopic = names.retry(7000);
let pipeline: Pipeline;

beforeAll(async () => {
  const admin = createKafka({ ...kafkaConnection(cluster), clientId: 'test-inputs', logger: testLogger }).admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: strandedTopic, numPartitions: 2 }] });
  await admin.disconnect();
  pipeline = await startPipeline(cluster, { logBodyBytes: 16 * 1024, maxAgeMs: 60_000 });
});
afterAll(() => pipeline?.stop());

const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');
/** The largest workflow name that keeps the event inside the producer's limit, all of it a control character JSON escapes to six bytes. */
const hugeName = '\u0001'.repeat(MAX_EVENT_BYTES - 16 * 1024);

async function putRule(id: string, url: string): Promise<void> {
  await pipeline.io.rules.put(rule(id, `${id}-app`, { url }));
  await waitFor(`rule ${id} in the matcher`, () => pipeline.matcher.rules.get(id) !== undefined);
  await waitFor(`rule ${id} in the dispatcher`, () => pipeline.dispatcher.notReadyReason() === undefined);
}

/** Writes records straight to a topic, as another dispatcher (or a crafted producer) would. */
async function write(topic: string, messages: Message[]): Promise<void> {
  const producer = createProducer(pipeline.io.kafka);
  await producer.connect();
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
}

const encodeCommand = async (command: DeliveryCommand) =>
  (await pipeline.io.registry.codec(`${names.deliveries()}-value`, contracts.deliveryCommand)).encode(command);

const event = (application: string, overrides: Partial<WorkflowEvent> = {}): WorkflowEvent =>
  ({ ...valid(contracts.workflowEvent, harnessEvent('workflow_started', { application: { id: application } })), ...overrides });

describe('real-world inputs', () => {
  it('big body crash loop: an event inside the producer limit that renders past the broker limit is delivered once, its log record bounded', async () => {
    const receiver = await pipeline.receiver();
    await putRule('huge', receiver.url);
    const big = event('huge-app', { workflow: { id: 'wf-huge', name: hugeName } });
    await pipeline.io.events.publish(big);

    await waitFor('the POST', () => receiver.received.length >= 1, 30_000);
    const body = receiver.received[0]!.body;
    // What the reproduction saw: six bytes per control character, far past the broker's 1 MB record limit.
    expect(Buffer.byteLength(body)).toBeGreaterThan(1_300_000);
    const [entry] = (await readLog(cluster, (entries) => entries.some((candidate) => candidate.eventId === big.eventId))).filter((candidate) => candidate.eventId === big.eventId);
    expect(entry!.outcome).toBe('delivered');
    expect(entry!.request!.bodyTruncated).toBe(true);
    expect(Buffer.byteLength(entry!.request!.body)).toBeLessThanOrEqual(16 * 1024);
    expect(body.startsWith(entry!.request!.body)).toBe(true);
    expect(entry!.request!.bodyBytes).toBe(Buffer.byteLength(body));
    expect(entry!.request!.bodySha256).toBe(sha256(body));
    // Before, the log record was refused, the dispatcher exited and POSTed the same event again after each restart.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(receiver.received).toHaveLength(1);
    expect(pipeline.fatal).toEqual([]);
  });

  it('item 1: a raw record near max.message.bytes is dead-lettered, cut to fit with its size and hash, and the matcher goes on', async () => {
    const receiver = await pipeline.receiver();
    await putRule('near-limit', receiver.url);
    const raw = Buffer.alloc(1_048_300, 7);
    await write(names.workflowEvents, [{ key: 'near-limit', value: raw, headers: { origin: 'test' } }]);
    const after = event('near-limit-app');
    await pipeline.io.events.publish(after);

    const [dead] = await readTopic(cluster, names.workflowEventsDlq, (records) => records.some((record) => record.key?.toString() === 'near-limit'));
    expect(headerValue(dead!.headers, DLQ_HEADERS.reason)).toBe('too-large');
    expect(headerValue(dead!.headers, DLQ_HEADERS.originalBytes)).toBe(String(raw.length));
    expect(headerValue(dead!.headers, DLQ_HEADERS.originalSha256)).toBe(sha256(raw));
    expect(headerValue(dead!.headers, DLQ_HEADERS.value)).toMatch(/^truncated: 1048300 bytes/);
    expect(headerValue(dead!.headers, 'origin')).toBe('test');
    expect(dead!.value!.length).toBeLessThan(raw.length);
    expect(raw.subarray(0, dead!.value!.length).equals(dead!.value!)).toBe(true);
    await waitFor('the next event delivered', () => receiver.received.some((request) => request.body.includes(after.eventId)));
  });

  it('item 1: a record the broker refuses as too large ends its delivery dead-lettered too-large, never a process exit', async () => {
    // A second install whose delivery log takes small records only: the case no size check ahead of the broker knows.
    const small = testCluster('inputs-small');
    const smallNames = topicNames(small.TOPIC_PREFIX);
    const other = await startPipeline(small, { logBodyBytes: 64 * 1024 });
    try {
      const admin = other.io.kafka.admin();
      await admin.connect();
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: smallNames.deliveryLog, configEntries: [{ name: 'max.message.bytes', value: '20000' }] }] });
      await admin.disconnect();
      const receiver = await other.receiver();
      await other.io.rules.put(rule('refused', 'refused-app', { url: receiver.url }));
      await waitFor('the rule in the matcher', () => other.matcher.rules.get('refused') !== undefined);
      const large = event('refused-app', { workflow: { id: 'wf', name: 'x'.repeat(40_000) } });
      const fine = event('refused-app');
      await other.io.events.publish([large, fine]);

      const [dead] = await readTopic(small, smallNames.deliveriesDlq, (records) => records.length >= 1);
      expect(headerValue(dead!.headers, DLQ_HEADERS.reason)).toBe('too-large');
      expect(headerValue(dead!.headers, DLQ_HEADERS.error)).toMatch(/refused a record of \d+ bytes/);
      const entries = await readLog(small, (all) => all.some((entry) => entry.eventId === large.eventId) && all.some((entry) => entry.eventId === fine.eventId));
      const largeEntry = entries.find((entry) => entry.eventId === large.eventId)!;
      expect(largeEntry).toMatchObject({ outcome: 'dead_lettered', request: null });
      expect(largeEntry.error).toMatch(/too-large/);
      expect(entries.find((entry) => entry.eventId === fine.eventId)!.outcome).toBe('delivered');
      expect(other.fatal).toEqual([]);
    } finally {
      await other.stop();
    }
  });

  it('item 4: a not-before header more than 2^31 ms ahead is held to its topic\'s delay, not paused on for ever (nor busy-looped)', async () => {
    const receiver = await pipeline.receiver();
    await putRule('far-ahead', receiver.url);
    const command = newDeliveryCommand(event('far-ahead-app'), 'far-ahead', Date.now());
    await write(names.retry(1000), [{ key: command.deliveryId, value: await encodeCommand(command), headers: { 'delivery-id': command.deliveryId, [NOT_BEFORE_HEADER]: String(Date.now() + 2 ** 31 + 1000) } }]);
    // Due at the latest the topic's delay plus jitter and clock slack after it was written (1 s + 10 % + 5 s).
    await waitFor('the far-ahead command delivered', () => receiver.received.some((request) => request.headers['webhook-id'] === command.deliveryId), 20_000);
  });

  it('item 4: waiting for a rule version the table never reaches ends by the maximum age, dead-lettered expired', async () => {
    const receiver = await pipeline.receiver();
    await putRule('never-version', receiver.url);
    // Matched on a version far past the end of the rules topic (a recreated or mirrored topic), and nearly as old as
    // the maximum age (60 s here): after the dispatcher's wait for the version it has expired.
    const command = { ...newDeliveryCommand(event('never-version-app'), 'never-version', Date.now() - 55_000), ruleVersion: { partition: 0, offset: 1_000_000_000 } };
    await write(names.deliveries(), [{ key: command.deliveryId, value: await encodeCommand(command), headers: { 'delivery-id': command.deliveryId } }]);
    const records = await readTopic(cluster, names.deliveriesDlq, (received) => received.some((record) => headerValue(record.headers, 'delivery-id') === command.deliveryId), 40_000);
    const dead = records.find((record) => headerValue(record.headers, 'delivery-id') === command.deliveryId)!;
    expect(headerValue(dead.headers, DLQ_HEADERS.reason)).toBe('expired');
    expect(headerValue(dead.headers, DLQ_HEADERS.error)).toMatch(/never reached/);
    expect(receiver.received).toHaveLength(0);
  });

  it('item 5: retries waiting in the topic of a delay the schedule no longer has are drained', async () => {
    const receiver = await pipeline.receiver();
    await putRule('stranded', receiver.url);
    const command = { ...newDeliveryCommand(event('stranded-app'), 'stranded', Date.now()), attempt: 2 };
    await write(strandedTopic, [{ key: command.deliveryId, value: await encodeCommand(command), headers: { 'delivery-id': command.deliveryId, [NOT_BEFORE_HEADER]: String(Date.now()) } }]);
    await waitFor('the stranded retry delivered', () => receiver.received.some((request) => request.headers['webhook-id'] === command.deliveryId), 20_000);
  });
});
