/**
 * `npm run bench:history`: the console's delivery history at the size weeks of traffic make. 5,000,000 attempts
 * (`--attempts`) spread over the last 7 days go onto the delivery-log topic, then into a console process on each
 * backend (`--backend sqlite|postgres|both`; PostgreSQL is Debian's, started here with fsync on), which stores them
 * as it would in production. Measured per backend: ingest rate (attempts/s from the console's start to the last one
 * stored), p99 of every query the logs page, the endpoint view and the overview make (through the console's API)
 * right after the load and again once the backend's own upkeep after it has ended (PostgreSQL's autovacuum), how long
 * a restarted console takes to be ready with the full history, the console's peak RSS over all of it (and in each of
 * those phases), and disk bytes per attempt. Goals: ingest ≥ 3 × the sustained deliveries/s of `npm run bench` on
 * the same machine (read from its bench/results/e2e.json), every query p99 ≤ 50 ms, ready ≤ 5 s after a restart,
 * peak RSS ≤ 300 MB.
 * Writes bench/results/history.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { contracts, EVENT_TYPES, type DeliveryLog, type DeliveryOutcome } from '../schemas/index.ts';
import { parseCommandLine, USAGE_EXIT_CODE } from '../services/common/cli.ts';
import { createKafka, createProducer, kafkaConnection } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { progressLine } from '../services/common/progress.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { CONSOLE_NODE_FLAGS } from '../services/console/node-flags.ts';
import { freePort } from '../stack/ports.ts';
import { startPostgres, type Postgres } from '../stack/postgres.ts';
import { benchCluster, percentile, ProcessMeter, progress, removeRun, serviceEnv, writeResults } from './support.ts';

const USAGE = `
usage: npm run bench:history -- [--attempts 5000000] [--backend both|sqlite|postgres] [--samples 100]

The console's delivery history at scale, per backend: ingest rate, p99 of every query, restart-to-ready, peak RSS
and disk per attempt, against the goals; writes bench/results/history.json (docs/benchmarks.md).
`;
const { values: args } = parseCommandLine({ options: {
  help: { type: 'boolean', short: 'h' },
  attempts: { type: 'string', default: '5000000' },
  backend: { type: 'string', default: 'both' },
  // Timed requests per query (after one untimed).
  samples: { type: 'string', default: '100' },
} }, USAGE);
const ATTEMPTS = Number(args.attempts);
const SAMPLES = Number(args.samples);
const BACKENDS = args.backend === 'both' ? ['sqlite', 'postgres'] as const : [args.backend as 'sqlite' | 'postgres'];
const refuse = (message: string): never => {
  process.stderr.write(`error: ${message}; see --help\n`);
  return process.exit(USAGE_EXIT_CODE);
};
if (!Number.isInteger(ATTEMPTS) || ATTEMPTS < 1000) refuse('--attempts: must be a whole number, at least 1000');
if (!BACKENDS.every((backend) => backend === 'sqlite' || backend === 'postgres')) refuse('--backend: must be sqlite, postgres or both');
if (!Number.isInteger(SAMPLES) || SAMPLES < 1) refuse('--samples: must be a whole number, at least 1');

const GOALS = { ingestOfDeliveries: 3, queryP99Ms: 50, restartReadyMs: 5000, peakRssMB: 300 };
const TOKEN = 'bench-history-token-0123456789abcdef';
const DAY = 86_400_000;
const RULES = 200;
const URLS = 60;
const APPS = ['prod', 'qa', 'staging'];
const now = Date.now();
const span = 7 * DAY;
const body = JSON.stringify({ type: 'workflow.completed', timestamp: new Date(now).toISOString(), data: { workflowId: 'deploy-service', runId: 'x'.repeat(420), status: 'completed', tags: ['prod', 'eu-west-1'] } });

/** Attempt `index` of the workload: most delivered, some retried, deferred, failed, dead-lettered or skipped. */
function attempt(index: number): DeliveryLog {
  const roll = (index * 7919) % 100;
  const outcome: DeliveryOutcome = roll < 88 ? 'delivered' : roll < 91 ? 'retrying' : roll < 94 ? 'retrying' : roll < 95 ? 'failed' : roll < 97 ? 'dead_lettered' : 'skipped';
  const deferred = roll >= 91 && roll < 94;
  const sent = outcome !== 'skipped' && !deferred;
  const rule = index % RULES;
  const status = !sent ? null : outcome === 'delivered' ? 200 : roll % 2 ? 503 : 429;
  return {
    deliveryId: `msg_${index.toString(36).padStart(8, '0')}`, attempt: 1 + (index % 3 === 0 ? 1 : 0), ruleId: `rule-${rule}`, ruleName: `Rule ${rule}`, application: APPS[rule % 3]!,
    eventId: `evt-${APPS[index % 3]}-${index}`, eventType: EVENT_TYPES[index % EVENT_TYPES.length]!, url: `http://127.0.0.1:9/hooks/${rule % URLS}`,
    outcome, httpStatus: status, error: status === 200 ? null : deferred ? 'circuit breaker open for the endpoint' : status ? `HTTP ${status}` : null,
    latencyMs: sent ? 2 + ((index * 104729) % 400) : null, attemptedAt: now - span + Math.floor((index / ATTEMPTS) * span), nextAttemptAt: null, pool: 'default',
    deferral: deferred ? 'breaker_open' : null, traceId: null,
    request: sent ? { headers: { 'content-type': 'application/json', 'webhook-id': `msg_${index}`, 'webhook-signature': 'v1,••••' }, body, bodyTruncated: false, bodyBytes: body.length, bodySha256: null } : null,
    response: sent ? { headers: { 'content-type': 'text/plain' }, body: status === 200 ? 'ok' : 'busy', bodyTruncated: false, bodyBytes: 2, bodySha256: null } : null,
  };
}

const cluster = await benchCluster('history');
const names = topicNames(cluster.TOPIC_PREFIX);
const logger = createLogger('bench', 'warn');
await prepareCluster(cluster, logger);

async function fillTopic(): Promise<void> {
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'bench-history', logger });
  const codec = await new SchemaRegistryClient(registryConnection(cluster)).codec(`${names.deliveryLog}-value`, contracts.deliveryLog);
  const producer = createProducer(kafka);
  await producer.connect();
  const line = progressLine();
  const started = performance.now();
  const BATCH = 2000;
  let sent = 0;
  const send = async (from: number) => {
    const messages = [];
    for (let index = from; index < Math.min(ATTEMPTS, from + BATCH); index += 1) {
      const entry = attempt(index);
      messages.push({ key: entry.deliveryId, value: codec.encode(entry) });
    }
    await producer.send({ topic: names.deliveryLog, messages });
    sent += messages.length;
    line.update(`bench › the delivery log: ${sent.toLocaleString()} / ${ATTEMPTS.toLocaleString()} attempts (${Math.round(sent / ((performance.now() - started) / 1000)).toLocaleString()}/s)`);
  };
  // A few sends in flight keep the broker busy while the next batch is encoded.
  for (let from = 0; from < ATTEMPTS; from += BATCH * 4) await Promise.all([0, 1, 2, 3].map((step) => from + step * BATCH).filter((start) => start < ATTEMPTS).map(send));
  line.done();
  await producer.disconnect();
}

interface ConsoleProcess {
  child: ChildProcess;
  url: string;
  api<T>(path: string): Promise<T>;
}

async function startConsole(env: NodeJS.ProcessEnv): Promise<ConsoleProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...CONSOLE_NODE_FLAGS, fileURLToPath(new URL('../services/console/main.ts', import.meta.url))], {
    env: { ...serviceEnv(cluster), CONSOLE_HTTP_PORT: String(port), CONSOLE_TOKEN: TOKEN, CONSOLE_GROUP_ID: `${cluster.TOPIC_PREFIX}console`, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
    return response.json() as Promise<T>;
  };
  return { child, url, api };
}

const stopConsole = async ({ child }: ConsoleProcess) => {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
};

/** Until the console answers /readyz with 200 and its history holds `attempts`; ms from `startedAt`. */
async function readyWith(console_: ConsoleProcess, attempts: number, startedAt: number, onProgress?: (held: number) => void): Promise<number> {
  for (;;) {
    if (console_.child.exitCode !== null) throw new Error('the console exited (its errors are above)');
    const ready = await fetch(`${console_.url}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((response) => response.ok, () => false);
    if (ready) {
      const { history } = await console_.api<{ history: { attempts: number } }>('/api/logs?limit=1');
      onProgress?.(history.attempts);
      if (history.attempts >= attempts) return performance.now() - startedAt;
    }
    await sleep(onProgress ? 1000 : 25);
  }
}

type LogPage = { entries: DeliveryLog[]; next: string | null };

/** Each query the logs page, the endpoint view and the overview make, as the console's API answers it. */
function queries(): Record<string, () => string> {
  const random = (below: number) => Math.floor(Math.random() * below);
  const some = () => attempt(random(ATTEMPTS));
  const hour = () => now - span + random(span - 3_600_000);
  return {
    newest: () => '/api/logs?limit=100',
    eventId: () => `/api/logs?limit=100&eventId=${some().eventId}`,
    eventIdPrefix: () => `/api/logs?limit=100&eventIdPrefix=evt-qa-${random(1000)}`,
    deliveryId: () => `/api/logs?limit=100&deliveryId=${some().deliveryId}`,
    rule: () => `/api/logs?limit=100&rule=rule-${random(RULES)}`,
    endpoint: () => `/api/logs?limit=100&endpoint=${encodeURIComponent(`http://127.0.0.1:9/hooks/${random(URLS)}`)}`,
    outcome: () => '/api/logs?limit=100&outcome=failed',
    statusClass: () => '/api/logs?limit=100&status=5xx',
    eventType: () => `/api/logs?limit=100&eventType=${EVENT_TYPES[random(EVENT_TYPES.length)]}`,
    timeRange: () => { const since = hour(); return `/api/logs?limit=100&since=${since}&until=${since + 3_600_000}`; },
    ruleFailed: () => `/api/logs?limit=100&rule=rule-${random(RULES)}&outcome=dead_lettered`,
    endpoints: () => '/api/endpoints',
    overview: () => '/api/stats',
  };
}

async function measureQueries(console_: ConsoleProcess): Promise<Record<string, number>> {
  const p99: Record<string, number> = {};
  const time = async (path: string) => {
    const started = performance.now();
    const result = await console_.api<LogPage>(path);
    return { ms: performance.now() - started, result };
  };
  for (const [name, path] of Object.entries(queries())) {
    await time(path()); // its statement prepared, its pages in the cache as a user's second look finds them
    const samples: number[] = [];
    for (let sample = 0; sample < SAMPLES; sample += 1) samples.push((await time(path())).ms);
    p99[name] = Number(percentile(samples.sort((a, b) => a - b), 0.99).toFixed(1));
    progress(`  ${name.padEnd(14)} p99 ${p99[name]} ms`);
  }
  // Older pages: ten pages down from the newest, each a cursor step.
  const pages: number[] = [];
  for (let round = 0; round < Math.ceil(SAMPLES / 10); round += 1) {
    let cursor: string | null = null;
    for (let page = 0; page < 10; page += 1) {
      const { ms, result }: { ms: number; result: LogPage } = await time(`/api/logs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      pages.push(ms);
      cursor = result.next;
    }
  }
  p99.olderPages = Number(percentile(pages.sort((a, b) => a - b), 0.99).toFixed(1));
  progress(`  ${'olderPages'.padEnd(14)} p99 ${p99.olderPages} ms`);
  return p99;
}

async function runBackend(backend: 'sqlite' | 'postgres', postgres: Postgres | undefined) {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-history-'));
  const historyUrl = backend === 'postgres' ? await postgres!.database() : undefined;
  const env = { CONSOLE_DATA_DIR: dataDir, ...(historyUrl ? { CONSOLE_HISTORY_URL: historyUrl } : {}) };
  progress(`${backend}: a console storing ${ATTEMPTS.toLocaleString()} attempts`);
  const started = performance.now();
  let console_ = await startConsole(env);
  // A meter per phase, so the figures say which one reached the peak.
  let meter = new ProcessMeter({ console: console_.child.pid! });
  const peakOf = () => {
    const peak = meter.peakRssMB().console ?? 0;
    meter.stop();
    return peak;
  };
  const line = progressLine();
  const ingestMs = await readyWith(console_, ATTEMPTS, started, (held) => line.update(`bench › ${backend}: ${held.toLocaleString()} / ${ATTEMPTS.toLocaleString()} stored (${Math.round(held / ((performance.now() - started) / 1000)).toLocaleString()}/s)`));
  line.done();
  const ingestPerSecond = Math.round(ATTEMPTS / (ingestMs / 1000));
  const peakRssMBByPhase = { ingest: peakOf(), queries: 0, restart: 0 };
  meter = new ProcessMeter({ console: console_.child.pid! });
  progress(`${backend}: ${ingestPerSecond.toLocaleString()} attempts/s; queries (${SAMPLES} each, p99):`);
  const queryP99Ms = await measureQueries(console_);
  // The same queries once the backend's own upkeep after the bulk load has ended (PostgreSQL's autovacuum and
  // autoanalyze of the attempts table); what a page meets every other time.
  const settledMs = historyUrl ? await untilAtRest(historyUrl) : 0;
  progress(`${backend}: at rest ${Math.round(settledMs / 1000)} s after the last attempt stored; the queries again (p99):`);
  const queryP99MsAtRest = await measureQueries(console_);
  peakRssMBByPhase.queries = peakOf();
  await stopConsole(console_);
  const restartedAt = performance.now();
  console_ = await startConsole(env);
  meter = new ProcessMeter({ console: console_.child.pid! });
  const restartReadyMs = Math.round(await readyWith(console_, ATTEMPTS, restartedAt));
  progress(`${backend}: ready ${restartReadyMs} ms after a restart with the full history`);
  await sleep(2000); // what it holds once it is up and following
  peakRssMBByPhase.restart = peakOf();
  const peakRssMB = Math.max(...Object.values(peakRssMBByPhase));
  await stopConsole(console_);
  const diskBytes = backend === 'sqlite' ? ['', '-wal'].map((suffix) => join(dataDir, `history.sqlite${suffix}`)).filter(existsSync).reduce((sum, file) => sum + statSync(file).size, 0) : await databaseBytes(historyUrl!);
  await rm(dataDir, { recursive: true, force: true });
  return { backend, attempts: ATTEMPTS, ingestPerSecond, queryP99Ms, settledMs: Math.round(settledMs), queryP99MsAtRest, restartReadyMs, peakRssMB, peakRssMBByPhase, diskBytesPerAttempt: Math.round(diskBytes / ATTEMPTS) };
}

/**
 * Waits (up to 10 minutes) until autovacuum has caught up with the load — fewer rows inserted since the attempts
 * table's last vacuum than it waits for (1 %, autovacuum_vacuum_insert_scale_factor) and no autovacuum worker in
 * the database — for 10 s; how long it waited.
 */
async function untilAtRest(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  try {
    let quietSince = performance.now();
    while (performance.now() - quietSince < 10_000 && performance.now() - started < 600_000) {
      const { rows } = await client.query<{ busy: string; behind: boolean }>(`SELECT
        (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'autovacuum worker') AS busy,
        (SELECT n_ins_since_vacuum > greatest(1000, n_live_tup / 100) FROM pg_stat_user_tables WHERE relname = 'attempts') AS behind`);
      if (Number(rows[0]!.busy) > 0 || rows[0]!.behind) quietSince = performance.now();
      await sleep(500);
    }
    return performance.now() - started - 10_000;
  } finally {
    await client.end();
  }
}

async function databaseBytes(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes')).rows[0]!.bytes);
  } finally {
    await client.end();
  }
}

/** `npm run bench`'s sustained deliveries/s on this machine, if it has run here. */
function sustainedDeliveries(): number | null {
  const file = fileURLToPath(new URL('./results/e2e.json', import.meta.url));
  if (!existsSync(file)) return null;
  return (JSON.parse(readFileSync(file, 'utf8')) as { results: { sustainedDeliveriesPerSecond?: number } }).results.sustainedDeliveriesPerSecond ?? null;
}

try {
  await fillTopic();
  const postgres = BACKENDS.includes('postgres') ? await startPostgres({ durable: true }) : undefined;
  const results = [];
  try {
    for (const backend of BACKENDS) results.push(await runBackend(backend, postgres));
  } finally {
    await postgres?.stop();
  }
  const deliveries = sustainedDeliveries();
  const verdicts = results.map((result) => ({
    backend: result.backend,
    ingestOfDeliveries: deliveries ? Number((result.ingestPerSecond / deliveries).toFixed(1)) : null,
    ingest: deliveries ? result.ingestPerSecond >= GOALS.ingestOfDeliveries * deliveries : null,
    queries: Object.values(result.queryP99Ms).every((ms) => ms <= GOALS.queryP99Ms),
    queriesAtRest: Object.values(result.queryP99MsAtRest).every((ms) => ms <= GOALS.queryP99Ms),
    restart: result.restartReadyMs <= GOALS.restartReadyMs,
    rss: result.peakRssMB <= GOALS.peakRssMB,
  }));
  const file = await writeResults('history', { attempts: ATTEMPTS, goals: GOALS, sustainedDeliveriesPerSecond: deliveries, backends: results, verdicts });
  const yes = (met: boolean | null) => (met === null ? 'not judged' : met ? 'met' : 'NOT met');
  for (const [index, result] of results.entries()) {
    const verdict = verdicts[index]!;
    const slowest = (p99: Record<string, number>) => Object.entries(p99).sort(([, a], [, b]) => b - a)[0]!;
    const queries = (p99: Record<string, number>) => `slowest ${slowest(p99)[0]} ${slowest(p99)[1]} ms; ${Object.entries(p99).map(([name, ms]) => `${name} ${ms}`).join(' · ')}`;
    process.stdout.write(`
${result.backend}: ${result.attempts.toLocaleString()} attempts
  ingest          ${result.ingestPerSecond.toLocaleString()} attempts/s${deliveries ? ` = ${verdict.ingestOfDeliveries} × npm run bench's ${deliveries} deliveries/s` : ' (run npm run bench on this machine for the ratio)'}   goal ≥ ${GOALS.ingestOfDeliveries} ×: ${yes(verdict.ingest)}
  query p99       ${queries(result.queryP99Ms)}   goal ≤ ${GOALS.queryP99Ms} ms: ${yes(verdict.queries)}
  … at rest       ${queries(result.queryP99MsAtRest)} (${Math.round(result.settledMs / 1000)} s after the load)   goal ≤ ${GOALS.queryP99Ms} ms: ${yes(verdict.queriesAtRest)}
  restart ready   ${result.restartReadyMs} ms   goal ≤ ${GOALS.restartReadyMs} ms: ${yes(verdict.restart)}
  peak RSS        ${result.peakRssMB} MB (storing ${result.peakRssMBByPhase.ingest}, queries ${result.peakRssMBByPhase.queries}, restarted ${result.peakRssMBByPhase.restart})   goal ≤ ${GOALS.peakRssMB} MB: ${yes(verdict.rss)}
  disk            ${result.diskBytesPerAttempt} bytes per attempt
`);
  }
  progress(`results in ${file}`);
} finally {
  await removeRun(cluster);
}
process.exit(0);
