/**
 * npm run bench — end to end: workflow events → matcher → dispatcher → a fast local receiver (200 OK), on the real
 * stack (started or reused). Reports sustained deliveries/s, event→POST latency (the event time travels in the
 * payload), CPU and RSS per process (services, broker, registry, this benchmark), a fixed-rate latency run, and in
 * the same run three references: (a) the raw POST rate autocannon gets from the same receiver, (b) the raw consume
 * rate of the events topic, (c) a baseline kafkajs eachMessage loop that POSTs each event with fetch and awaits it.
 * Options: --events 20000 --rules 2 --rate 1000 --rate-seconds 10 --dispatchers 1 [--profile DIR]. Writes bench/results/e2e.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { contracts, type WorkflowEventInput } from '../schemas/index.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import { progressLine } from '../services/common/progress.ts';
import { benchCluster, percentile, ProcessMeter, progress, removeRun, stackPids, startReceiver, startService, type ServiceProcess, writeResults } from './support.ts';
import { parseCommandLine } from '../services/common/cli.ts';

const USAGE = `
usage: npm run bench -- [--events 20000] [--rules 2] [--rate 1000] [--rate-seconds 10] [--dispatchers 1] [--profile DIR]

End-to-end throughput and latency on the real stack, with three references; writes bench/results/e2e.json (docs/benchmarks.md).
`;
const { values } = parseCommandLine({ options: {
  help: { type: 'boolean', short: 'h' },
  events: { type: 'string', default: '20000' },
  rules: { type: 'string', default: '2' },
  rate: { type: 'string', default: '1000' },
  'rate-seconds': { type: 'string', default: '10' },
  // Dispatcher processes sharing the work (one consumer group), as one scales the dispatcher out.
  dispatchers: { type: 'string', default: '1' },
  // Writes a V8 CPU profile of each service process into this directory (open in Chrome DevTools).
  profile: { type: 'string' },
} }, USAGE);
const eventCount = Number(values.events);
const ruleCount = Number(values.rules);
const rate = Number(values.rate);
const rateSeconds = Number(values['rate-seconds']);
const logger = createLogger('bench', 'warn');

// The receiver records how long after the event each POST arrived (the event time is the payload's timestamp).
let latencies: number[] = [];
const receiver = await startReceiver({
  onBody(body) {
    const timestamp = Date.parse(/"timestamp":"([^"]+)"/.exec(body.toString())?.[1] ?? '');
    if (!Number.isNaN(timestamp)) latencies.push(Date.now() - timestamp);
  },
});
const receiverUrl = receiver.url;

const cluster = { ...(await benchCluster('e2e')), RETRY_SCHEDULE: [5000] };
await prepareCluster(cluster, logger);
const names = topicNames(cluster.TOPIC_PREFIX);
const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'bench', logger });
const writer = await RuleWriter.create(kafka, new SchemaRegistryClient(registryConnection(cluster)), names.eventRules);
const secret = `whsec_${randomBytes(32).toString('base64')}`;
await writer.put(...Array.from({ length: ruleCount }, (_, index) => ({
  id: `bench-${index}`, application: 'bench-app', name: `bench ${index}`, enabled: true, scope: { kind: 'everything' as const, ids: null },
  eventTypes: null, url: receiverUrl, secrets: [{ secret, notAfter: null }],
})));
await writer.close();

const event = (index: number): WorkflowEventInput => ({
  eventId: `e2e-${index}-${randomUUID().slice(0, 8)}`, type: 'task_completed', occurredAt: Date.now(), application: { id: 'bench-app' },
  workflow: { id: 'wf' }, workflowExecutionId: `run-${index % 1000}`, task: { id: 'task', runId: `tr-${index}` }, status: 'SUCCESS',
});

const dispatcherCount = Number(values.dispatchers);
progress(`starting the matcher and ${dispatcherCount} dispatcher process(es)…`);
const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
const services: Record<string, ServiceProcess> = { matcher: await startService('matcher', cluster, { nodeArgs }) };
for (let index = 1; index <= dispatcherCount; index += 1) {
  services[dispatcherCount === 1 ? 'dispatcher' : `dispatcher-${index}`] = await startService('dispatcher', cluster, { nodeArgs });
}
const meter = new ProcessMeter({ bench: process.pid, ...Object.fromEntries(Object.entries(services).map(([name, { child }]) => [name, child.pid!])), ...(await stackPids()) });

// 1. Sustained throughput: a backlog of events, delivered as fast as the pipeline goes.
const publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger, maxBatchSize: 1000 });
const expected = eventCount * ruleCount;
progress(`publishing ${eventCount} events × ${ruleCount} rules = ${expected} deliveries…`);
const began = performance.now();
meter.mark();
for (let index = 0; index < eventCount; index += 1000) await publisher.publish(Array.from({ length: Math.min(1000, eventCount - index) }, (_, offset) => event(index + offset)));
const delivered = progressLine();
while (receiver.received < expected) {
  await sleep(200);
  delivered.update(`bench › delivered ${receiver.received}/${expected}`);
}
delivered.done();
const seconds = (performance.now() - began) / 1000;
const sustained = Math.round(expected / seconds);
const saturated = [...latencies].sort((a, b) => a - b);
const cpu = meter.cores();

// 2. Latency at a fixed event rate.
progress(`fixed rate: ${rate} events/s for ${rateSeconds} s…`);
latencies = [];
const before = receiver.received;
// Small batches every 10 ms, paced against the clock (not sleep-to-sleep), so the rate holds and nothing bursts.
const tickMs = 10;
const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
const ticks = Math.round((rateSeconds * 1000) / tickMs);
const fixedStart = performance.now();
for (let tick = 0; tick < ticks; tick += 1) {
  void publisher.publish(Array.from({ length: perTick }, (_, offset) => event(eventCount + tick * perTick + offset)));
  await sleep(Math.max(0, fixedStart + (tick + 1) * tickMs - performance.now()));
}
while (receiver.received < before + ticks * perTick * ruleCount) await sleep(100);
const fixed = [...latencies].sort((a, b) => a - b);
const peakRssMB = meter.peakRssMB();
meter.stop();
await publisher.close();
for (const { child } of Object.values(services)) child.kill('SIGTERM');

// (a) The receiver's raw POST rate.
progress('reference (a): autocannon against the receiver…');
const body = JSON.stringify({ type: 'task.completed', timestamp: new Date().toISOString(), data: event(0) });
const cannon = await autocannon({ url: receiverUrl, method: 'POST', body, headers: { 'content-type': 'application/json' }, connections: 50, duration: 5 });
const rawPost = Math.round(cannon.requests.average);

// (b) The raw consume rate of the events topic.
progress('reference (b): raw consume of the events topic…');
async function consume(handle: (value: Buffer) => Promise<void>, limit: number): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench-raw-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: names.workflowEvents, fromBeginning: true });
  let count = 0;
  let start = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        if (count === 0) start = performance.now();
        if (count >= limit) return;
        await handle(message.value!);
        if (++count === limit) resolve();
      },
    });
  });
  const perSecond = Math.round(limit / ((performance.now() - start) / 1000));
  await consumer.disconnect();
  return perSecond;
}
const rawConsume = await consume(async () => undefined, eventCount);

// (c) The straightforward baseline: one awaited fetch per event.
progress('reference (c): kafkajs eachMessage + fetch baseline…');
const baselineEvents = Math.min(eventCount, 3000);
const registry = new SchemaRegistryClient(registryConnection(cluster));
const baseline = await consume(async (value) => {
  const decoded = await registry.decode(contracts.workflowEvent, value);
  const payload = JSON.stringify({ type: decoded.type, timestamp: new Date(decoded.occurredAt).toISOString(), data: decoded });
  const response = await fetch(receiverUrl, { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } });
  await response.arrayBuffer();
}, baselineEvents);
await receiver.close();

const results = {
  events: eventCount,
  rules: ruleCount,
  deliveries: expected,
  sustainedDeliveriesPerSecond: sustained,
  saturatedLatencyMs: { p50: percentile(saturated, 0.5), p95: percentile(saturated, 0.95), p99: percentile(saturated, 0.99) },
  fixedRate: { eventsPerSecond: rate, seconds: rateSeconds, latencyMs: { p50: percentile(fixed, 0.5), p95: percentile(fixed, 0.95), p99: percentile(fixed, 0.99) } },
  cpuCores: cpu,
  peakRssMB,
  references: { rawPostPerSecond: rawPost, rawConsumePerSecond: rawConsume, baselineDeliveriesPerSecond: baseline },
  ratios: { ofRawPost: Number((sustained / rawPost).toFixed(2)), ofBaseline: Number((sustained / baseline).toFixed(1)) },
};
console.log(`
sustained deliveries/s          ${sustained}   (${expected} deliveries in ${seconds.toFixed(1)} s)
latency under backlog p50/p95/p99   ${results.saturatedLatencyMs.p50} / ${results.saturatedLatencyMs.p95} / ${results.saturatedLatencyMs.p99} ms
latency at ${rate} events/s p50/p95/p99  ${results.fixedRate.latencyMs.p50} / ${results.fixedRate.latencyMs.p95} / ${results.fixedRate.latencyMs.p99} ms
CPU (cores, sustained run)        ${Object.entries(cpu).map(([name, cores]) => `${name} ${cores}`).join(' · ')}
peak RSS (MB)                     ${Object.entries(peakRssMB).map(([name, mb]) => `${name} ${mb}`).join(' · ')}
(a) raw POST rate (autocannon)    ${rawPost}/s   → pipeline = ${results.ratios.ofRawPost} × raw POST
(b) raw consume rate              ${rawConsume} events/s
(c) eachMessage + fetch baseline  ${baseline}/s   → pipeline = ${results.ratios.ofBaseline} × baseline
wrote ${await writeResults('e2e', results)}`);
await removeRun(cluster);
process.exit(0);
