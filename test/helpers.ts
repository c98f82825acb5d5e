/** What integration tests share: the cluster from global setup, per-file topic names, and a topic reader. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { validate, type Contract } from '../schemas/index.ts';
import { kafkaConnection, createKafka, type KafkaMessage } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { removeCluster, type ClusterConfig } from '../services/common/setup.ts';
import { connectionEnv } from '../services/common/config.ts';

export const testLogger = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** The clusters this file's tests asked for, removed after the file (test/cleanup.ts). */
const created: ClusterConfig[] = [];

/**
 * A cluster config whose topics belong to this test file alone (random prefix), so files run in parallel. Its topics
 * and schema subjects are deleted once the file's tests are done, so a shared or external cluster keeps nothing.
 */
export function testCluster(name: string, overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  const cluster: ClusterConfig = {
    // Against an external cluster (KAFKA_BROKERS + SCHEMA_REGISTRY_URL set), its TLS / SASL / registry-auth settings.
    ...inject('connection'),
    KAFKA_BROKERS: inject('kafkaBrokers'),
    SCHEMA_REGISTRY_URL: inject('registryUrl'),
    KAFKA_CLIENT_ID: `test-${name}`,
    TOPIC_PREFIX: `t-${name}-${randomUUID().slice(0, 8)}.`,
    TOPIC_PARTITIONS: 3,
    RETRY_SCHEDULE: [1000, 2000],
    ...overrides,
  };
  created.push(cluster);
  return cluster;
}

/** Deletes the topics and subjects of every cluster testCluster gave this file (prefixes derived from theirs included). */
export async function removeTestClusters(): Promise<void> {
  const clusters = created.splice(0);
  // A prefix derived from another's (`<prefix>order.`) is removed with it.
  const outermost = clusters.filter((cluster) => !clusters.some((other) => other !== cluster && other.TOPIC_PREFIX !== cluster.TOPIC_PREFIX && cluster.TOPIC_PREFIX.startsWith(other.TOPIC_PREFIX)));
  await Promise.all(outermost.map((cluster) => removeCluster(cluster, testLogger)));
}

/** Environment for a child process (a CLI, a service) that should use this test file's cluster and topics. */
export function clusterEnv(cluster: ClusterConfig, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKA_BROKERS: cluster.KAFKA_BROKERS.join(','),
    SCHEMA_REGISTRY_URL: cluster.SCHEMA_REGISTRY_URL,
    ...connectionEnv(cluster),
    TOPIC_PREFIX: cluster.TOPIC_PREFIX,
    ...extra,
  };
}

/**
 * Reads `topic` from the beginning until `count` records arrived, or until `count(received)` holds
 * (or fails after `timeoutMs`).
 */
export async function readTopic(
  cluster: ClusterConfig,
  topic: string,
  count: number | ((received: KafkaMessage[]) => boolean),
  timeoutMs = 30_000,
): Promise<KafkaMessage[]> {
  const done = typeof count === 'number' ? (received: KafkaMessage[]) => received.length >= count : count;
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-reader', logger: testLogger });
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}` });
  const received: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read only ${received.length} records from ${topic} in ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            received.push(message);
            if (done(received)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

/** Decodes records of a topic with the real registry. */
export function decodeAll<T>(cluster: ClusterConfig, contract: Contract<T>, messages: KafkaMessage[]): Promise<T[]> {
  const registry = new SchemaRegistryClient(registryConnection(cluster));
  return Promise.all(messages.map((message) => registry.decode(contract, message.value)));
}

/** Records in a topic right now (sum of partition end offsets minus start offsets). */
export async function topicSize(cluster: ClusterConfig, topic: string): Promise<number> {
  const admin = createKafka({ ...kafkaConnection(cluster), clientId: 'test-admin', logger: testLogger }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, { offset, low }) => sum + Number(offset) - Number(low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Polls until `check` holds (or fails with `what` after `timeoutMs`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The value of a counter or gauge (summed over labels, or for the given labels). */
export async function metricValue(registry: import('prom-client').Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((value) => Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected))
    .reduce((sum, value) => sum + value.value, 0);
}

/** A fixture as a decoded record holds it: validated, defaults filled in (throws on an invalid fixture). */
export function valid<T>(contract: Contract<T>, input: unknown): T {
  const result = validate(contract, input);
  if (!result.ok) throw new Error(`fixture: ${JSON.stringify(result.issues)}`);
  return result.value;
}
