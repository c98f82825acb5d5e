/**
 * npm run bench:isolation — does a hanging endpoint slow the healthy ones? The same backlog of events is delivered to
 * healthy loopback receivers twice: once alone, once beside a rule whose endpoint accepts connections and never
 * answers. The dispatcher runs with its production defaults (50 requests per endpoint, 15 s attempt limit, breaker).
 * Goal: healthy deliveries/s drop by at most 10 %.
 *
 * This machine's speed drifts by ±20 % within a minute, more than the effect measured, so one pair of phases proves
 * little (single pairs ranged from -3 % to +24 %). The pair is repeated in rounds, each on fresh topics with fresh
 * services (a round's hanging endpoint keeps its retries cycling, which would burden the next round's "alone" phase),
 * and the median drop is the result. Options: --events 20000 --healthy 3 --rounds 3. Writes bench/results/isolation.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { EventRuleInput, WorkflowEventInput } from '../schemas/index.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import type { Endpoints } from '../stack/index.ts';
import { benchCluster, metric, percentile, ProcessMeter, progress, removeTopics, startReceiver, startService, writeResults } from './support.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '20000' }, healthy: { type: 'string', default: '3' }, rounds: { type: 'string', default: '3' } },
});
const eventCount = Number(values.events);
const healthyCount = Number(values.healthy);
const roundCount = Number(values.rounds);
const logger = createLogger('bench', 'warn');

const rule = (application: string, name: string, url: string, secret: string): Omit<EventRuleInput, 'updatedAt'> => ({
  id: `${application}-${name}`, application, name, enabled: true, scope: { kind: 'everything', ids: null }, eventTypes: null, url,
  secrets: [{ secret, notAfter: null }],
});
const event = (application: string, index: number): WorkflowEventInput => ({
  eventId: `${application}-${index}-${randomUUID().slice(0, 8)}`, type: 'workflow_completed', occurredAt: Date.now(), application: { id: application },
  workflow: { id: 'wf' }, workflowExecutionId: `run-${index % 1000}`, status: 'SUCCESS',
});

/** The cluster the first round found (or started); the others reuse it. */
let endpoints: Endpoints | undefined;

/** Warm-up, then the same backlog alone and beside the hanging endpoint, on topics, receivers and services of its own. */
async function round(label: string) {
  const healthy = await Promise.all(Array.from({ length: healthyCount }, () => startReceiver()));
  const hanging = await startReceiver({ hang: true });
  const healthyReceived = () => healthy.reduce((sum, receiver) => sum + receiver.received, 0);

  const cluster = { ...(await benchCluster('isolation', endpoints)), RETRY_SCHEDULE: [5000, 300_000] };
  endpoints = { brokers: cluster.KAFKA_BROKERS, registryUrl: cluster.SCHEMA_REGISTRY_URL };
  await prepareCluster(cluster, logger);
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'bench', logger });
  const writer = await RuleWriter.create(kafka, new SchemaRegistryClient(registryConnection(cluster)), topicNames(cluster.TOPIC_PREFIX).eventRules);
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  // One application per phase, so each phase's events match exactly its own rules.
  const phases = { warmup: false, alone: false, beside: true };
  for (const [phase, withHanging] of Object.entries(phases)) {
    await writer.put(...healthy.map((receiver, index) => rule(phase, `healthy-${index}`, receiver.url, secret)), ...(withHanging ? [rule(phase, 'hanging', hanging.url, secret)] : []));
  }
  await writer.close();

  progress(`${label}: starting matcher and dispatcher (production defaults)…`);
  const matcher = await startService('matcher', cluster);
  const dispatcher = await startService('dispatcher', cluster);
  const meter = new ProcessMeter({ dispatcher: dispatcher.child.pid!, matcher: matcher.child.pid! });
  const publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger, maxBatchSize: 1000 });

  /** Publishes a backlog of `count` events of `application` and times until every healthy receiver got each of them. */
  async function phase(application: string, count: number) {
    const target = healthyReceived() + count * healthyCount;
    const began = performance.now();
    meter.mark();
    for (let index = 0; index < count; index += 1000) {
      await publisher.publish(Array.from({ length: Math.min(1000, count - index) }, (_, offset) => event(application, index + offset)));
    }
    while (healthyReceived() < target) {
      await sleep(200);
      process.stderr.write(`\rbench › ${label}, ${application}: healthy deliveries ${healthyReceived() - (target - count * healthyCount)}/${count * healthyCount}`);
    }
    process.stderr.write('\n');
    const seconds = (performance.now() - began) / 1000;
    return { healthyDeliveriesPerSecond: Math.round((count * healthyCount) / seconds), seconds: Number(seconds.toFixed(1)), cores: meter.cores() };
  }

  // A warm-up as long as a phase: a shorter one left the first measured phase ~7 % slower than the second (JIT).
  await phase('warmup', eventCount);
  const alone = await phase('alone', eventCount);
  const beside = await phase('beside', eventCount);
  const page = await (await fetch(`http://127.0.0.1:${dispatcher.port}/metrics`)).text();
  await publisher.close();
  meter.stop();
  // No graceful stop: it would wait out the hanging requests, and nothing of this round is needed any more.
  for (const child of [matcher.child, dispatcher.child]) child.kill('SIGKILL');
  await Promise.all([...healthy, hanging].map((receiver) => receiver.close()));
  await removeTopics(cluster);
  const drop = 1 - beside.healthyDeliveriesPerSecond / alone.healthyDeliveriesPerSecond;
  progress(`${label}: alone ${alone.healthyDeliveriesPerSecond}/s, beside ${beside.healthyDeliveriesPerSecond}/s, drop ${(drop * 100).toFixed(1)} %`);
  return {
    alone,
    beside: { ...beside, hangingRequestsOpen: hanging.received, deferredToRetry: metric(page, 'dispatcher_attempts_total', { outcome: 'retrying' }) },
    drop: Number(drop.toFixed(3)),
  };
}

const rounds = [];
for (let index = 1; index <= roundCount; index += 1) rounds.push(await round(`round ${index}/${roundCount}`));
const drops = rounds.map((entry) => entry.drop).sort((a, b) => a - b);
const median = percentile(drops, 0.5);
const percent = (fraction: number) => `${(fraction * 100).toFixed(1)} %`;
const results = { events: eventCount, healthyEndpoints: healthyCount, rounds, medianHealthyThroughputDrop: Number(median.toFixed(3)), goal: 'healthy throughput drops ≤ 10 %' };
console.log(`
round  healthy deliveries/s alone · beside a hanging one  drop     deferred to retry
${rounds.map((entry, index) => `${String(index + 1).padEnd(7)}${String(entry.alone.healthyDeliveriesPerSecond).padStart(26)} · ${String(entry.beside.healthyDeliveriesPerSecond).padEnd(22)}${percent(entry.drop).padStart(7)}  ${entry.beside.deferredToRetry}`).join('\n')}
median drop ${percent(median)} (goal ≤ 10 %); each hanging endpoint held ${rounds.map((entry) => entry.beside.hangingRequestsOpen).join(' · ')} requests open
wrote ${await writeResults('isolation', results)}`);
process.exit(0);
