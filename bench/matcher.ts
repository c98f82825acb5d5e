/**
 * npm run bench:matcher — matcher throughput and memory against 10, 10k and 100k rules: the rules table's bootstrap
 * time, events/s, peak RSS (the kernel's high-water mark, so the bootstrap and short spikes count) and the heap right
 * after the bootstrap. The matcher runs as its own process (as in production) on the real stack; each event matches
 * the same 3 rules whatever the rule count, so the figures show what the rule count alone costs.
 * Options: --events N (default 30000), --rules 10,10000,100000 (1000000 works too: rules are written 10,000 a
 * request), --node-arg X (repeatable: a Node option for the matcher process, e.g. --cpu-prof).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventRuleInput, WorkflowEventInput } from '../schemas/index.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import { freePort } from '../stack/ports.ts';
import { benchCluster, metric, progress, removeRun, serviceEnv, writeResults } from './support.ts';
import { parseCommandLine } from '../services/common/cli.ts';

const USAGE = `
usage: npm run bench:matcher -- [--events 30000] [--rules 10,10000,100000] [--node-arg ARG ...]

Matcher throughput, memory and rules-table bootstrap per rule count; writes bench/results/matcher.json (docs/benchmarks.md).
--node-arg passes an argument to the matcher's Node (e.g. --node-arg=--cpu-prof --node-arg=--cpu-prof-dir=/tmp/prof).
`;
const { values } = parseCommandLine({ options: {
  help: { type: 'boolean', short: 'h' },
  events: { type: 'string', default: '30000' },
  rules: { type: 'string', default: '10,10000,100000' },
  // Profiles the matcher, not the bench.
  'node-arg': { type: 'string', multiple: true, default: [] },
} }, USAGE);
const eventCount = Number(values.events);
const ruleCounts = values.rules!.split(',').map(Number);
const logger = createLogger('bench', 'warn');
const matcherScript = new URL('../services/matcher/main.ts', import.meta.url).pathname;
const RULES_PER_REQUEST = 10_000;
const secret = `whsec_${randomBytes(32).toString('base64')}`;

function ruleSet(count: number): Array<Omit<EventRuleInput, 'updatedAt'>> {
  const base = { enabled: true, url: 'http://127.0.0.1:9/bench', secrets: [{ secret, notAfter: null }], eventTypes: null, name: 'bench' };
  // Three rules match every bench event; the rest belong to other applications, workflows and pipelines.
  const matching: Array<Omit<EventRuleInput, 'updatedAt'>> = [
    { ...base, id: 'hot-everything', application: 'hot-app', scope: { kind: 'everything', ids: null } },
    { ...base, id: 'hot-workflow', application: 'hot-app', scope: { kind: 'workflows', ids: ['hot-workflow'] } },
    { ...base, id: 'hot-type', application: 'hot-app', scope: { kind: 'workflows', ids: null }, eventTypes: ['task_completed'] },
  ];
  const cold = Array.from({ length: Math.max(0, count - matching.length) }, (_, index): Omit<EventRuleInput, 'updatedAt'> => {
    const kinds = ['everything', 'workflows', 'pipelines'] as const;
    const kind = kinds[index % 3]!;
    return {
      ...base,
      id: `cold-${index}`,
      application: index % 2 ? `app-${index % 1000}` : 'hot-app',
      // Cold rules of the hot application are scoped to other workflows or pipelines, so they never match.
      scope: kind === 'everything' && index % 2 === 0 ? { kind: 'workflows', ids: [`wf-${index}`] } : { kind, ids: kind === 'everything' ? null : [`id-${index}`] },
    };
  });
  return [...matching, ...cold];
}

const event = (index: number): WorkflowEventInput => ({
  eventId: `bench-${index}`,
  type: 'task_completed',
  occurredAt: Date.now(),
  application: { id: 'hot-app' },
  workflow: { id: 'hot-workflow' },
  workflowExecutionId: `run-${index % 500}`,
  task: { id: 'task', runId: `taskrun-${index}` },
});

/** A process's peak resident set so far (VmHWM), in bytes. */
function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status: peak RSS needs Linux's procfs`);
  return Number(match[1]) * 1024;
}

async function scrape(port: number): Promise<string | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
  return response?.ok ? response.text() : undefined;
}

const results = [];
for (const ruleCount of ruleCounts) {
  const cluster = await benchCluster(`matcher-${ruleCount}`);
  await prepareCluster(cluster, logger);
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'bench', logger });
  const writer = await RuleWriter.create(kafka, new SchemaRegistryClient(registryConnection(cluster)), topicNames(cluster.TOPIC_PREFIX).eventRules);
  const rules = ruleSet(ruleCount);
  progress(`${ruleCount} rules: writing rules…`);
  const writeStarted = performance.now();
  // 10,000 rules a produce request (about 2 MB, well under message.max.bytes per partition's batch): a million in minutes.
  for (let index = 0; index < rules.length; index += RULES_PER_REQUEST) {
    await writer.put(...rules.slice(index, index + RULES_PER_REQUEST));
    const written = Math.min(rules.length, index + RULES_PER_REQUEST);
    if (written % 100_000 === 0 || written === rules.length) progress(`${ruleCount} rules: ${written} written (${((performance.now() - writeStarted) / 1000).toFixed(1)} s)`);
  }
  await writer.close();
  progress(`${ruleCount} rules: publishing ${eventCount} events…`);
  const publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger, maxBatchSize: 1000 });
  for (let index = 0; index < eventCount; index += 1000) {
    await publisher.publish(Array.from({ length: Math.min(1000, eventCount - index) }, (_, offset) => event(index + offset)));
  }
  await publisher.close();

  const port = await freePort();
  const began = performance.now();
  const child = spawn(process.execPath, [...values['node-arg']!, matcherScript], { env: { ...serviceEnv(cluster), MATCHER_HTTP_PORT: String(port), MATCHER_GROUP_ID: `${cluster.TOPIC_PREFIX}matcher` }, stdio: ['ignore', 'ignore', 'inherit'] });
  let readyAt: number | undefined;
  while (readyAt === undefined) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false);
    if (ready) readyAt = performance.now();
    else await sleep(20);
  }
  const bootstrapMs = readyAt - began;
  progress(`${ruleCount} rules: ready after ${(bootstrapMs / 1000).toFixed(2)} s; matching…`);
  const MB = (bytes: number) => Math.round(bytes / 2 ** 20);
  let page = (await scrape(port)) ?? '';
  // What the rules cost once loaded: the heap in use and the heap V8 reserved, right after the bootstrap.
  const atReady = { heapUsedMB: MB(metric(page, 'nodejs_heap_size_used_bytes')), heapTotalMB: MB(metric(page, 'nodejs_heap_size_total_bytes')) };
  for (;;) {
    page = (await scrape(port)) ?? page;
    // Every bench event matches exactly three rules: done when all their commands are written.
    if (metric(page, 'matcher_commands_out_total') >= 3 * eventCount) break;
    await sleep(50);
  }
  const matchSeconds = (performance.now() - readyAt) / 1000;
  // The kernel's high-water mark covers the bootstrap and every short spike, which sampling would miss.
  const peakRss = peakRssBytes(child.pid!);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  const result = {
    rules: ruleCount,
    events: eventCount,
    commands: metric(page, 'matcher_commands_out_total'),
    bootstrapSeconds: Number((bootstrapMs / 1000).toFixed(2)),
    eventsPerSecond: Math.round(eventCount / matchSeconds),
    peakRssMB: MB(peakRss),
    ...atReady,
    atEnd: { heapTotalMB: MB(metric(page, 'nodejs_heap_size_total_bytes')), externalMB: MB(metric(page, 'nodejs_external_memory_bytes')) },
  };
  progress(`${ruleCount} rules: ${result.eventsPerSecond} events/s, peak RSS ${result.peakRssMB} MB; heap after bootstrap ${result.heapUsedMB} MB used of ${result.heapTotalMB} MB`);
  results.push(result);
  await removeRun(cluster);
}

const base = results[0]!.eventsPerSecond;
console.log('\nrules     bootstrap   events/s   vs first   peak RSS   heap at ready   commands');
for (const r of results) {
  console.log(`${String(r.rules).padEnd(9)} ${`${r.bootstrapSeconds} s`.padEnd(11)} ${String(r.eventsPerSecond).padEnd(10)} ${`${((r.eventsPerSecond / base) * 100).toFixed(0)}%`.padEnd(10)} ${`${r.peakRssMB} MB`.padEnd(10)} ${`${r.heapUsedMB}/${r.heapTotalMB} MB`.padEnd(15)} ${r.commands}`);
}
console.log(`\nwrote ${await writeResults('matcher', results)}`);
