/**
 * The local stack: one Kafka broker in KRaft mode (combined broker + controller) and Apicurio Registry serving the
 * Confluent-compatible API, both as plain JVM processes from Maven Central jars, bound to 127.0.0.1. No Docker.
 * State (data, logs, pid files) lives in one directory; `up` is idempotent and `down` stops only this directory's
 * own processes, by pid.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { integer, loadConfig } from '../services/common/config.ts';
import { createKafka } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { artifacts, ensureArtifacts, versions } from './artifacts.ts';
import { findJava } from './java.ts';
import { runningPid, startDaemon, stopDaemon, waitUntil } from './processes.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export const stackSettingsShape = {
  STACK_DIR: z.string().default(join(repoRoot, '.stack')),
  STACK_KAFKA_PORT: integer(1, 65535).default(9092),
  STACK_CONTROLLER_PORT: integer(1, 65535).default(9093),
  STACK_REGISTRY_PORT: integer(1, 65535).default(8081),
  /** Apicurio's management interface (health, metrics), which Quarkus always starts. */
  STACK_REGISTRY_MANAGEMENT_PORT: integer(1, 65535).default(9000),
  STACK_KAFKA_HEAP: z.string().regex(/^\d+[mg]$/, 'a JVM heap size such as 512m or 1g').default('768m'),
  STACK_REGISTRY_HEAP: z.string().regex(/^\d+[mg]$/, 'a JVM heap size such as 512m or 1g').default('1g'),
  STACK_START_TIMEOUT_MS: integer(1000, 600_000).default(120_000),
};

export interface StackSettings {
  dir: string;
  kafkaPort: number;
  controllerPort: number;
  registryPort: number;
  registryManagementPort: number;
  kafkaHeap: string;
  registryHeap: string;
  startTimeoutMs: number;
}

export interface Endpoints {
  brokers: string[];
  registryUrl: string;
}

export function stackSettings(env: NodeJS.ProcessEnv = process.env): StackSettings {
  const c = loadConfig(stackSettingsShape, env);
  return {
    dir: resolve(c.STACK_DIR),
    kafkaPort: c.STACK_KAFKA_PORT,
    controllerPort: c.STACK_CONTROLLER_PORT,
    registryPort: c.STACK_REGISTRY_PORT,
    registryManagementPort: c.STACK_REGISTRY_MANAGEMENT_PORT,
    kafkaHeap: c.STACK_KAFKA_HEAP,
    registryHeap: c.STACK_REGISTRY_HEAP,
    startTimeoutMs: c.STACK_START_TIMEOUT_MS,
  };
}

/** When both KAFKA_BROKERS and SCHEMA_REGISTRY_URL are set, everything uses them and no local stack is started. */
export function externalEndpoints(env: NodeJS.ProcessEnv = process.env): Endpoints | undefined {
  const brokers = env.KAFKA_BROKERS?.trim();
  const registryUrl = env.SCHEMA_REGISTRY_URL?.trim();
  if (!brokers || !registryUrl) return undefined;
  return { brokers: brokers.split(',').map((broker) => broker.trim()), registryUrl };
}

export function endpointsOf(settings: Pick<StackSettings, 'kafkaPort' | 'registryPort'>): Endpoints {
  return {
    brokers: [`127.0.0.1:${settings.kafkaPort}`],
    registryUrl: `http://127.0.0.1:${settings.registryPort}/apis/ccompat/v7`,
  };
}

const paths = (dir: string) => ({
  state: join(dir, 'stack.json'),
  logs: join(dir, 'logs'),
  kafkaData: join(dir, 'kafka', 'data'),
  kafkaConfig: join(dir, 'kafka', 'server.properties'),
  kafkaLog4j: join(dir, 'kafka', 'log4j.properties'),
  kafkaPid: join(dir, 'kafka.pid'),
  kafkaLog: join(dir, 'logs', 'kafka.log'),
  registryDb: join(dir, 'registry', 'db'),
  registryPid: join(dir, 'registry.pid'),
  registryLog: join(dir, 'logs', 'registry.log'),
});

export type Progress = (line: string) => void;

export interface ComponentStatus {
  pid?: number;
  ready: boolean;
}

export interface StackStatus {
  kafka: ComponentStatus;
  registry: ComponentStatus;
  endpoints: Endpoints;
}

/** Ports the running stack was started with (they win over the settings, which may have changed since). */
async function recordedSettings(settings: StackSettings): Promise<StackSettings> {
  const recorded = await readFile(paths(settings.dir).state, 'utf8').then((text) => JSON.parse(text) as Partial<StackSettings>, () => ({}));
  return { ...settings, ...recorded, dir: settings.dir };
}

async function kafkaReady(brokers: string[]): Promise<boolean> {
  const admin = createKafka({ brokers, clientId: 'stack-probe', logger: createLogger('stack', 'silent'), retries: 0, connectionTimeoutMs: 1000 }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function registryReady(registryUrl: string): Promise<boolean> {
  const response = await fetch(`${registryUrl}/subjects`, { signal: AbortSignal.timeout(2000) });
  await response.body?.cancel();
  return response.ok;
}

export async function stackStatus(settings: StackSettings): Promise<StackStatus> {
  const current = await recordedSettings(settings);
  const p = paths(current.dir);
  const endpoints = endpointsOf(current);
  const kafkaPid = await runningPid(p.kafkaPid, current.dir);
  const registryPid = await runningPid(p.registryPid, current.dir);
  return {
    kafka: { pid: kafkaPid, ready: kafkaPid !== undefined && (await kafkaReady(endpoints.brokers).catch(() => false)) },
    registry: { pid: registryPid, ready: registryPid !== undefined && (await registryReady(endpoints.registryUrl).catch(() => false)) },
    endpoints,
  };
}

/** Starts whatever is not running yet and waits until both answer. A second call finds both ready and does nothing. */
export async function stackUp(settings: StackSettings, progress: Progress): Promise<Endpoints & { started: string[] }> {
  const status = await stackStatus(settings);
  if (status.kafka.ready && status.registry.ready) {
    progress(`already running (Kafka pid ${status.kafka.pid}, registry pid ${status.registry.pid}); nothing to do`);
    return { ...status.endpoints, started: [] };
  }
  // A half-running stack keeps the ports it was started with; otherwise the current settings apply.
  const current = status.kafka.pid || status.registry.pid ? await recordedSettings(settings) : settings;
  const p = paths(current.dir);
  const endpoints = endpointsOf(current);
  await ensureArtifacts(progress);
  await mkdir(p.logs, { recursive: true });
  const { kafkaPort, controllerPort, registryPort, registryManagementPort } = current;
  await writeFile(p.state, JSON.stringify({ kafkaPort, controllerPort, registryPort, registryManagementPort }, null, 2));
  const started: string[] = [];

  if (!status.kafka.ready) {
    if (status.kafka.pid === undefined) {
      await startKafka(current, progress);
      started.push('kafka');
    }
    const began = Date.now();
    await waitUntil(() => kafkaReady(endpoints.brokers), {
      timeoutMs: current.startTimeoutMs,
      tick: (s) => progress(`  waiting for Kafka on ${endpoints.brokers[0]} … ${s} s`),
      alive: async () => (await runningPid(p.kafkaPid, current.dir)) !== undefined,
      hint: `See ${p.kafkaLog} (npm run stack:logs -- kafka). A port in use? Set STACK_KAFKA_PORT / STACK_CONTROLLER_PORT.`,
    }).catch((error: Error) => { throw new Error(`Kafka ${error.message}`); });
    progress(`Kafka ${versions.kafka} ready on ${endpoints.brokers[0]} (${((Date.now() - began) / 1000).toFixed(1)} s)`);
  }

  if (!status.registry.ready) {
    if (status.registry.pid === undefined) {
      await startRegistry(current, progress);
      started.push('registry');
    }
    const began = Date.now();
    await waitUntil(() => registryReady(endpoints.registryUrl), {
      timeoutMs: current.startTimeoutMs,
      tick: (s) => progress(`  waiting for the registry on ${endpoints.registryUrl} … ${s} s`),
      alive: async () => (await runningPid(p.registryPid, current.dir)) !== undefined,
      hint: `See ${p.registryLog} (npm run stack:logs -- registry). A port in use? Set STACK_REGISTRY_PORT / STACK_REGISTRY_MANAGEMENT_PORT.`,
    }).catch((error: Error) => { throw new Error(`Apicurio Registry ${error.message}`); });
    progress(`Apicurio Registry ${versions.apicurio} ready on ${endpoints.registryUrl} (${((Date.now() - began) / 1000).toFixed(1)} s)`);
  }
  return { ...endpoints, started };
}

async function startKafka(settings: StackSettings, progress: Progress): Promise<void> {
  const p = paths(settings.dir);
  const java = await findJava('Kafka', 'KAFKA_JAVA_HOME', 17, 23);
  await mkdir(p.kafkaData, { recursive: true });
  await writeFile(p.kafkaConfig, kafkaProperties(settings, p.kafkaData));
  await writeFile(p.kafkaLog4j, [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n'));
  const classpath = ['-cp', `${artifacts.kafkaLibs}/*`, `-Dlog4j.configuration=file:${p.kafkaLog4j}`];
  if (!existsSync(join(p.kafkaData, 'meta.properties'))) {
    progress('formatting KRaft storage');
    // An id starting with '-' would be read as an option (1 in 64 random ids did fail the format); Kafka avoids them too.
    let clusterId: string;
    do clusterId = randomBytes(16).toString('base64url');
    while (clusterId.startsWith('-'));
    try {
      execFileSync(java.bin, [...classpath, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', clusterId, '-c', p.kafkaConfig], { stdio: 'pipe' });
    } catch (error) {
      const output = `${(error as { stdout?: Buffer }).stdout ?? ''}${(error as { stderr?: Buffer }).stderr ?? ''}`.trim();
      throw new Error(`formatting Kafka's storage in ${p.kafkaData} failed: ${output || (error as Error).message}`);
    }
  }
  progress(`starting Kafka ${versions.kafka} (KRaft, Java ${java.major}) on 127.0.0.1:${settings.kafkaPort}`);
  await startDaemon({
    command: java.bin,
    args: [`-Xmx${settings.kafkaHeap}`, '-XX:+UseG1GC', '-Djava.awt.headless=true', `-Dstack.dir=${settings.dir}`, ...classpath, 'kafka.Kafka', p.kafkaConfig],
    cwd: settings.dir,
    logFile: p.kafkaLog,
    pidFile: p.kafkaPid,
  });
}

function kafkaProperties(settings: StackSettings, dataDir: string): string {
  const { kafkaPort, controllerPort } = settings;
  return `${[
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${kafkaPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${kafkaPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${dataDir}`,
    // One broker: internal topics must not ask for replicas that cannot exist, or transactions and groups never work.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    // Topics are declared by services/common/topics.ts; a typo must fail, not create a stray topic.
    'auto.create.topics.enable=false',
    'log.cleaner.backoff.ms=5000',
  ].join('\n')}\n`;
}

async function startRegistry(settings: StackSettings, progress: Progress): Promise<void> {
  const p = paths(settings.dir);
  const java = await findJava('Apicurio Registry 3', 'REGISTRY_JAVA_HOME', 21);
  await mkdir(p.registryDb, { recursive: true });
  progress(`starting Apicurio Registry ${versions.apicurio} (Java ${java.major}) on 127.0.0.1:${settings.registryPort}`);
  await startDaemon({
    command: java.bin,
    args: [
      `-Xmx${settings.registryHeap}`,
      `-Dstack.dir=${settings.dir}`,
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${settings.registryPort}`,
      // Quarkus always starts a management interface (0.0.0.0:9000 by default): keep it on loopback too.
      '-Dquarkus.management.host=127.0.0.1',
      `-Dquarkus.management.port=${settings.registryManagementPort}`,
      // Schemas persist on disk beside Kafka's data, so schema ids stay valid for records already in Kafka.
      '-Dapicurio.storage.kind=sql',
      '-Dapicurio.storage.sql.kind=h2',
      `-Dapicurio.datasource.url=jdbc:h2:file:${join(p.registryDb, 'registry')}`,
      '-jar', artifacts.registryJar,
    ],
    cwd: settings.dir,
    logFile: p.registryLog,
    pidFile: p.registryPid,
  });
}

/** Stops this directory's registry, then its broker (the registry needs nothing from Kafka, but clients might). */
export async function stackDown(settings: StackSettings, progress: Progress): Promise<void> {
  const p = paths(settings.dir);
  for (const [name, pidFile] of [['registry', p.registryPid], ['Kafka', p.kafkaPid]] as const) {
    const pid = await runningPid(pidFile, settings.dir);
    if (pid === undefined) {
      progress(`${name}: not running`);
      continue;
    }
    progress(`stopping ${name} (pid ${pid})`);
    await stopDaemon(pidFile, settings.dir);
  }
}

export const logFiles = (settings: StackSettings) => ({ kafka: paths(settings.dir).kafkaLog, registry: paths(settings.dir).registryLog });
