/** What integration tests share: the cluster from global setup, per-file topic names, and a topic reader. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import type { Contract } from '../schemas/index.ts';
import { createKafka, type KafkaMessage } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { SchemaRegistryClient } from '../services/common/registry.ts';
import type { ClusterConfig } from '../services/common/setup.ts';

export const testLogger = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** A cluster config whose topics belong to this test file alone (random prefix), so files run in parallel. */
export function testCluster(name: string, overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    KAFKA_BROKERS: inject('kafkaBrokers'),
    SCHEMA_REGISTRY_URL: inject('registryUrl'),
    KAFKA_CLIENT_ID: `test-${name}`,
    TOPIC_PREFIX: `t-${name}-${randomUUID().slice(0, 8)}.`,
    TOPIC_PARTITIONS: 3,
    RETRY_SCHEDULE: [1000, 2000],
    ...overrides,
  };
}

/** Reads `topic` from the beginning until `count` records arrived (or fails after `timeoutMs`). */
export async function readTopic(cluster: ClusterConfig, topic: string, count: number, timeoutMs = 30_000): Promise<KafkaMessage[]> {
  const kafka = createKafka({ brokers: cluster.KAFKA_BROKERS, clientId: 'test-reader', logger: testLogger });
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}` });
  const received: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${received.length} of ${count} records from ${topic} in ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            received.push(message);
            if (received.length >= count) {
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
  const registry = new SchemaRegistryClient(cluster.SCHEMA_REGISTRY_URL);
  return Promise.all(messages.map((message) => registry.decode(contract, message.value)));
}
