/**
 * What benchmarks share: a cluster (KAFKA_BROKERS + SCHEMA_REGISTRY_URL; else containers of the run's own where a
 * container runtime answers; else the local JVM stack, started or reused — stack/choose.ts), progress, results.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chooseStack } from '../stack/choose.ts';
import { probeContainerRuntime } from '../stack/containers.ts';
import { externalEndpoints, stackSettings, stackStatus, stackUp, type Endpoints } from '../stack/index.ts';
import { startPrivateStack } from '../stack/private.ts';
import { freePort } from '../stack/ports.ts';
import { connectionEnv, connectionSettings, loadConfig } from '../services/common/config.ts';
import { createKafka, kafkaConnection } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { removeCluster, type ClusterConfig } from '../services/common/setup.ts';

export const progress = (line: string) => process.stderr.write(`bench › ${line}\n`);

interface BenchStack {
  endpoints: Endpoints;
  /** The broker's and the registry's process ids, where this machine can measure them. */
  pids(): Promise<Record<string, number>>;
}

let benchStack: Promise<BenchStack> | undefined;

/** The cluster of this benchmark process, chosen (and started) once. */
function chosenStack(): Promise<BenchStack> {
  return benchStack ??= (async () => {
    const stackProgress = (line: string) => progress(`stack: ${line}`);
    const { kind, reason } = await chooseStack({ probeRuntime: probeContainerRuntime });
    stackProgress(reason);
    // Not ours to measure: an external cluster's processes, or a container's (inside the runtime's VM on many machines).
    const none = async () => ({});
    if (kind === 'external') return { endpoints: externalEndpoints()!, pids: none };
    if (kind === 'jvm') return { endpoints: await stackUp(stackSettings(), stackProgress), pids: jvmStackPids };
    // Containers of this run's own: benchmarks end with process.exit, so testcontainers' reaper removes them once this
    // process is gone, and its directory goes at exit.
    const stack = await startPrivateStack('bench', 'containers', stackProgress);
    process.once('exit', () => rmSync(stack.dir, { recursive: true, force: true }));
    return { endpoints: stack.endpoints, pids: none };
  })();
}

/** A cluster with topics of their own on `endpoints`; by default the chosen stack's (stack/choose.ts). */
export async function benchCluster(name: string, endpoints?: Endpoints): Promise<ClusterConfig> {
  const external = externalEndpoints();
  endpoints ??= (await chosenStack()).endpoints;
  // The external cluster is reached with the environment's TLS, SASL and registry-auth settings; a private stack
  // (the chaos run's) without them.
  const onExternal = external !== undefined && endpoints.brokers.join() === external.brokers.join();
  return {
    ...(onExternal ? loadConfig(connectionSettings) : {}),
    KAFKA_BROKERS: endpoints.brokers,
    SCHEMA_REGISTRY_URL: endpoints.registryUrl,
    KAFKA_CLIENT_ID: `bench-${name}`,
    TOPIC_PREFIX: `bench-${name}-${Date.now().toString(36)}.`,
    TOPIC_PARTITIONS: 6,
    RETRY_SCHEDULE: [5000],
  };
}

/** Deletes a run's topics and schema subjects (all carry its prefix): leftovers would pile up partitions and schemas. */
export const removeRun = (cluster: ClusterConfig) => removeCluster(cluster, createLogger('bench', 'warn'));

/** Environment for a service child process on this cluster. */
export const serviceEnv = (cluster: ClusterConfig): NodeJS.ProcessEnv => ({
  ...process.env,
  KAFKA_BROKERS: cluster.KAFKA_BROKERS.join(','),
  SCHEMA_REGISTRY_URL: cluster.SCHEMA_REGISTRY_URL,
  ...connectionEnv(cluster),
  TOPIC_PREFIX: cluster.TOPIC_PREFIX,
  LOG_LEVEL: 'warn',
});

export interface ServiceProcess {
  child: ChildProcess;
  /** Its ops endpoint's port (/readyz, /metrics). */
  port: number;
}

/**
 * Starts a service (matcher or dispatcher) as its own process on `cluster`, as in production, and waits until /readyz
 * answers 200. The dispatcher may dial loopback (the benchmarks' receivers); retries follow the cluster's RETRY_SCHEDULE.
 * Its errors go to this process's stderr, or with `onOutput` its whole output (logs on stdout, errors on stderr) goes there.
 */
export async function startService(
  name: 'matcher' | 'dispatcher',
  cluster: ClusterConfig,
  { env = {}, nodeArgs = [], onOutput }: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; onOutput?: (chunk: Buffer) => void } = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  const upper = name.toUpperCase();
  const child = spawn(process.execPath, [...nodeArgs, fileURLToPath(new URL(`../services/${name}/main.ts`, import.meta.url))], {
    env: {
      ...serviceEnv(cluster),
      RETRY_SCHEDULE: cluster.RETRY_SCHEDULE.map((ms) => `${ms}ms`).join(','),
      [`${upper}_HTTP_PORT`]: String(port),
      [`${upper}_GROUP_ID`]: `${cluster.TOPIC_PREFIX}${name}`,
      DISPATCHER_ALLOW_NETWORKS: '127.0.0.0/8',
      ...env,
    },
    stdio: onOutput ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', 'inherit'],
  });
  if (onOutput) for (const stream of [child.stdout!, child.stderr!]) stream.on('data', onOutput);
  let exited = false;
  child.once('exit', () => (exited = true));
  while (!(await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false))) {
    if (exited) throw new Error(`the ${name} exited before it was ready (its errors are ${onOutput ? 'in its output' : 'above'})`);
    await sleep(100);
  }
  return { child, port };
}

export interface BenchReceiver {
  url: string;
  /** Requests fully received so far. */
  readonly received: number;
  close(): Promise<void>;
}

/**
 * A loopback webhook receiver: answers 200 (after `delayMs`, like an endpoint doing real work), 500 to every
 * `failEvery`-th request, or never (`hang`); counts requests and hands each body and its request (headers) to `onBody`
 * (latency measurement, signature checks).
 */
export async function startReceiver({ hang = false, delayMs = 0, failEvery = 0, onBody }: { hang?: boolean; delayMs?: number; failEvery?: number; onBody?: (body: Buffer, request: IncomingMessage) => void } = {}): Promise<BenchReceiver> {
  let received = 0;
  const hanging: ServerResponse[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received += 1;
      onBody?.(Buffer.concat(chunks), request);
      const status = failEvery > 0 && received % failEvery === 0 ? 500 : 200;
      if (hang) hanging.push(response);
      else if (delayMs > 0) setTimeout(() => response.writeHead(status).end(), delayMs);
      else response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    get received() {
      return received;
    },
    close: () => new Promise((resolve) => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * One of bench/floor.ts's measures (`post`, `consume`, `produce`, `work`) on `cluster`, in a process of its own so its
 * CPU is its own: the least the libraries themselves spend per unit, to set a run's figures against.
 */
export async function floor(cluster: ClusterConfig, ...args: string[]): Promise<{ cpuMicrosPerUnit: number }> {
  const script = fileURLToPath(new URL('./floor.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script, ...args], { env: serviceEnv(cluster) });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { cpuMicrosPerUnit: number };
}

/**
 * The floor's produce measure with `client` (kafkajs, or @platformatic/kafka weighed beside it), into a scratch topic of
 * the run's own (removed with the run's topics: its records are not Avro).
 */
export async function produceFloor(cluster: ClusterConfig, records: number, client: 'kafkajs' | 'platformatic' = 'kafkajs'): Promise<{ cpuMicrosPerUnit: number }> {
  const topic = `${cluster.TOPIC_PREFIX}bench-floor`;
  const admin = createKafka({ ...kafkaConnection(cluster), clientId: 'bench-floor', logger: createLogger('bench', 'warn') }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: cluster.TOPIC_PARTITIONS }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return floor(cluster, 'produce', '--topic', topic, '--records', String(records), '--client', client);
}

/** A metric's value from a Prometheus text page, summed over the label sets that carry every one of `labels`. */
export function metric(page: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  return page
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .filter((line) => wanted.every((label) => line.slice(0, line.lastIndexOf(' ')).includes(label)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** The value at fraction `p` (0.5 = the median) of an ascending list. */
export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

export async function writeResults(name: string, results: unknown): Promise<string> {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const file = `${dir}${name}.json`;
  await writeFile(file, `${JSON.stringify({ name, at: new Date().toISOString(), cpus: (await import('node:os')).cpus().length, results }, null, 2)}\n`);
  return file;
}

/** The chosen stack's process ids, where they can be measured (the local JVM stack's). */
export const stackPids = async (): Promise<Record<string, number>> => (await chosenStack()).pids();

async function jvmStackPids(): Promise<Record<string, number>> {
  const { kafka, registry } = await stackStatus(stackSettings());
  return Object.fromEntries(Object.entries({ broker: kafka.pid, registry: registry.pid }).filter((entry): entry is [string, number] => entry[1] !== undefined));
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/**
 * CPU (cores used over a window) and peak RSS of named processes, from /proc: the same measure for the services, the
 * broker, the registry and the benchmark itself. Processes that exit are skipped, not fatal.
 */
export class ProcessMeter {
  readonly #pids: Record<string, number>;
  readonly #peakRss: Record<string, number> = {};
  #cpuAtMark: Record<string, number> = {};
  #markedAt = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(pids: Record<string, number>) {
    this.#pids = pids;
    this.#timer = setInterval(() => this.#sample(), 250).unref();
    this.mark();
  }

  /** Starts a CPU window. */
  mark(): void {
    this.#markedAt = performance.now();
    this.#cpuAtMark = this.#read(cpuSeconds);
  }

  /** Cores each process used since mark(). */
  cores(): Record<string, number> {
    const seconds = (performance.now() - this.#markedAt) / 1000;
    return Object.fromEntries(Object.entries(this.cpuSeconds()).map(([name, cpu]) => [name, Number((cpu / seconds).toFixed(2))]));
  }

  /** CPU seconds (user + system) each process used since mark(). */
  cpuSeconds(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.#read(cpuSeconds)).map(([name, cpu]) => [name, cpu - (this.#cpuAtMark[name] ?? 0)]));
  }

  peakRssMB(): Record<string, number> {
    this.#sample();
    return Object.fromEntries(Object.entries(this.#peakRss).map(([name, bytes]) => [name, Math.round(bytes / 2 ** 20)]));
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sample(): void {
    for (const [name, rss] of Object.entries(this.#read(rssBytes))) this.#peakRss[name] = Math.max(this.#peakRss[name] ?? 0, rss);
  }

  #read(measure: (pid: number) => number): Record<string, number> {
    const values: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      try {
        values[name] = measure(pid);
      } catch {
        // The process has exited.
      }
    }
    return values;
  }
}
