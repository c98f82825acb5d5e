/**
 * The dispatcher's failure paths, end to end on a real broker and registry: every delivery ends, visibly, and one bad
 * record, rule or endpoint never stops or stalls the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, type DeliveryCommand, type EventRule, type WorkflowEvent } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { newDeliveryCommand } from '../../services/common/deliveries.ts';
import { createProducer, headerValue, type KafkaMessage } from '../../services/common/kafka.ts';
import { keyPartition } from '../../services/common/murmur2.ts';
import { topicNames } from '../../services/common/topics.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { newSecret, rule } from '../fixtures/rules.ts';
import { decodeAll, readTopic, testCluster, topicSize, valid, waitFor } from '../helpers.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import { readLog } from './fixtures.ts';

const cluster = testCluster('failures', { RETRY_SCHEDULE: [1000, 1000, 1000, 1000] });
const names = topicNames(cluster.TOPIC_PREFIX);
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline(cluster, { breakerFailures: 2, breakerOpenMs: 1000, maxAgeMs: 8000 });
});
afterAll(() => pipeline?.stop());

/** Writes commands straight to the pool's command topic, as a matcher would. */
async function sendCommands(...commands: DeliveryCommand[]): Promise<void> {
  const codec = await pipeline.io.registry.codec(`${names.deliveries()}-value`, contracts.deliveryCommand);
  const producer = createProducer(pipeline.io.kafka);
  await producer.connect();
  await producer.send({ topic: names.deliveries(), acks: -1, messages: commands.map((command) => ({ key: command.ruleId, value: codec.encode(command), headers: { 'delivery-id': command.deliveryId } })) });
  await producer.disconnect();
}

const deadLetters = (done: (records: KafkaMessage[]) => boolean) => readTopic(cluster, names.deliveriesDlq, done);
const reasonOf = (record: KafkaMessage) => headerValue(record.headers, DLQ_HEADERS.reason);
/** A complete event (defaults filled in), as a decoded command carries it. */
const event = (application: string, overrides: Partial<WorkflowEvent> = {}): WorkflowEvent =>
  ({ ...valid(contracts.workflowEvent, harnessEvent('workflow_started', { application: { id: application } })), ...overrides });

/** Writes a rule and waits until the matcher has it; returns the rule as written (the matcher keeps only part of it). */
async function putRule(id: string, overrides: Parameters<typeof rule>[2]): Promise<EventRule> {
  const [written] = await pipeline.io.rules.put(rule(id, `${id}-app`, overrides));
  await waitFor(`rule ${id} in the matcher`, () => pipeline.matcher.rules.get(id) !== undefined);
  return written!;
}

describe('dispatcher failure paths', () => {
  it('poison record crash loop: a command that cannot be rendered is dead-lettered with the error, and the pool goes on', async () => {
    const receiver = await pipeline.receiver();
    await putRule('poison', { url: receiver.url });
    // A valid Avro long, but no valid date: rendering it throws. Such events can predate the producers' checks.
    const poison = newDeliveryCommand(event('poison-app', { occurredAt: 9e15 }), 'poison', Date.now());
    const good = newDeliveryCommand(event('poison-app'), 'poison', Date.now());
    await sendCommands(poison, good);

    const records = await deadLetters((received) => received.some((record) => headerValue(record.headers, 'delivery-id') === poison.deliveryId));
    const dead = records.find((record) => headerValue(record.headers, 'delivery-id') === poison.deliveryId)!;
    // Refused where it is read (the registry codec checks the date range), the field named.
    expect(reasonOf(dead)).toBe('invalid');
    expect(headerValue(dead.headers, DLQ_HEADERS.error)).toMatch(/occurredAt/);
    await waitFor('the good command delivered', () => receiver.received.some((request) => request.headers['webhook-id'] === good.deliveryId));
  });

  it('breaker stuck half-open: a trial answered 401 closes the breaker, and the endpoint gets traffic again', async () => {
    const receiver = await pipeline.receiver();
    // Two failures open the breaker (threshold 2); the trial after the cool-down is answered 401; then all is well.
    receiver.respond = (index) => (index < 2 ? 500 : index === 2 ? 401 : 200);
    await putRule('trial', { url: receiver.url });
    await pipeline.io.events.publish(event('trial-app'));
    await waitFor('the 401 trial', () => receiver.received.length >= 3, 15_000);
    await pipeline.io.events.publish([event('trial-app'), event('trial-app'), event('trial-app')]);
    // Stuck half-open, these would be deferred until a restart; closed, they go at once.
    await waitFor('deliveries after the trial', () => receiver.received.length >= 6, 10_000);
  });

  it('a command for a rule the dispatcher has not applied yet is not dropped: it waits for that rule version', async () => {
    const receiver = await pipeline.receiver();
    const admin = pipeline.io.kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(names.eventRules);
    await admin.disconnect();
    // The version the rule will have once written: the end of its partition now.
    const partition = keyPartition(Buffer.from('late'), ends.length);
    const offset = Number(ends.find((entry) => entry.partition === partition)!.offset);
    const command = newDeliveryCommand(event('late-app'), 'late', Date.now(), { ruleVersion: { partition, offset } });
    await sendCommands(command);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await pipeline.io.rules.put(rule('late', 'late-app', { url: receiver.url }));
    await waitFor('the delivery', () => receiver.received.length === 1, 15_000);
    const log = await readLog(cluster, (entries) => entries.some((entry) => entry.ruleId === 'late'));
    expect(log.filter((entry) => entry.ruleId === 'late').map((entry) => entry.outcome)).toEqual(['delivered']);
  });

  it('410 re-publishes a stale rule: concurrent 410s disable the current version, once, keeping an edit made meanwhile', async () => {
    const receiver = await pipeline.receiver();
    receiver.respond = () => ({ status: 410, delayMs: 1500 });
    const current = await putRule('gone', { url: receiver.url });
    const admin = pipeline.io.kafka.admin();
    await admin.connect();
    const before = (await admin.fetchTopicOffsets(names.eventRules)).reduce((sum, entry) => sum + Number(entry.offset), 0);
    await pipeline.io.events.publish(Array.from({ length: 5 }, () => event('gone-app')));
    await waitFor('five requests in flight', () => receiver.received.length === 5);
    // The operator edits the rule while the requests are in flight.
    await pipeline.io.rules.put({ ...current, name: 'edited while in flight' });
    await waitFor('the rule disabled', () => pipeline.matcher.rules.get('gone')?.enabled === false, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // any further (wrong) disables would have landed by now
    const after = (await admin.fetchTopicOffsets(names.eventRules)).reduce((sum, entry) => sum + Number(entry.offset), 0);
    await admin.disconnect();
    expect(after - before).toBe(2); // the operator's edit and one disable
    expect(pipeline.matcher.rules.get('gone')).toMatchObject({ name: 'edited while in flight', enabled: false, disabledReason: expect.stringMatching(/410 Gone/) });
  });

  it('unsigned requests: once every secret of a rule has expired, nothing is sent unsigned; the delivery is dead-lettered', async () => {
    const receiver = await pipeline.receiver();
    await putRule('expiring', { url: receiver.url, secrets: [{ secret: newSecret(), notAfter: Date.now() + 1000 }] });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const unsigned = event('expiring-app');
    await pipeline.io.events.publish(unsigned);
    const records = await deadLetters((received) => received.some((record) => reasonOf(record) === 'unsigned'));
    const [command] = await decodeAll(cluster, contracts.deliveryCommand, records.filter((record) => reasonOf(record) === 'unsigned'));
    expect(command!.event.eventId).toBe(unsigned.eventId);
    expect(receiver.received).toHaveLength(0);
  });

  it('deferrals never end: deliveries to an endpoint that never answers well end, dead-lettered or with the rule disabled', async () => {
    const receiver = await pipeline.receiver();
    receiver.respond = () => 503;
    await putRule('down', { url: receiver.url });
    const events = Array.from({ length: 10 }, () => event('down-app'));
    await pipeline.io.events.publish(events);
    // Attempts 1 s apart, an open breaker deferring in between, a maximum age of 8 s: every delivery ends in the
    // dead-letter topic, exhausted or expired.
    const downIds = async () => {
      const size = await topicSize(cluster, names.deliveriesDlq);
      const records = await deadLetters((received) => received.length >= size);
      const commands = await decodeAll(cluster, contracts.deliveryCommand, records.filter((record) => ['exhausted', 'expired'].includes(reasonOf(record)!)));
      return new Set(commands.filter((command) => command.ruleId === 'down').map((command) => command.event.eventId));
    };
    await waitFor('every delivery ended', async () => (await downIds()).size === events.length, 30_000);
    expect(await downIds()).toEqual(new Set(events.map((item) => item.eventId)));
    const log = await readLog(cluster, (entries) => entries.filter((entry) => entry.ruleId === 'down' && entry.outcome === 'dead_lettered').length >= 10);
    const perDelivery = new Map<string, number>();
    for (const entry of log.filter((item) => item.ruleId === 'down')) perDelivery.set(entry.deliveryId, (perDelivery.get(entry.deliveryId) ?? 0) + 1);
    // Attempts plus deferrals per delivery stay bounded by the schedule (5 attempts), not by how long the endpoint is down.
    expect(Math.max(...perDelivery.values())).toBeLessThanOrEqual(15);
  }, 60_000);
});

describe('dispatcher failure paths: a rule failing for too long', () => {
  it('deferrals never end: a rule whose endpoint failed without a success for the set time is disabled with a reason', async () => {
    const local = testCluster('failing', { RETRY_SCHEDULE: [1000, 1000, 1000, 1000, 1000, 1000] });
    const own = await startPipeline(local, { disableAfterMs: 2500, breakerFailures: 100 });
    try {
      const receiver = await own.receiver();
      receiver.respond = () => 500;
      await own.io.rules.put(rule('failing', 'failing-app', { url: receiver.url }));
      await waitFor('rule', () => own.matcher.rules.get('failing') !== undefined);
      await own.io.events.publish(harnessEvent('workflow_started', { application: { id: 'failing-app' } }));
      await waitFor('the rule disabled', () => own.matcher.rules.get('failing')?.enabled === false, 20_000);
      const disabled = own.matcher.rules.get('failing')!;
      expect(disabled.disabledReason).toMatch(/failed without a single success since .* \(limit 2500ms\)/);
      const log = await readLog(local, (entries) => entries.some((entry) => entry.outcome === 'dead_lettered'));
      expect(log.at(-1)).toMatchObject({ outcome: 'dead_lettered', error: expect.stringMatching(/the rule was disabled: /) });
    } finally {
      await own.stop();
    }
  }, 40_000);
});
