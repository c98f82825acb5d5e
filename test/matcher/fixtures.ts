/** A matcher in this test process, on the file's own topics, plus the writers tests drive it with. */
import { contracts, type DeliveryCommand } from '../../schemas/index.ts';
import { kafkaConnection, createKafka, headerValue } from '../../services/common/kafka.ts';
import { registryConnection, SchemaRegistryClient } from '../../services/common/registry.ts';
import { RuleWriter } from '../../services/common/rule-writer.ts';
import type { ClusterConfig } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { Matcher } from '../../services/matcher/matcher.ts';
import { createPublisher } from '../../services/producer/publisher.ts';
import { decodeAll, readTopic, testLogger } from '../helpers.ts';

export async function startMatcher(cluster: ClusterConfig, groupId = 'matcher'): Promise<Matcher> {
  const matcher = new Matcher(cluster, { groupId: `${cluster.TOPIC_PREFIX}${groupId}`, httpHost: '127.0.0.1', httpPort: 0, concurrency: 3 }, testLogger);
  await matcher.start();
  return matcher;
}

export async function writers(cluster: ClusterConfig) {
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-writer', logger: testLogger });
  const registry = new SchemaRegistryClient(registryConnection(cluster));
  const rules = await RuleWriter.create(kafka, registry, topicNames(cluster.TOPIC_PREFIX).eventRules);
  const events = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger: testLogger });
  return { rules, events, registry, kafka, close: () => Promise.all([rules.close(), events.close()]) };
}

/**
 * Reads commands until `distinct` different deliveries arrived (duplicates are allowed: at-least-once) and returns
 * them as "eventId→ruleId" pairs, sorted.
 */
export async function readCommands(cluster: ClusterConfig, distinct: number): Promise<{ pairs: string[]; commands: DeliveryCommand[] }> {
  const ids = new Set<string>();
  const records = await readTopic(cluster, topicNames(cluster.TOPIC_PREFIX).deliveries(), (received) => {
    ids.add(headerValue(received.at(-1)!.headers, 'delivery-id')!);
    return ids.size >= distinct;
  });
  const commands = await decodeAll(cluster, contracts.deliveryCommand, records);
  return { commands, pairs: commands.map((command) => `${command.event.eventId}→${command.ruleId}`).sort() };
}
