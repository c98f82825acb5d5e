/**
 * npm run bench:isolation — do bad endpoints slow the healthy ones? The same backlog of events is delivered to healthy
 * loopback receivers twice: once alone, once beside bad endpoints. The dispatcher runs with its production defaults
 * (50 requests per endpoint, 15 s attempt limit, breaker). Goals: healthy deliveries/s drop by at most 10 %, and no
 * consumer-group rebalance during the phase (a member that stops heartbeating while it waits is evicted).
 *
 * Scenarios (--scenario): `mixed` (default) — four endpoints that accept connections and never answer, and one
 * slow-but-alive endpoint (answers after --slow-ms) that gets every event, so a backlog of --events commands builds
 * up for it; `hanging` — one endpoint that never answers.
 *
 * This machine's speed drifts by ±20 % within a minute, more than the effect measured, so one pair of phases proves
 * little (single pairs ranged from -3 % to +24 %). The pair is repeated in rounds, each on fresh topics with fresh
 * services (a round's hanging endpoint keeps its retries cycling, which would burden the next round's "alone" phase),
 * and the median drop is the result. Options: --events 20000 --healthy 3 --rounds 3. Writes bench/results/isolation.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventRuleInput, WorkflowEventInput } from '../schemas/index.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import type { Endpoints } from '../stack/index.ts';
import { progressLine } from '../services/common/progress.ts';
import { benchCluster, metric, percentile, ProcessMeter, progress, removeRun, startReceiver, startService, writeResults } from './support.ts';
import { parseCommandLine } from '../services/common/cli.ts';

const USAGE = `
usage: npm run bench:isolation -- [--scenario mixed|hanging] [--events 20000] [--healthy 3] [--rounds 3] [--slow-ms 200]

Healthy endpoints' deliveries/s alone and beside bad ones; writes bench/results/isolation-<scenario>.json (docs/benchmarks.md).
`;
const { values } = parseCommandLine({
  options: {
    help: { type: 'boolean', short: 'h' },
    events: { type: 'string', default: '20000' },
    healthy: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    scenario: { type: 'string', default: 'mixed' },
    'slow-ms': { type: 'string', default: '200' },
  },
}, USAGE);
if (values.scenario !== 'mixed' && values.scenario !== 'hanging') throw new Error(`--scenario: "${values.scenario}" is neither mixed nor hanging`);
const hangingCount = values.scenario === 'mixed' ? 4 : 1;
const slowCount = values.scenario === 'mixed' ? 1 : 0;
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
  const hanging = await Promise.all(Array.from({ length: hangingCount }, () => startReceiver({ hang: true })));
  const slow = await Promise.all(Array.from({ length: slowCount }, () => startReceiver({ delayMs: Number(values['slow-ms']) })));
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
    const bad = withHanging ? [...hanging.map((receiver, index) => rule(phase, `hanging-${index}`, receiver.url, secret)), ...slow.map((receiver, index) => rule(phase, `slow-${index}`, receiver.url, secret))] : [];
    await writer.put(...healthy.map((receiver, index) => rule(phase, `healthy-${index}`, receiver.url, secret)), ...bad);
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
    const rebalancesBefore = await rebalances();
    const began = performance.now();
    meter.mark();
    for (let index = 0; index < count; index += 1000) {
      await publisher.publish(Array.from({ length: Math.min(1000, count - index) }, (_, offset) => event(application, index + offset)));
    }
    const delivered = progressLine();
    while (healthyReceived() < target) {
      await sleep(200);
      delivered.update(`bench › ${label}, ${application}: healthy deliveries ${healthyReceived() - (target - count * healthyCount)}/${count * healthyCount}`);
    }
    delivered.done();
    const seconds = (performance.now() - began) / 1000;
    return { healthyDeliveriesPerSecond: Math.round((count * healthyCount) / seconds), seconds: Number(seconds.toFixed(1)), cores: meter.cores(), rebalances: (await rebalances()) - rebalancesBefore };
  }
  async function rebalances() {
    return metric(await (await fetch(`http://127.0.0.1:${dispatcher.port}/metrics`)).text(), 'dispatcher_rebalances_total');
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
  await Promise.all([...healthy, ...hanging, ...slow].map((receiver) => receiver.close()));
  await removeRun(cluster);
  const drop = 1 - beside.healthyDeliveriesPerSecond / alone.healthyDeliveriesPerSecond;
  progress(`${label}: alone ${alone.healthyDeliveriesPerSecond}/s, beside ${beside.healthyDeliveriesPerSecond}/s, drop ${(drop * 100).toFixed(1)} %`);
  return {
    alone,
    beside: {
      ...beside,
      hangingRequestsOpen: hanging.reduce((sum, receiver) => sum + receiver.received, 0),
      slowDelivered: slow.reduce((sum, receiver) => sum + receiver.received, 0),
      deferredToRetry: metric(page, 'dispatcher_attempts_total', { outcome: 'retrying' }),
    },
    drop: Number(drop.toFixed(3)),
  };
}

const rounds = [];
for (let index = 1; index <= roundCount; index += 1) rounds.push(await round(`round ${index}/${roundCount}`));
const drops = rounds.map((entry) => entry.drop).sort((a, b) => a - b);
const median = percentile(drops, 0.5);
const percent = (fraction: number) => `${(fraction * 100).toFixed(1)} %`;
const rebalanceCount = rounds.reduce((sum, entry) => sum + entry.beside.rebalances, 0);
const besideWhat = values.scenario === 'mixed' ? `4 hanging + 1 slow (${values['slow-ms']} ms) endpoints` : 'a hanging endpoint';
const results = {
  scenario: values.scenario, events: eventCount, healthyEndpoints: healthyCount, hangingEndpoints: hangingCount, slowEndpoints: slowCount, rounds,
  medianHealthyThroughputDrop: Number(median.toFixed(3)), rebalancesDuringPhases: rebalanceCount, goal: 'healthy throughput drops ≤ 10 %, zero rebalances',
};
console.log(`
scenario ${values.scenario}: healthy deliveries/s alone · beside ${besideWhat}
round  alone · beside        drop     deferred to retry  rebalances  hanging requests open  slow endpoint delivered
${rounds.map((entry, index) => `${String(index + 1).padEnd(7)}${`${entry.alone.healthyDeliveriesPerSecond} · ${entry.beside.healthyDeliveriesPerSecond}`.padEnd(15)}${percent(entry.drop).padStart(7)}  ${String(entry.beside.deferredToRetry).padStart(17)}  ${String(entry.beside.rebalances).padStart(10)}  ${String(entry.beside.hangingRequestsOpen).padStart(21)}  ${entry.beside.slowDelivered}`).join('\n')}
median drop ${percent(median)} (goal ≤ 10 %); rebalances during the phases: ${rebalanceCount} (goal 0)
wrote ${await writeResults(`isolation-${values.scenario}`, results)}`);
process.exit(0);
