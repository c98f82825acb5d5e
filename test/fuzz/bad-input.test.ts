import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, type EventRule, type WorkflowEvent } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { newDeliveryCommand } from '../../services/common/deliveries.ts';
import { createProducer, headerValue, type Message } from '../../services/common/kafka.ts';
import { MAX_EVENT_BYTES } from '../../services/common/limits.ts';
import { topicNames } from '../../services/common/topics.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import { EventValidationError } from '../../services/producer/publisher.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import type { Receiver } from '../dispatcher/fixtures.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { readTopic, testCluster, valid, waitFor } from '../helpers.ts';

const cluster = testCluster('fuzz');
const topics = topicNames(cluster.TOPIC_PREFIX);
let pipeline: Pipeline;
let io: Pipeline['io'];
let matcher: Matcher;
let dispatcher: Dispatcher;
let receiver: Receiver;

beforeAll(async () => {
  pipeline = await startPipeline(cluster);
  ({ io, matcher, dispatcher } = pipeline);
  receiver = await pipeline.receiver();
});
afterAll(() => pipeline?.stop());

const reasonsOf = (records: Array<{ headers?: Message['headers'] }>) => records.map((record) => headerValue(record.headers as never, DLQ_HEADERS.reason)).sort();

describe('fuzzing every input topic', () => {
  it('dead-letters each bad record with a reason, keeps the services up and valid traffic flowing', { timeout: 120_000 }, async () => {
    await io.rules.put(rule('good', 'fuzz-app', { url: receiver.url }));
    await waitFor('rule', () => matcher.rules.get('good') !== undefined);

    const eventCodec = await io.registry.codec(`${topics.workflowEvents}-value`, contracts.workflowEvent);
    const ruleCodec = await io.registry.codec(`${topics.eventRules}-value`, contracts.eventRule);
    const commandCodec = await io.registry.codec(`${topics.deliveries()}-value`, contracts.deliveryCommand);
    const poolCodec = await io.registry.codec(`${topics.dispatcherPools}-value`, contracts.dispatcherPool);
    const event = valid<WorkflowEvent>(contracts.workflowEvent, harnessEvent('workflow_started', { application: { id: 'fuzz-app' } }));
    const encoded = eventCodec.encode(event);
    const withId = (id: number) => Buffer.concat([Buffer.from([0]), Buffer.from(new Uint8Array(new Int32Array([id]).buffer).reverse()), randomBytes(40)]);
    // Random bytes whose first byte is not the wire format's magic 0 (else they would be "unknown schema id" by chance).
    const notWireFormat = (length: number) => Buffer.concat([Buffer.from([0xff]), randomBytes(length - 1)]);
    const garbage = Array.from({ length: 12 }, (_, index) => notWireFormat(1 + index * 7));
    const huge = eventCodec.encode({ ...event, status: 'x'.repeat(MAX_EVENT_BYTES) });

    const badEvents: Message[] = [
      ...garbage.map((value) => ({ key: 'g', value })),
      { key: 'empty', value: Buffer.alloc(0) },
      { key: 'json', value: Buffer.from(JSON.stringify(event)) },
      { key: 'unknown-id', value: withId(1_999_999_999) },
      { key: 'truncated', value: encoded.subarray(0, encoded.length - 7) },
      { key: 'other-schema', value: commandCodec.encode({ ...newDeliveryCommand(event, 'r', 1), deliveryId: 'd' }) },
      { key: 'huge', value: huge },
    ];
    const badRule = (overrides: Partial<EventRule>) => ruleCodec.encode({ ...valid<EventRule>(contracts.eventRule, { ...rule('fuzz-rule', 'fuzz-app'), updatedAt: 1 }), ...overrides });
    const badRules: Message[] = [
      { key: 'fuzz-rule', value: badRule({ url: 'gopher://nowhere' }) },
      { key: 'fuzz-rule', value: badRule({ headers: Object.fromEntries(Array.from({ length: 40 }, (_, index) => [`x-h${index}`, 'v'.repeat(300)])) }) },
      { key: 'fuzz-rule', value: badRule({ id: '' }) },
      { key: 'fuzz-rule', value: Buffer.from('{"id":"fuzz-rule","colour":"blue"}') },
      { key: 'fuzz-rule', value: Buffer.alloc(0) },
      { key: 'fuzz-rule', value: Buffer.concat([badRule({}), randomBytes(70 * 1024)]) },
    ];
    const badCommands: Message[] = [
      { key: 'good', value: notWireFormat(64) },
      { key: 'good', value: encoded },
      { key: 'good', value: Buffer.concat([commandCodec.encode({ ...newDeliveryCommand(event, 'good', 1), deliveryId: 'd' }), randomBytes(300 * 1024)]) },
    ];

    // The default pool's own key among them: refused, so the last valid announcement (the running dispatcher's) stays.
    const badPools: Message[] = [
      { key: 'default', value: poolCodec.encode({ pool: 'default', tags: [' '], updatedAt: 1, allowNetworks: null }) },
      { key: 'Bad Pool!', value: poolCodec.encode({ pool: 'Bad Pool!', tags: [], updatedAt: 1, allowNetworks: null }) },
      { key: 'garbage', value: notWireFormat(48) },
    ];

    const raw = createProducer(io.kafka);
    await raw.connect();
    await raw.send({ topic: topics.workflowEvents, messages: badEvents });
    await raw.send({ topic: topics.eventRules, messages: badRules });
    await raw.send({ topic: topics.deliveries(), messages: badCommands });
    await raw.send({ topic: topics.dispatcherPools, messages: badPools });
    await raw.send({ topic: topics.retry(cluster.RETRY_SCHEDULE[0]!), messages: [{ key: 'good', value: notWireFormat(32) }] });
    await raw.disconnect();

    // The SDK refuses what the matcher would dead-letter for size.
    await expect(io.events.publish({ ...event, status: 'x'.repeat(MAX_EVENT_BYTES) })).rejects.toBeInstanceOf(EventValidationError);

    const good = Array.from({ length: 20 }, () => harnessEvent('workflow_completed', { application: { id: 'fuzz-app' } }));
    await io.events.publish(good);
    await waitFor('valid deliveries', () => receiver.received.length >= good.length, 30_000);

    const eventsDlq = await readTopic(cluster, topics.workflowEventsDlq, badEvents.length);
    expect(eventsDlq).toHaveLength(badEvents.length);
    expect(new Set(reasonsOf(eventsDlq))).toEqual(new Set(['not-wire-format', 'unknown-schema-id', 'malformed-avro', 'wrong-schema', 'too-large']));
    expect(reasonsOf(eventsDlq).filter((reason) => reason === 'too-large')).toHaveLength(1);

    const rulesDlq = await readTopic(cluster, topics.eventRulesDlq, badRules.length);
    // (A keyless record cannot even be written: the broker refuses it on a compacted topic.)
    expect(reasonsOf(rulesDlq)).toEqual(['invalid', 'invalid', 'invalid', 'not-wire-format', 'not-wire-format', 'too-large']);
    const errors = rulesDlq.map((record) => headerValue(record.headers, DLQ_HEADERS.error)).join('\n');
    expect(errors).toContain('url: must be an absolute http(s) URL');
    expect(errors).toContain('headers: must total at most 8192 bytes');
    expect(errors).toContain('id: must not be empty');

    const commandsDlq = await readTopic(cluster, topics.deliveriesDlq, badCommands.length + 1);
    expect(new Set(reasonsOf(commandsDlq))).toEqual(new Set(['not-wire-format', 'wrong-schema', 'too-large']));

    const poolsDlq = await readTopic(cluster, topics.dispatcherPoolsDlq, badPools.length);
    expect(reasonsOf(poolsDlq)).toEqual(['invalid', 'invalid', 'not-wire-format']);
    expect(poolsDlq.map((record) => headerValue(record.headers, DLQ_HEADERS.error)).join('\n')).toContain('pool: must be lower-case letters');
    expect(matcher.pools.get('default')?.tags).toEqual([]);

    expect(matcher.notReadyReason()).toBeUndefined();
    expect(dispatcher.notReadyReason()).toBeUndefined();
    expect(matcher.rules.get('fuzz-rule')).toBeUndefined();
  });
});
