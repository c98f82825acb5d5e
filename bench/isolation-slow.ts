/**
 * `npm run bench:isolation -- --scenario slow`: does one endpoint that answers only after 10 s hold back the healthy
 * ones, or make the dispatcher hold without bound? Events go out at a fixed rate (1,000/s by default), a tenth of
 * them near the producer's size limit, each delivered to the healthy endpoints — alone, then beside the slow one
 * (which also gets every event), each phase on fresh topics, receivers and services. Goals, against the phase without
 * the slow endpoint in the same round: healthy p99 event→POST ≤ 1.5 ×, healthy deliveries/s ≥ 0.95 ×, and the
 * dispatcher's held bytes and RSS bounded (printed). Writes bench/results/isolation-slow.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventRuleInput, WorkflowEventInput } from '../schemas/index.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import { MAX_EVENT_BYTES } from '../services/common/limits.ts';
import { createLogger } from '../services/common/logger.ts';
import { progressLine } from '../services/common/progress.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import type { Endpoints } from '../stack/index.ts';
import { benchCluster, metric, percentile, ProcessMeter, progress, removeRun, startReceiver, startService, writeResults, type BenchReceiver } from './support.ts';

export interface SlowScenarioOptions {
  rate: number;
  seconds: number;
  healthy: number;
  rounds: number;
  slowMs: number;
  /** Every n-th event is near the size limit. */
  largeEvery: number;
}

const logger = createLogger('bench', 'warn');
/** A large event's workflow name: the event stays just inside the producer's limit (the rest of it is ~1 kB). */
const LARGE_NAME = 'x'.repeat(MAX_EVENT_BYTES - 4096);
/** How long after the last event a phase may take to deliver it all before it is reported as not keeping up. */
const DRAIN_LIMIT_MS = 120_000;

const rule = (application: string, name: string, url: string, secret: string): Omit<EventRuleInput, 'updatedAt'> => ({
  id: `${application}-${name}`, application, name, enabled: true, scope: { kind: 'everything', ids: null }, eventTypes: null, url,
  secrets: [{ secret, notAfter: null }],
});

interface PhaseResult {
  /** The rate the load generator reached (asked: --rate). */
  eventsPerSecond: number;
  healthyDeliveries: number;
  healthyDeliveriesPerSecond: number;
  /** Whether every healthy delivery arrived within the drain limit. */
  complete: boolean;
  healthyLatencyMs: { p50: number; p95: number; p99: number };
  peakHeldBytes: number;
  peakRssMB: number;
  slowDelivered: number;
  deferredToRetry: number;
}

/**
 * One phase on fresh topics with fresh services: a phase that did not keep up leaves a backlog, which must not become
 * the next phase's load.
 */
async function phase(options: SlowScenarioOptions, endpoints: Endpoints | undefined, application: string, withSlow: boolean): Promise<{ result: PhaseResult; endpoints: Endpoints }> {
  const cluster = { ...(await benchCluster(`isolation-slow-${application}`, endpoints)), RETRY_SCHEDULE: [5000, 300_000] };
  await prepareCluster(cluster, logger);
  const writer = await RuleWriter.create(createKafka({ ...kafkaConnection(cluster), clientId: 'bench', logger }), new SchemaRegistryClient(registryConnection(cluster)), topicNames(cluster.TOPIC_PREFIX).eventRules);
  progress(`${application}: starting matcher and dispatcher (production defaults)…`);
  const matcher = await startService('matcher', cluster);
  const dispatcher = await startService('dispatcher', cluster);
  const publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger, maxBatchSize: 1000 });
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const latencies: number[] = [];
  const healthy = await Promise.all(Array.from({ length: options.healthy }, () => startReceiver({
    onBody(body) {
      // The event time travels in the payload: the standard format's `timestamp`, near the start of the body.
      const timestamp = Date.parse(/"timestamp":"([^"]+)"/.exec(body.subarray(0, 512).toString())?.[1] ?? '');
      if (!Number.isNaN(timestamp)) latencies.push(Date.now() - timestamp);
    },
  })));
  const slow: BenchReceiver[] = withSlow ? [await startReceiver({ delayMs: options.slowMs })] : [];
  await writer.put(...healthy.map((receiver, index) => rule(application, `healthy-${index}`, receiver.url, secret)), ...slow.map((receiver) => rule(application, 'slow', receiver.url, secret)));
  // The rules reach the matcher's table within its fetch wait; events before that would match nothing.
  await sleep(2000);
  const received = () => healthy.reduce((sum, receiver) => sum + receiver.received, 0);
  const meter = new ProcessMeter({ dispatcher: dispatcher.child.pid! });
  const scrape = async () => (await fetch(`http://127.0.0.1:${dispatcher.port}/metrics`)).text();
  let peakHeldBytes = 0;
  const sampler = setInterval(() => void scrape().then((page) => (peakHeldBytes = Math.max(peakHeldBytes, metric(page, 'dispatcher_held_bytes'))), () => undefined), 500);

  // Paced against the clock: each tick sends what is due by now, and the phase sends for `seconds`, whatever it got
  // out. When the load generator cannot keep the rate on this machine (it shares the cores), the rate it reached is
  // reported, never a longer phase.
  const tickMs = 10;
  const started = performance.now();
  const sendUntil = started + options.seconds * 1000;
  let sent = 0;
  const inFlight = new Set<Promise<unknown>>();
  const line = progressLine();
  for (let tick = 0; performance.now() < sendUntil; tick += 1) {
    const due = Math.floor(((performance.now() - started) / 1000) * options.rate) - sent;
    const events = Array.from({ length: Math.max(0, due) }, (): WorkflowEventInput => {
      sent += 1;
      return {
        eventId: `${application}-${sent}-${randomUUID().slice(0, 8)}`, type: 'workflow_completed', occurredAt: Date.now(), application: { id: application },
        workflow: { id: 'wf', name: sent % options.largeEvery === 0 ? LARGE_NAME : 'wf' }, workflowExecutionId: `run-${sent % 1000}`, status: 'SUCCESS',
      };
    });
    if (events.length > 0) {
      const published = publisher.publish(events).catch((error: unknown) => progress(`${application}: publish failed: ${String(error)}`));
      inFlight.add(published);
      void published.finally(() => inFlight.delete(published));
    }
    // Kafka not taking events as fast as they are made: wait for it rather than hold an unbounded queue here.
    while (inFlight.size > 20) await Promise.race(inFlight);
    if (tick % 100 === 0) line.update(`bench › ${application}: ${sent} events sent, healthy deliveries ${received()}`);
    await sleep(tickMs);
  }
  await Promise.all(inFlight);
  const eventsPerSecond = Math.round(sent / options.seconds);
  const target = sent * options.healthy;
  const drainDeadline = performance.now() + DRAIN_LIMIT_MS;
  while (received() < target && performance.now() < drainDeadline) {
    line.update(`bench › ${application}: healthy deliveries ${received()}/${target}`);
    await sleep(200);
  }
  line.done();
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const sorted = latencies.sort((a, b) => a - b);
  const result: PhaseResult = {
    eventsPerSecond,
    healthyDeliveries: received(),
    healthyDeliveriesPerSecond: Math.round(received() / elapsed),
    complete: received() >= target,
    healthyLatencyMs: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) },
    peakHeldBytes,
    peakRssMB: meter.peakRssMB().dispatcher ?? NaN,
    slowDelivered: slow.reduce((sum, receiver) => sum + receiver.received, 0),
    deferredToRetry: metric(await scrape(), 'dispatcher_attempts_total', { outcome: 'retrying' }),
  };
  meter.stop();
  // No graceful stop: it would wait out the slow endpoint's requests (and any backlog), none of which is measured.
  for (const child of [matcher.child, dispatcher.child]) child.kill('SIGKILL');
  await Promise.allSettled([publisher.close(), writer.close(), ...[...healthy, ...slow].map((receiver) => receiver.close())]);
  await removeRun(cluster);
  return { result, endpoints: { brokers: cluster.KAFKA_BROKERS, registryUrl: cluster.SCHEMA_REGISTRY_URL } };
}

export async function slowScenario(options: SlowScenarioOptions): Promise<void> {
  let endpoints: Endpoints | undefined;
  const rounds: Array<{ alone: PhaseResult; beside: PhaseResult; p99Ratio: number; throughputRatio: number }> = [];
  for (let index = 1; index <= options.rounds; index += 1) {
    progress(`round ${index}/${options.rounds}`);
    const alone = await phase(options, endpoints, 'alone', false);
    endpoints = alone.endpoints;
    const beside = (await phase(options, endpoints, 'beside', true)).result;
    const p99Ratio = Number((beside.healthyLatencyMs.p99 / alone.result.healthyLatencyMs.p99).toFixed(2));
    const throughputRatio = Number((beside.healthyDeliveriesPerSecond / alone.result.healthyDeliveriesPerSecond).toFixed(3));
    progress(`round ${index}/${options.rounds}: healthy p99 ${alone.result.healthyLatencyMs.p99} → ${beside.healthyLatencyMs.p99} ms (${p99Ratio} ×), deliveries/s ${alone.result.healthyDeliveriesPerSecond} → ${beside.healthyDeliveriesPerSecond} (${throughputRatio} ×)`);
    rounds.push({ alone: alone.result, beside, p99Ratio, throughputRatio });
  }

  const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 0.5);
  const results = {
    scenario: 'slow',
    eventsPerSecond: options.rate,
    seconds: options.seconds,
    healthyEndpoints: options.healthy,
    slowEndpointAnswersAfterMs: options.slowMs,
    largeEventEvery: options.largeEvery,
    largeEventBytes: LARGE_NAME.length,
    rounds,
    healthyP99Ratio: median(rounds.map((entry) => entry.p99Ratio)),
    healthyThroughputRatio: median(rounds.map((entry) => entry.throughputRatio)),
    peakHeldBytes: Math.max(...rounds.flatMap((entry) => [entry.alone.peakHeldBytes, entry.beside.peakHeldBytes])),
    peakRssMB: Math.max(...rounds.flatMap((entry) => [entry.alone.peakRssMB, entry.beside.peakRssMB])),
    goal: 'healthy p99 ≤ 1.5 × and healthy deliveries/s ≥ 0.95 × the same round without the slow endpoint; held bytes and RSS bounded',
  };
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  console.log(`
scenario slow: ${options.rate} events/s for ${options.seconds} s (every ${options.largeEvery}th of ${mb(LARGE_NAME.length)}), ${options.healthy} healthy endpoint(s) alone · beside one answering after ${options.slowMs} ms
round  events/s sent  healthy p99 ms      ratio  deliveries/s       ratio  complete  held bytes (peak)    dispatcher RSS     slow delivered  deferred
${rounds.map(({ alone, beside, p99Ratio, throughputRatio }, index) => [
    String(index + 1).padEnd(5),
    `${alone.eventsPerSecond} · ${beside.eventsPerSecond}`.padEnd(13),
    `${alone.healthyLatencyMs.p99} · ${beside.healthyLatencyMs.p99}`.padEnd(18),
    `${p99Ratio} ×`.padStart(6),
    `${alone.healthyDeliveriesPerSecond} · ${beside.healthyDeliveriesPerSecond}`.padEnd(17),
    `${throughputRatio} ×`.padStart(7),
    `${alone.complete && beside.complete ? 'yes' : 'NO'}`.padStart(9),
    `${mb(alone.peakHeldBytes)} · ${mb(beside.peakHeldBytes)}`.padStart(20),
    `${alone.peakRssMB} · ${beside.peakRssMB} MB`.padStart(17),
    String(beside.slowDelivered).padStart(15),
    String(beside.deferredToRetry).padStart(9),
  ].join('  ')).join('\n')}
median healthy p99 ratio ${results.healthyP99Ratio} × (goal ≤ 1.5 ×); median healthy throughput ratio ${results.healthyThroughputRatio} × (goal ≥ 0.95 ×)
peak held ${mb(results.peakHeldBytes)}, peak dispatcher RSS ${results.peakRssMB} MB
wrote ${await writeResults('isolation-slow', results)}`);
}
