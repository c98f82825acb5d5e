import avro from 'avsc';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, validate, type Contract } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { createProducer, headerValue, type KafkaMessage } from '../../services/common/kafka.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessApp, harnessEvent } from '../fixtures/seed-events.ts';
import { newSecret, rule } from '../fixtures/rules.ts';
import { decodeAll, metricValue, readTopic, testCluster, testLogger, topicSize, waitFor } from '../helpers.ts';
import { readCommands, startMatcher, writers } from './fixtures.ts';

const cluster = testCluster('matcher-bad');
const topics = topicNames(cluster.TOPIC_PREFIX);
let io: Awaited<ReturnType<typeof writers>>;
let matcher: Matcher | undefined;

beforeAll(async () => {
  await prepareCluster(cluster, testLogger);
  io = await writers(cluster);
});
afterAll(async () => {
  await matcher?.stop();
  await io?.close();
});

const reasons = (records: KafkaMessage[]) => records.map((record) => headerValue(record.headers, DLQ_HEADERS.reason)).sort();

describe('matcher: bad input is dead-lettered and good input keeps flowing', () => {
  it('dead-letters undecodable bytes, unknown schema ids, other schemas and unknown event types', async () => {
    await io.rules.put(rule('all', harnessApp.id));
    matcher = await startMatcher(cluster);

    // A newer producer whose schema knows an event type this matcher does not (BACKWARD compatible: the registry accepts it).
    const newerSchema = structuredClone(contracts.workflowEvent.schema) as { fields: Array<{ name: string; type: { symbols?: string[] } }> };
    newerSchema.fields.find((field) => field.name === 'type')!.type.symbols!.push('workflow_exploded');
    const newer: Contract<unknown> = { name: contracts.workflowEvent.name, type: avro.Type.forSchema(newerSchema as avro.Schema), schema: newerSchema };
    const newerCodec = await io.registry.codec(`${topics.workflowEvents}-value`, newer);
    const event = validate(contracts.workflowEvent, harnessEvent('workflow_started'));
    if (!event.ok) throw new Error('fixture');
    const fromTheFuture = newerCodec.encode({ ...event.value, type: 'workflow_exploded' });
    const unknownId = Buffer.from(fromTheFuture);
    unknownId.writeInt32BE(2_000_000_000, 1);
    const logCodec = await io.registry.codec(`${topics.deliveryLog}-value`, contracts.deliveryLog);
    const entry = validate(contracts.deliveryLog, { deliveryId: 'd', attempt: 1, ruleId: 'r', eventId: 'e', eventType: 'task_started', outcome: 'delivered', attemptedAt: 1 });
    if (!entry.ok) throw new Error('fixture');

    const good = [harnessEvent('workflow_started'), harnessEvent('workflow_completed')];
    const raw = createProducer(io.kafka);
    await raw.connect();
    await raw.send({
      topic: topics.workflowEvents,
      messages: [
        { key: 'k', value: Buffer.from('garbage that is not Avro') },
        { key: 'k', value: unknownId },
        { key: 'k', value: logCodec.encode(entry.value) },
        { key: 'k', value: fromTheFuture },
        { key: 'k', value: fromTheFuture.subarray(0, 9) },
      ],
    });
    await raw.disconnect();
    await io.events.publish(good);

    const { pairs } = await readCommands(cluster, 2);
    expect(pairs).toEqual(good.map((e) => `${e.eventId}→all`).sort());
    const dead = await readTopic(cluster, topics.workflowEventsDlq, 5);
    expect(reasons(dead)).toEqual(['malformed-avro', 'not-wire-format', 'unknown-event-type', 'unknown-schema-id', 'wrong-schema']);
    const garbage = dead.find((record) => headerValue(record.headers, DLQ_HEADERS.reason) === 'not-wire-format')!;
    expect(garbage.value!.toString()).toBe('garbage that is not Avro');
    expect(headerValue(garbage.headers, DLQ_HEADERS.topic)).toBe(topics.workflowEvents);
    expect(headerValue(garbage.headers, DLQ_HEADERS.offset)).toMatch(/^\d+$/);
    await waitFor('dead-letter metric', async () => (await metricValue(matcher!.metrics, 'matcher_dead_lettered_total')) === 5);
    expect(matcher.notReadyReason()).toBeUndefined();
  });

  it('refuses an invalid rule version with the field and the reason, keeps the last valid one, and dead-letters it once', async () => {
    await io.rules.put(rule('keeper', 'keeper-app'));
    const ruleCodec = await io.registry.codec(`${topics.eventRules}-value`, contracts.eventRule);
    const broken = validate(contracts.eventRule, { ...rule('keeper', 'keeper-app', { url: 'ftp://example.invalid/hook', eventTypes: [] }), updatedAt: Date.now() });
    if (!broken.ok) throw new Error('fixture');
    const raw = createProducer(io.kafka);
    await raw.connect();
    await raw.send({ topic: topics.eventRules, messages: [{ key: 'keeper', value: ruleCodec.encode(broken.value) }, { key: 'no-such-rule', value: Buffer.from('junk') }] });
    await raw.disconnect();

    const dead = await readTopic(cluster, topics.eventRulesDlq, 2);
    expect(reasons(dead)).toEqual(['invalid', 'not-wire-format']);
    const invalid = dead.find((record) => headerValue(record.headers, DLQ_HEADERS.reason) === 'invalid')!;
    expect(headerValue(invalid.headers, DLQ_HEADERS.error)).toBe('url: must be an absolute http(s) URL (its scheme is ftp:); eventTypes: must list at least one event type, or be null for all');
    expect(headerValue(invalid.headers, DLQ_HEADERS.error)).not.toContain('whsec_');

    // The valid version still matches.
    expect(matcher!.rules.get('keeper')?.url).toBe('http://127.0.0.1:9/keeper');
    const event = harnessEvent('task_started', { application: { id: 'keeper-app' } });
    await io.events.publish(event);
    await readCommands(cluster, 3);

    // A restart re-reads the rules topic but does not dead-letter the same versions again.
    await matcher!.stop();
    matcher = await startMatcher(cluster);
    expect(matcher.rules.get('keeper')?.url).toBe('http://127.0.0.1:9/keeper');
    expect(await topicSize(cluster, topics.eventRulesDlq)).toBe(2);
  });

  it('poison record: the matcher dead-letters an event whose timestamp is outside the JavaScript date range, naming the field, and keeps matching', async () => {
    const codec = await io.registry.codec(`${topics.workflowEvents}-value`, contracts.workflowEvent);
    const base = validate(contracts.workflowEvent, harnessEvent('workflow_completed'));
    if (!base.ok) throw new Error('fixture');
    // Valid Avro longs, but no Date can hold them: written past the SDK, as another producer could.
    const shape = (overrides: object) => ({ ...base.value, ...overrides });
    const raw = createProducer(io.kafka);
    await raw.connect();
    await raw.send({ topic: topics.workflowEvents, messages: [{ key: 'far', value: codec.encode(shape({ occurredAt: 9e15 })) }, { key: 'early', value: codec.encode(shape({ startedAt: -9e15 })) }] });
    await raw.disconnect();
    const good = harnessEvent('workflow_started');
    await io.events.publish(good);

    const mine = (records: KafkaMessage[]) => records.filter((record) => ['far', 'early'].includes(record.key!.toString()));
    const dead = mine(await readTopic(cluster, topics.workflowEventsDlq, (records) => mine(records).length >= 2));
    expect(dead.map((record) => [record.key!.toString(), headerValue(record.headers, DLQ_HEADERS.reason), headerValue(record.headers, DLQ_HEADERS.error)]).sort()).toEqual([
      ['early', 'invalid', expect.stringMatching(/^startedAt: must be a time within the JavaScript date range/)],
      ['far', 'invalid', expect.stringMatching(/^occurredAt: must be a time within the JavaScript date range/)],
    ]);
    expect((await readCommands(cluster, 4)).pairs).toContain(`${good.eventId}→all`);
    expect(matcher!.notReadyReason()).toBeUndefined();
  });

  it('secrets at rest: an invalid rule lands in event-rules.dlq with no trace of its secrets in key, value or headers', async () => {
    const secret = newSecret();
    const token = `Bearer ${randomUUID()}`;
    const [urlPassword, urlToken] = [randomUUID(), randomUUID()];
    const ruleCodec = await io.registry.codec(`${topics.eventRules}-value`, contracts.eventRule);
    const encoded = (id: string, overrides: object) => {
      const checked = validate(contracts.eventRule, { ...rule(id, 'secret-app', { secrets: [{ secret, notAfter: null }], headers: { authorization: token } }), updatedAt: Date.now(), ...overrides });
      if (!checked.ok) throw new Error('fixture');
      return ruleCodec.encode(checked.value);
    };
    const raw = createProducer(io.kafka);
    await raw.connect();
    await raw.send({
      topic: topics.eventRules,
      messages: [
        { key: 'leaky', value: encoded('leaky', { url: 'ftp://example.invalid/hook' }), headers: { origin: 'test' } },
        // A URL that does not parse, with a password and a query token: neither may be quoted in the reason or kept.
        { key: 'leaky-url', value: encoded('leaky-url', { url: `htps//ops:${urlPassword}@hooks.example.com/in?token=${urlToken}` }) },
        { key: 'other-id', value: encoded('mismatched', {}) },
        // Undecodable bytes that happen to contain the secret: dropped, since nothing in them can be redacted.
        { key: 'garbled', value: Buffer.from(`not avro ${secret}`) },
      ],
    });
    await raw.disconnect();

    // Other tests of this file dead-letter rules too (possibly late): keep only this test's records.
    const mine = (records: KafkaMessage[]) => records.filter((record) => ['leaky', 'leaky-url', 'other-id', 'garbled'].includes(record.key?.toString() ?? ''));
    const dead = mine(await readTopic(cluster, topics.eventRulesDlq, (records) => mine(records).length >= 4));
    const [keyBytes, base64Key] = [secret, secret.slice('whsec_'.length)];
    for (const record of dead) {
      const everything = Buffer.concat([record.key ?? Buffer.alloc(0), record.value ?? Buffer.alloc(0),
        ...Object.entries(record.headers ?? {}).flatMap(([name, value]) => [Buffer.from(name), ...[value].flat().map((item) => Buffer.from(item ?? ''))])]);
      expect(everything.includes(keyBytes)).toBe(false);
      expect(everything.includes(base64Key)).toBe(false);
      expect(everything.includes(token)).toBe(false);
      expect(everything.includes(urlPassword)).toBe(false);
      expect(everything.includes(urlToken)).toBe(false);
    }
    const [leakyUrl] = await decodeAll(cluster, contracts.eventRule, dead.filter((record) => record.key?.toString() === 'leaky-url'));
    expect(leakyUrl!.url).toBe('[redacted]');
    const byReason = Object.fromEntries(dead.filter((record) => record.key?.toString() !== 'leaky-url').map((record) => [headerValue(record.headers, DLQ_HEADERS.reason)!, record]));
    expect(Object.keys(byReason).sort()).toEqual(['invalid', 'key-mismatch', 'not-wire-format']);
    for (const reason of ['invalid', 'key-mismatch']) {
      const [kept] = await decodeAll(cluster, contracts.eventRule, [byReason[reason]!]);
      expect(kept!.secrets).toEqual([{ secret: '[redacted]', notAfter: null }]);
      expect(kept!.headers).toEqual({ authorization: '[redacted]' });
      expect(headerValue(byReason[reason]!.headers, DLQ_HEADERS.value)).toMatch(/^redacted: /);
    }
    expect(headerValue(byReason.invalid!.headers, 'origin')).toBe('test');
    expect(byReason['not-wire-format']!.value).toBeNull();
    expect(headerValue(byReason['not-wire-format']!.headers, DLQ_HEADERS.value)).toMatch(/^dropped: /);
  });
});

