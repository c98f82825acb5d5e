/**
 * Every topic of the system, declared once with its partitions and configs, and created idempotently.
 * Names take an optional prefix so several deployments (or test files) share one cluster without colliding; consumer
 * group ids are as cluster-wide as topic names, so they take the same prefix (TopicNames.group).
 */
import { retryRetriable, type Admin, type ITopicConfig } from './kafka.ts';
import type { Logger } from './logger.ts';
import { formatDuration, parseDuration } from './duration.ts';

const DAY_MS = 86_400_000;

export interface TopicSpec {
  name: string;
  partitions: number;
  configs: Record<string, string>;
}

export interface TopicNames {
  workflowEvents: string;
  workflowEventsDlq: string;
  eventRules: string;
  eventRulesDlq: string;
  deliveriesDlq: string;
  deliveryLog: string;
  dispatcherPools: string;
  dispatcherPoolsDlq: string;
  /** Since when each failing rule's endpoint has failed, kept across dispatcher restarts. */
  endpointHealth: string;
  /** Delivery commands of one dispatcher pool; the default pool has the bare name. */
  deliveries(pool?: string): string;
  /** The retry topic of one delay (and pool); one topic per distinct delay of the schedule. */
  retry(delayMs: number, pool?: string): string;
  /** A consumer group id of this install (`matcher`, `console.dead-letters.<id>`): two installs never join each other's groups. */
  group(base: string): string;
}

export const DEFAULT_POOL = 'default';

export function topicNames(prefix = ''): TopicNames {
  const name = (base: string) => `${prefix}${base}`;
  return {
    workflowEvents: name('workflow-events'),
    workflowEventsDlq: name('workflow-events.dlq'),
    eventRules: name('event-rules'),
    eventRulesDlq: name('event-rules.dlq'),
    deliveriesDlq: name('webhook-deliveries.dlq'),
    deliveryLog: name('delivery-log'),
    dispatcherPools: name('dispatcher-pools'),
    dispatcherPoolsDlq: name('dispatcher-pools.dlq'),
    endpointHealth: name('endpoint-health'),
    deliveries: (pool = DEFAULT_POOL) => name(pool === DEFAULT_POOL ? 'webhook-deliveries' : `webhook-deliveries.${pool}`),
    retry: (delayMs, pool = DEFAULT_POOL) =>
      name(`${pool === DEFAULT_POOL ? 'webhook-deliveries' : `webhook-deliveries.${pool}`}.retry.${formatDuration(delayMs)}`),
    group: name,
  };
}

/** The pool and delay of a retry topic of the layout with `prefix`; undefined for any other topic. */
export function retryTopicOf(name: string, prefix = ''): { pool: string; delayMs: number } | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const match = /^webhook-deliveries(?:\.([a-z0-9-]+))?\.retry\.(\d+(?:ms|s|m|h|d))$/.exec(name.slice(prefix.length));
  return match ? { pool: match[1] ?? DEFAULT_POOL, delayMs: parseDuration(match[2]!) } : undefined;
}

export interface TopicLayoutOptions {
  prefix?: string;
  /** Partitions of the data topics; the unit of parallelism of every consumer group. */
  partitions?: number;
  /** Delays of the retry schedule, in ms; one retry topic per distinct delay. */
  retryDelaysMs?: readonly number[];
  /** Dispatcher pools besides the default one. */
  pools?: readonly string[];
}

const compacted = { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'delete.retention.ms': String(DAY_MS) };
const retainDays = (days: number) => ({ 'cleanup.policy': 'delete', 'retention.ms': String(days * DAY_MS) });

/** The whole topic layout: what `ensureTopics` creates at start-up. */
export function topicSpecs({ prefix = '', partitions = 6, retryDelaysMs = [], pools = [] }: TopicLayoutOptions = {}): TopicSpec[] {
  const names = topicNames(prefix);
  const data = (name: string, configs: Record<string, string>): TopicSpec => ({ name, partitions, configs });
  const retryDelays = [...new Set(retryDelaysMs)];
  return [
    data(names.workflowEvents, retainDays(7)),
    data(names.workflowEventsDlq, retainDays(30)),
    // Rules, pool announcements and endpoint health are tables: the latest value per key is all that matters, forever.
    data(names.eventRules, compacted),
    data(names.eventRulesDlq, retainDays(30)),
    { name: names.dispatcherPools, partitions: 1, configs: compacted },
    { name: names.dispatcherPoolsDlq, partitions: 1, configs: retainDays(30) },
    { name: names.endpointHealth, partitions: 1, configs: compacted },
    ...[DEFAULT_POOL, ...pools].map((pool) => data(names.deliveries(pool), retainDays(7))),
    // A retry record must outlive its own delay by a comfortable margin, or it could expire before it is due.
    ...[DEFAULT_POOL, ...pools].flatMap((pool) =>
      retryDelays.map((delay) => data(names.retry(delay, pool), { 'cleanup.policy': 'delete', 'retention.ms': String(Math.max(7 * DAY_MS, 3 * delay)) }))),
    data(names.deliveriesDlq, retainDays(30)),
    data(names.deliveryLog, retainDays(7)),
  ];
}

/**
 * Creates the topics that do not exist yet (existing ones are left as they are) and waits until every partition of
 * every one has a leader, whoever created it. Safe beside another caller creating the same topics at the same moment
 * (a second install, `npm start` beside `npm run setup`): a topic the other created first is not a failure, and what
 * the brokers answer while its topics settle (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE: retriable) is asked
 * again. Returns the names that were missing.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[], logger?: Logger): Promise<string[]> {
  const existing = new Set(await retryRetriable(() => admin.listTopics()));
  const missing = specs.filter((spec) => !existing.has(spec.name));
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((spec) => ({
      topic: spec.name,
      numPartitions: spec.partitions,
      configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
    }));
    try {
      // Leaders are awaited below for every topic: kafkajs's own wait gives up at the first topic its broker does not know yet.
      await retryRetriable(() => admin.createTopics({ topics, waitForLeaders: false }));
    } catch (error) {
      // kafkajs reports topics created meanwhile by another caller only when some others were new; those are fine.
      const errors = (error as { errors?: Array<{ type?: string; retriable?: boolean }> }).errors ?? [error as { type?: string; retriable?: boolean }];
      if (!errors.every((each) => each.type === 'TOPIC_ALREADY_EXISTS' || each.retriable === true)) throw error;
    }
    logger?.info({ topics: missing.map((spec) => spec.name) }, 'created topics');
  }
  await waitForLeaders(admin, specs.map((spec) => spec.name), LEADER_TIMEOUT_MS);
  return missing.map((spec) => spec.name);
}

/** How long new topics may take to get their leaders: a healthy cluster needs well under a second. */
const LEADER_TIMEOUT_MS = 30_000;

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let leaderless: string[] = topics;
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      leaderless = metadata.topics.filter(({ partitions }) => partitions.length === 0 || partitions.some((partition) => partition.leader < 0)).map(({ name }) => name);
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable !== true) throw error;
    }
    if (leaderless.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${leaderless.length} topic(s) still without a leader after ${timeoutMs} ms, ${leaderless[0]} among them`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
