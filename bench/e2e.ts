/**
 * npm run bench — end to end: workflow events → matcher → dispatcher(s) → local receivers, on the real stack (started
 * or reused). Reports sustained deliveries/s, event→POST latency (the event time travels in the payload), CPU per
 * delivery and RSS per process (services, broker, registry, this benchmark), a fixed-rate latency run, and in the same
 * run the references the figures are judged against:
 *   (a) the raw POST rate autocannon gets from the same receiver;
 *   (b) the raw consume rate of the events topic;
 *   (c) a baseline kafkajs eachMessage loop that POSTs each event with fetch and awaits it;
 *   (d) the floor: CPU per request of a minimal undici loop POSTing pre-rendered, pre-signed bodies at the dispatcher's
 *       per-endpoint concurrency, kafkajs's CPU per record to consume and to produce in batches, and the dispatcher's
 *       own work per delivery without I/O (bench/floor.ts, each in a process of its own). Their sum is the least a
 *       dispatcher built from these libraries can spend per delivery. Beside kafkajs, @platformatic/kafka consumes the
 *       same records and produces the same batches, for the Kafka client's future (measured, not used).
 * After the fixed rate it measures each service idle (CPU ms per second with nothing to do).
 * It also adds up every process's CPU per delivery (the broker's and registry's when the run owns them) into the
 * fastest the whole pipeline could go on this machine's cores.
 * Options: --events 20000 --rules 2 --rate 1000 --rate-seconds 10 --dispatchers 1 [--endpoints N --endpoint-latency
 * 100ms] [--profile DIR]. With --endpoints, a second sustained phase spreads the same load over N receivers that
 * answer after --endpoint-latency, 1 % of them with 500, beside the single fast endpoint's phase of the same run.
 * Writes bench/results/e2e.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { contracts } from '../schemas/index.ts';
import { loadConfig } from '../services/common/config.ts';
import { parseDuration } from '../services/common/duration.ts';
import { dispatcherSettings } from '../services/dispatcher/main.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import { parseCommandLine } from '../services/common/cli.ts';
import { progressLine } from '../services/common/progress.ts';
import { benchEvent, benchRule } from './workload.ts';
import { benchCluster, floor, metric, produceFloor, percentile, ProcessMeter, progress, removeRun, stackPids, startReceiver, startService, type BenchReceiver, type ServiceProcess, writeResults } from './support.ts';

const USAGE = `
usage: npm run bench -- [--events 20000] [--rules 2] [--rate 1000] [--rate-seconds 10] [--dispatchers 1]
                        [--endpoints N [--endpoint-latency 100ms]] [--profile DIR]

End-to-end throughput, latency and CPU per delivery on the real stack, beside the references and the sender's floor
measured in the same run; writes bench/results/e2e.json (docs/benchmarks.md).
`;
const { values } = parseCommandLine({ options: {
  help: { type: 'boolean', short: 'h' },
  events: { type: 'string', default: '20000' },
  rules: { type: 'string', default: '2' },
  rate: { type: 'string', default: '1000' },
  'rate-seconds': { type: 'string', default: '10' },
  // Dispatcher processes sharing the work (one consumer group), as one scales the dispatcher out.
  dispatchers: { type: 'string', default: '1' },
  endpoints: { type: 'string', default: '0' },
  'endpoint-latency': { type: 'string', default: '100ms' },
  // Writes a V8 CPU profile of each service process into this directory (open in Chrome DevTools).
  profile: { type: 'string' },
} }, USAGE);
const eventCount = Number(values.events);
const ruleCount = Number(values.rules);
const rate = Number(values.rate);
const rateSeconds = Number(values['rate-seconds']);
const dispatcherCount = Number(values.dispatchers);
const endpointCount = Number(values.endpoints);
const endpointLatencyMs = parseDuration(values['endpoint-latency']!);
/** The dispatcher's default connections per endpoint: the floor sends at the same concurrency. */
const PER_ENDPOINT = loadConfig({ DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT: dispatcherSettings.DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT }, {}).DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT;
const logger = createLogger('bench', 'warn');

// The receiver records how long after the event each POST arrived (the event time is the payload's timestamp).
let latencies: number[] = [];
const receiver = await startReceiver({
  onBody(body) {
    const timestamp = Date.parse(/"timestamp":"([^"]+)"/.exec(body.toString())?.[1] ?? '');
    if (!Number.isNaN(timestamp)) latencies.push(Date.now() - timestamp);
  },
});
// Slow endpoints, as real ones are: each answers after the latency, every hundredth request with 500.
const slowReceivers: BenchReceiver[] = [];
for (let index = 0; index < endpointCount; index += 1) slowReceivers.push(await startReceiver({ delayMs: endpointLatencyMs, failEvery: 100 }));

const cluster = { ...(await benchCluster('e2e')), RETRY_SCHEDULE: [5000] };
await prepareCluster(cluster, logger);
const names = topicNames(cluster.TOPIC_PREFIX);
const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'bench', logger });
const writer = await RuleWriter.create(kafka, new SchemaRegistryClient(registryConnection(cluster)), names.eventRules);
const secret = `whsec_${randomBytes(32).toString('base64')}`;
// Every event matches `ruleCount` rules. The many-endpoint phase's rules are scoped to one workflow each, so event i
// goes to endpoint i mod N and the load is the same as the single endpoint's.
const FAST_APP = 'bench-app';
const MANY_APP = 'bench-many';
await writer.put(...Array.from({ length: ruleCount }, (_, index) => benchRule(`bench-${index}`, FAST_APP, receiver.url, secret)));
for (let endpoint = 0; endpoint < endpointCount; endpoint += 1) {
  await writer.put(...Array.from({ length: ruleCount }, (_, index) => benchRule(`many-${endpoint}-${index}`, MANY_APP, slowReceivers[endpoint]!.url, secret, { kind: 'workflows', ids: [`wf-${endpoint}`] })));
}
await writer.close();

const event = (index: number, application = FAST_APP) => benchEvent(index, application, application === FAST_APP ? 'wf' : `wf-${index % endpointCount}`);

progress(`starting the matcher and ${dispatcherCount} dispatcher process(es)…`);
const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
const services: Record<string, ServiceProcess> = { matcher: await startService('matcher', cluster, { nodeArgs }) };
const dispatcherNames: string[] = [];
for (let index = 1; index <= dispatcherCount; index += 1) {
  const name = dispatcherCount === 1 ? 'dispatcher' : `dispatcher-${index}`;
  dispatcherNames.push(name);
  services[name] = await startService('dispatcher', cluster, { nodeArgs });
}
const meter = new ProcessMeter({ bench: process.pid, ...Object.fromEntries(Object.entries(services).map(([name, { child }]) => [name, child.pid!])), ...(await stackPids()) });
const publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger, maxBatchSize: 1000 });
const expected = eventCount * ruleCount;

/** Deliveries each dispatcher recorded as delivered so far, from its /metrics. */
async function deliveredBy(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const name of dispatcherNames) {
    const page = await fetch(`http://127.0.0.1:${services[name]!.port}/metrics`).then((response) => response.text());
    counts[name] = metric(page, 'dispatcher_attempts_total', { outcome: 'delivered' });
  }
  return counts;
}

/** A backlog of events, delivered as fast as the pipeline goes; answered requests are counted at the receivers. */
async function sustained(label: string, application: string, answered: () => number) {
  progress(`${label}: publishing ${eventCount} events × ${ruleCount} rules = ${expected} deliveries…`);
  const start = answered();
  const deliveredBefore = await deliveredBy();
  const began = performance.now();
  meter.mark();
  latencies = [];
  for (let index = 0; index < eventCount; index += 1000) {
    await publisher.publish(Array.from({ length: Math.min(1000, eventCount - index) }, (_, offset) => event(index + offset, application)));
  }
  const line = progressLine();
  while (answered() - start < expected) {
    await sleep(200);
    line.update(`bench › ${label}: ${answered() - start}/${expected} answered`);
  }
  line.done();
  const seconds = (performance.now() - began) / 1000;
  const cpuSeconds = meter.cpuSeconds();
  const cpuMicrosPerDelivery = Object.fromEntries(Object.entries(cpuSeconds).map(([name, cpu]) => [name, Math.round((cpu * 1e6) / expected)]));
  const deliveredAfter = await deliveredBy();
  const shares = Object.fromEntries(dispatcherNames.map((name) => [name, deliveredAfter[name]! - deliveredBefore[name]!]));
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    deliveriesPerSecond: Math.round(expected / seconds),
    seconds: Number(seconds.toFixed(1)),
    cpuCores: meter.cores(),
    cpuMicrosPerDelivery,
    dispatcherShares: shares,
    latencyMs: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) },
  };
}

// 1. Sustained throughput to one fast endpoint.
const fast = await sustained('one fast endpoint', FAST_APP, () => receiver.received);
// 1b. The same load over many slow endpoints.
const many = endpointCount > 0
  ? await sustained(`${endpointCount} endpoints at ${endpointLatencyMs} ms`, MANY_APP, () => slowReceivers.reduce((sum, slow) => sum + slow.received, 0))
  : undefined;

// 2. Latency at a fixed event rate.
progress(`fixed rate: ${rate} events/s for ${rateSeconds} s…`);
latencies = [];
const before = receiver.received;
meter.mark();
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
// At a moderate rate, fetches and produce requests carry a few records each: their fixed cost shows here.
const fixedMicrosPerDelivery = Object.fromEntries(Object.entries(meter.cpuSeconds()).map(([name, cpu]) => [name, Math.round((cpu * 1e6) / (ticks * perTick * ruleCount))]));

// 3. Idle: what the services spend with nothing to do (timers, heartbeats, fetches that come back empty).
const IDLE_SECONDS = 10;
progress(`idle: ${IDLE_SECONDS} s with no events…`);
await sleep(1000);
meter.mark();
await sleep(IDLE_SECONDS * 1000);
const idleCpuMsPerSecond = Object.fromEntries(Object.entries(meter.cpuSeconds()).filter(([name]) => name in services).map(([name, cpu]) => [name, Number(((cpu * 1000) / IDLE_SECONDS).toFixed(1))]));
const peakRssMB = meter.peakRssMB();
meter.stop();
await publisher.close();
for (const { child } of Object.values(services)) child.kill('SIGTERM');
await Promise.all(Object.values(services).map(({ child }) => new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)))));

// (a) The receiver's raw POST rate.
progress('reference (a): autocannon against the receiver…');
const body = JSON.stringify({ type: 'task.completed', timestamp: new Date().toISOString(), data: event(0) });
const cannon = await autocannon({ url: receiver.url, method: 'POST', body, headers: { 'content-type': 'application/json' }, connections: 50, duration: 5 });
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
  const response = await fetch(receiver.url, { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } });
  await response.arrayBuffer();
}, baselineEvents);

// (d) The floor, each part in a process of its own so its CPU is its own.
progress('reference (d): the floor — undici POST loop, kafkajs consume and produce…');
const floorPost = await floor(cluster, 'post', '--url', receiver.url, '--requests', String(Math.min(expected, 20000)), '--connections', String(PER_ENDPOINT));
const floorConsume = await floor(cluster, 'consume', '--topic', names.workflowEvents, '--records', String(eventCount));
const floorProduce = await produceFloor(cluster, Math.min(expected, 20000));
const floorWork = await floor(cluster, 'work', '--records', String(Math.min(expected, 20000)));
progress('reference (d): @platformatic/kafka consume and produce, the same records…');
const platformaticConsume = await floor(cluster, 'consume', '--topic', names.workflowEvents, '--records', String(eventCount), '--client', 'platformatic');
const platformaticProduce = await produceFloor(cluster, Math.min(expected, 20000), 'platformatic');
await Promise.all([receiver.close(), ...slowReceivers.map((slow) => slow.close())]);

const dispatcherMicros = dispatcherNames.reduce((sum, name) => sum + fast.cpuMicrosPerDelivery[name]!, 0);
// The least a dispatcher built from these libraries can spend per delivery: send (undici), consume the command and
// produce its log record (kafkajs), and its own decode, render, sign and encode with no I/O around them.
const lowerBoundMicros = floorPost.cpuMicrosPerUnit + floorConsume.cpuMicrosPerUnit + floorProduce.cpuMicrosPerUnit + floorWork.cpuMicrosPerUnit;
// Every process of the run, the broker and registry included when this run owns them: on this machine's cores, the
// pipeline cannot go faster than its whole CPU per delivery allows.
const cores = availableParallelism();
const wholeMicros = Object.values(fast.cpuMicrosPerDelivery).reduce((sum, micros) => sum + micros, 0);
const measuredBroker = 'broker' in fast.cpuMicrosPerDelivery;
const ceiling = Math.round((cores * 1e6) / wholeMicros);
const results = {
  events: eventCount,
  rules: ruleCount,
  deliveries: expected,
  dispatchers: dispatcherCount,
  sustainedDeliveriesPerSecond: fast.deliveriesPerSecond,
  sustained: fast,
  ...(many ? { manyEndpoints: { endpoints: endpointCount, endpointLatencyMs, failing: '1 %', ...many } } : {}),
  saturatedLatencyMs: fast.latencyMs,
  fixedRate: { eventsPerSecond: rate, seconds: rateSeconds, latencyMs: { p50: percentile(fixed, 0.5), p95: percentile(fixed, 0.95), p99: percentile(fixed, 0.99) }, cpuMicrosPerDelivery: fixedMicrosPerDelivery },
  idleCpuMsPerSecond,
  cpuCores: fast.cpuCores,
  peakRssMB,
  references: {
    rawPostPerSecond: rawPost, rawConsumePerSecond: rawConsume, baselineDeliveriesPerSecond: baseline,
    floorMicros: {
      postPerRequest: floorPost.cpuMicrosPerUnit, consumePerRecord: floorConsume.cpuMicrosPerUnit, producePerRecord: floorProduce.cpuMicrosPerUnit,
      dispatcherWorkPerDelivery: floorWork.cpuMicrosPerUnit, dispatcherLowerBound: Number(lowerBoundMicros.toFixed(1)),
      platformaticKafka: { consumePerRecord: platformaticConsume.cpuMicrosPerUnit, producePerRecord: platformaticProduce.cpuMicrosPerUnit },
    },
  },
  wholeRun: { cores, brokerMeasured: measuredBroker, cpuMicrosPerDelivery: wholeMicros, ceilingDeliveriesPerSecond: ceiling },
  ratios: {
    ofRawPost: Number((fast.deliveriesPerSecond / rawPost).toFixed(2)),
    ofBaseline: Number((fast.deliveriesPerSecond / baseline).toFixed(1)),
    dispatcherCpuOfFloor: Number((dispatcherMicros / floorPost.cpuMicrosPerUnit).toFixed(2)),
    dispatcherLowerBoundOfFloor: Number((lowerBoundMicros / floorPost.cpuMicrosPerUnit).toFixed(2)),
    dispatcherCpuOfLowerBound: Number((dispatcherMicros / lowerBoundMicros).toFixed(2)),
    ceilingOfRawPost: Number((ceiling / rawPost).toFixed(2)),
    platformaticOfKafkajs: {
      consume: Number((platformaticConsume.cpuMicrosPerUnit / floorConsume.cpuMicrosPerUnit).toFixed(2)),
      produce: Number((platformaticProduce.cpuMicrosPerUnit / floorProduce.cpuMicrosPerUnit).toFixed(2)),
    },
    ...(many ? { manyEndpointsOfFast: Number((many.deliveriesPerSecond / fast.deliveriesPerSecond).toFixed(2)) } : {}),
  },
};
const byProcess = (figures: Record<string, number>) => Object.entries(figures).map(([name, each]) => `${name} ${each}`).join(' · ');
console.log(`
sustained deliveries/s          ${fast.deliveriesPerSecond}   (${expected} deliveries in ${fast.seconds} s, ${dispatcherCount} dispatcher(s))
latency under backlog p50/p95/p99   ${fast.latencyMs.p50} / ${fast.latencyMs.p95} / ${fast.latencyMs.p99} ms
latency at ${rate} events/s p50/p95/p99  ${results.fixedRate.latencyMs.p50} / ${results.fixedRate.latencyMs.p95} / ${results.fixedRate.latencyMs.p99} ms
  CPU µs per delivery at that rate  ${byProcess(fixedMicrosPerDelivery)}
idle, CPU ms per second           ${byProcess(idleCpuMsPerSecond)}
CPU (cores, sustained run)        ${Object.entries(fast.cpuCores).map(([name, cores]) => `${name} ${cores}`).join(' · ')}
CPU µs per delivery               ${byProcess(fast.cpuMicrosPerDelivery)}
  dispatcher ÷ undici floor       ${results.ratios.dispatcherCpuOfFloor} × (${dispatcherMicros} µs vs ${floorPost.cpuMicrosPerUnit} µs per request)
  least it could be              ${results.ratios.dispatcherLowerBoundOfFloor} × (${lowerBoundMicros.toFixed(1)} µs: the floors (d) plus its own work without I/O)
  dispatcher ÷ least              ${results.ratios.dispatcherCpuOfLowerBound} ×
  matcher per command             ${fast.cpuMicrosPerDelivery.matcher} µs (${fast.cpuMicrosPerDelivery.matcher! * ruleCount} µs per event at ${ruleCount} rules)
${dispatcherCount > 1 ? `dispatcher shares                 ${Object.entries(fast.dispatcherShares).map(([name, count]) => `${name} ${((100 * count) / expected).toFixed(0)} %`).join(' · ')}\n` : ''}\
${many ? `${endpointCount} endpoints at ${endpointLatencyMs} ms   ${many.deliveriesPerSecond} answered/s → ${results.ratios.manyEndpointsOfFast} × one fast endpoint; CPU µs per delivery ${byProcess(many.cpuMicrosPerDelivery)}\n` : ''}\
peak RSS (MB)                     ${Object.entries(peakRssMB).map(([name, mb]) => `${name} ${mb}`).join(' · ')}
(a) raw POST rate (autocannon)    ${rawPost}/s   → pipeline = ${results.ratios.ofRawPost} × raw POST
  whole run's CPU per delivery    ${wholeMicros} µs${measuredBroker ? '' : ' (broker and registry not measured: not this run\'s)'} → at most ${ceiling}/s on ${cores} cores = ${results.ratios.ceilingOfRawPost} × raw POST
(b) raw consume rate              ${rawConsume} events/s
(c) eachMessage + fetch baseline  ${baseline}/s   → pipeline = ${results.ratios.ofBaseline} × baseline
(d) floor, CPU µs                 undici POST ${floorPost.cpuMicrosPerUnit} per request · kafkajs consume ${floorConsume.cpuMicrosPerUnit} · produce ${floorProduce.cpuMicrosPerUnit} per record · dispatcher's own work ${floorWork.cpuMicrosPerUnit} per delivery
  @platformatic/kafka, CPU µs     consume ${platformaticConsume.cpuMicrosPerUnit} · produce ${platformaticProduce.cpuMicrosPerUnit} per record → ${results.ratios.platformaticOfKafkajs.consume} × · ${results.ratios.platformaticOfKafkajs.produce} × kafkajs's
wrote ${await writeResults('e2e', results)}`);
await removeRun(cluster);
process.exit(0);
