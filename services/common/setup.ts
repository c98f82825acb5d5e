/**
 * Prepares a cluster for the services: every topic of the layout exists and every contract is registered under
 * `<topic>-value` with BACKWARD compatibility. Idempotent; `npm start` and the test harness run it.
 */
import { contracts, type Contract } from '../../schemas/index.ts';
import type { BaseConfig, ConnectionConfig } from './config.ts';
import { kafkaConnection, createKafka } from './kafka.ts';
import type { Logger } from './logger.ts';
import { registryConnection, SchemaRegistryClient } from './registry.ts';
import { DEFAULT_POOL, ensureTopics, topicNames, topicSpecs } from './topics.ts';

export type ClusterConfig = ConnectionConfig & Pick<BaseConfig, 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX' | 'TOPIC_PARTITIONS' | 'RETRY_SCHEDULE'>;

/** Which contract each topic carries (dead-letter topics of raw input keep the bytes they were given). */
export function subjectsOf(config: Pick<ClusterConfig, 'TOPIC_PREFIX' | 'RETRY_SCHEDULE'>, pools: readonly string[] = []): Array<[string, Contract<unknown>]> {
  const names = topicNames(config.TOPIC_PREFIX);
  const commandTopics = [
    ...[DEFAULT_POOL, ...pools].flatMap((pool) => [names.deliveries(pool), ...[...new Set(config.RETRY_SCHEDULE)].map((delay) => names.retry(delay, pool))]),
    names.deliveriesDlq,
  ];
  return [
    [names.workflowEvents, contracts.workflowEvent],
    [names.eventRules, contracts.eventRule],
    ...commandTopics.map((topic): [string, Contract<unknown>] => [topic, contracts.deliveryCommand]),
    [names.deliveryLog, contracts.deliveryLog],
    [names.dispatcherPools, contracts.dispatcherPool],
    [names.endpointHealth, contracts.endpointHealth],
  ];
}

export interface Prepared {
  /** Every topic of the layout, and those of them this call created. */
  topics: string[];
  createdTopics: string[];
  /** The subjects the contracts are registered under. */
  subjects: string[];
}

/** Preparing the cluster failed in a way retrying did not cure; the message says what to do. */
export class ClusterSetupError extends Error {
  override name = 'ClusterSetupError';
}

/** Safe to run by several callers at once (two installs, `npm start` beside `npm run setup`). */
export async function prepareCluster(config: ClusterConfig, logger: Logger, pools: readonly string[] = []): Promise<Prepared> {
  const admin = createKafka({ ...kafkaConnection(config), clientId: config.KAFKA_CLIENT_ID, logger }).admin();
  const specs = topicSpecs({ prefix: config.TOPIC_PREFIX, partitions: config.TOPIC_PARTITIONS, retryDelaysMs: config.RETRY_SCHEDULE, pools });
  let createdTopics: string[];
  await admin.connect();
  try {
    createdTopics = await ensureTopics(admin, specs, logger);
  } catch (error) {
    // kafkajs's aggregate says only "Topic creation errors"; the brokers' reasons are in its parts.
    const parts = (error as { errors?: Error[] }).errors ?? [error as Error];
    const reasons = [...new Set(parts.map((part) => part.message))].join('; ');
    throw new ClusterSetupError(`creating the topics of TOPIC_PREFIX "${config.TOPIC_PREFIX}" on ${config.KAFKA_BROKERS.join(',')} failed: ${reasons}; `
      + 'check that the brokers are up and this client may create topics, then run `npm run setup` again (safe to repeat)', { cause: error });
  } finally {
    await admin.disconnect();
  }
  const registry = new SchemaRegistryClient(registryConnection(config));
  const subjects: string[] = [];
  for (const [topic, contract] of subjectsOf(config, pools)) {
    await registry.register(`${topic}-value`, contract.schema);
    subjects.push(`${topic}-value`);
  }
  logger.info({ prefix: config.TOPIC_PREFIX || '(none)' }, 'topics and schemas ready');
  return { topics: specs.map((spec) => spec.name), createdTopics, subjects };
}

/**
 * The reverse of prepareCluster for a deployment with a prefix of its own (a test file's, a benchmark run's): deletes
 * its topics and the subjects registered for them, so runs leave neither partitions nor schemas behind.
 */
export async function removeCluster(config: ClusterConfig, logger: Logger): Promise<{ topics: string[]; subjects: string[] }> {
  if (!config.TOPIC_PREFIX) throw new Error('refusing to remove a deployment without TOPIC_PREFIX: that would be every topic');
  const admin = createKafka({ ...kafkaConnection(config), clientId: config.KAFKA_CLIENT_ID, logger }).admin();
  await admin.connect();
  let topics: string[];
  try {
    const ours = async () => (await admin.listTopics()).filter((topic) => topic.startsWith(config.TOPIC_PREFIX));
    topics = await ours();
    try {
      if (topics.length > 0) await admin.deleteTopics({ topics });
    } catch (error) {
      // One of them was deleted meanwhile (another cleanup): only a topic still there is a failure.
      if ((await ours()).length > 0) throw error;
    }
  } finally {
    await admin.disconnect();
  }
  const subjects = await new SchemaRegistryClient(registryConnection(config)).deleteSubjects(config.TOPIC_PREFIX);
  return { topics, subjects };
}
