import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, kafkaConnection, type Kafka, type KafkaMessage } from '../../services/common/kafka.ts';
import { registryConnection, SchemaRegistryClient } from '../../services/common/registry.ts';
import { RuleWriter, StaleRuleError } from '../../services/common/rule-writer.ts';
import { RulesTable } from '../../services/common/rules-table.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { newSecret, rule } from '../fixtures/rules.ts';
import { readTopic, testCluster, testLogger } from '../helpers.ts';

/**
 * The races the dispatcher's disable ran with operators: a 410 judged from the dispatcher's copy, written after an
 * operator rotated the secret (the old copy came back, the new secret was lost) or deleted the rule (it came back).
 */
describe('conditional rule writes', () => {
  const cluster = testCluster('rule-writer');
  const topic = topicNames(cluster.TOPIC_PREFIX).eventRules;
  let kafka: Kafka;
  let registry: SchemaRegistryClient;
  let table: RulesTable;
  let writer: RuleWriter;
  const started: Array<{ stop(): Promise<void> }> = [];

  const freshTable = async (from = topic) => {
    const fresh = new RulesTable({ kafka, registry, topic: from, logger: testLogger, groupPrefix: `${cluster.TOPIC_PREFIX}test` });
    started.push(fresh);
    await fresh.start();
    return fresh;
  };

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
    kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-rule-writer', logger: testLogger });
    registry = new SchemaRegistryClient(registryConnection(cluster));
    table = await freshTable();
    writer = await RuleWriter.create(kafka, registry, topic, table);
    started.push({ stop: () => writer.close() });
  });
  afterAll(async () => {
    await Promise.allSettled(started.map((each) => each.stop()));
  });

  it('refuses a change made from a copy an operator replaced since: the rotation stands, in every reader', async () => {
    const v1 = (await writer.change('rotated', undefined, rule('rotated', 'app')))!;
    const fresh = newSecret();
    const v2 = (await writer.change('rotated', v1, { ...v1, secrets: [...v1.secrets, { secret: fresh, notAfter: null }] }))!;
    // The dispatcher judged a 410 from v1, before its table applied the rotation.
    const stale = await writer.change('rotated', v1, { ...v1, enabled: false, disabledReason: '410 Gone' }).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(StaleRuleError);
    expect((stale as StaleRuleError).message).toMatch(/rule "rotated" was changed .* nothing was applied/);
    expect((stale as StaleRuleError).message).not.toContain(fresh);
    expect(table.get('rotated')).toEqual(v2);
    expect((await freshTable()).get('rotated')).toEqual(v2);
  });

  it('refuses a change made from a copy of a rule deleted since: it does not come back, secrets and all', async () => {
    const v1 = (await writer.change('deleted', undefined, rule('deleted', 'app')))!;
    await writer.change('deleted', v1, null);
    const stale = await writer.change('deleted', v1, { ...v1, enabled: false, disabledReason: '410 Gone' }).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(StaleRuleError);
    expect((stale as StaleRuleError).current).toBeUndefined();
    expect(table.get('deleted')).toBeUndefined();
    expect((await freshTable()).get('deleted')).toBeUndefined();
  });

  it('refuses to create a rule that exists, and to change one from a copy another writer replaced first', async () => {
    const v1 = (await writer.change('raced', undefined, rule('raced', 'app')))!;
    await expect(writer.change('raced', undefined, rule('raced', 'app'))).rejects.toBeInstanceOf(StaleRuleError);
    // Two operators edit the same copy: the first wins, the second is told.
    const first = (await writer.change('raced', v1, { ...v1, name: 'first' }))!;
    await expect(writer.change('raced', v1, { ...v1, name: 'second' })).rejects.toThrow(/rule "raced" was changed/);
    expect(table.get('raced')).toEqual(first);
    expect(first.updatedAt).toBeGreaterThan(v1.updatedAt);
  });

  it('leaves the copy in force as the last record of each rule, so compaction keeps it: a reader of the compacted topic agrees', async () => {
    const records = await readTopic(cluster, topic, (received) => received.length >= 14); // 4 + 4 + 6 records: each refused change is followed by its repair;
    const last = new Map<string, KafkaMessage>();
    for (const record of records) last.set(record.key!.toString(), record);
    // What compaction leaves (the latest record per key), copied in order to a topic a fresh table bootstraps from.
    const compacted = `${topic}.compacted`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: compacted, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: compacted, messages: [...last.values()].map(({ key, value, headers }) => ({ key, value, headers })) });
    await producer.disconnect();
    const reader = await freshTable(compacted);
    expect(new Map([...reader.values()].map((each) => [each.id, each]))).toEqual(new Map([...table.values()].map((each) => [each.id, each])));
    expect(reader.get('rotated')?.secrets).toHaveLength(2);
    expect(reader.get('deleted')).toBeUndefined();
  });
});
