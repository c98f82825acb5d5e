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
import { createCa, issueCertificate, type CertificateFiles } from './tls.ts';
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
  /**
   * Optional secured listeners beside the plaintext one, with a private CA made at start (in STACK_DIR/tls):
   * SASL_SSL (SCRAM-SHA-256/512 users are added with addScramUser; PLAIN user `plain` with a password made at start)
   * and SSL requiring a client certificate from that CA (mutual TLS). The test harness turns them on.
   */
  STACK_KAFKA_SASL_SSL_PORT: integer(1, 65535).optional(),
  STACK_KAFKA_MTLS_PORT: integer(1, 65535).optional(),
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
  saslSslPort?: number;
  mtlsPort?: number;
}

/** What a client needs to use the secured listeners. */
export interface SecuredListeners {
  saslSsl: string;
  mtls: string;
  /** PEM CA that signed the broker's certificate, and whose key signs client certificates (stack/tls.ts). */
  ca: CertificateFiles;
  plainUser: { username: string; password: string };
  /** Where the broker's own admin tool runs (stack/scram.ts adds SCRAM users with it). */
  admin: BrokerAdmin;
}

/** The broker's admin tool: Kafka's jars on this machine, or the tool inside the broker's container. */
export type BrokerAdmin = { kind: 'jvm'; bootstrap: string } | { kind: 'container'; containerId: string; bootstrap: string };

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
    ...(c.STACK_KAFKA_SASL_SSL_PORT !== undefined ? { saslSslPort: c.STACK_KAFKA_SASL_SSL_PORT } : {}),
    ...(c.STACK_KAFKA_MTLS_PORT !== undefined ? { mtlsPort: c.STACK_KAFKA_MTLS_PORT } : {}),
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
  kafkaLog4j: join(dir, 'kafka', 'log4j2.properties'),
  tls: join(dir, 'tls'),
  ca: { cert: join(dir, 'tls', 'ca.crt'), key: join(dir, 'tls', 'ca.key') },
  brokerKeystore: join(dir, 'tls', 'broker.pem'),
  plainPassword: join(dir, 'tls', 'plain-password'),
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

/** The broker answers and has a controller. */
export async function kafkaReady(brokers: string[]): Promise<boolean> {
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
  const { kafkaPort, controllerPort, registryPort, registryManagementPort, saslSslPort, mtlsPort } = current;
  await writeFile(p.state, JSON.stringify({ kafkaPort, controllerPort, registryPort, registryManagementPort, saslSslPort, mtlsPort }, null, 2));
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
  const secured = await securedListenerFiles(settings);
  await writeFile(p.kafkaConfig, kafkaProperties(settings, p.kafkaData, secured && brokerTls(secured)));
  // Kafka 4 logs through log4j2 (3.x used reload4j); its properties format needs no extra parser on the classpath.
  await writeFile(p.kafkaLog4j, kafkaLog4j2);
  const classpath = kafkaClasspath(p.kafkaLog4j);
  if (!existsSync(join(p.kafkaData, 'meta.properties'))) {
    progress('formatting KRaft storage');
    try {
      execFileSync(java.bin, [...classpath, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', newClusterId(), '-c', p.kafkaConfig], { stdio: 'pipe' });
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

/** The broker's logging: to stdout (the log file, or the container's log), request and state-change chatter at WARN. */
export const kafkaLog4j2 = `${[
  'status=warn',
  'appender.stdout.type=Console',
  'appender.stdout.name=STDOUT',
  'appender.stdout.layout.type=PatternLayout',
  'appender.stdout.layout.pattern=[%d] %p %m (%c)%n',
  'rootLogger.level=INFO',
  'rootLogger.appenderRef.stdout.ref=STDOUT',
  'logger.request.name=kafka.request.logger',
  'logger.request.level=WARN',
  'logger.state.name=state.change.logger',
  'logger.state.level=WARN',
].join('\n')}\n`;

/** A KRaft cluster id. One starting with '-' would be read as an option (1 in 64 random ids did fail the format); Kafka avoids them too. */
export function newClusterId(): string {
  let clusterId: string;
  do clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-'));
  return clusterId;
}

const kafkaClasspath = (log4j2: string) => ['-cp', `${artifacts.kafkaLibs}/*`, `-Dlog4j2.configurationFile=${log4j2}`];

export interface SecuredFiles {
  ca: CertificateFiles;
  /** The broker's key and certificate in one PEM file, as Kafka's PEM key store wants them. */
  keystore: string;
  plainPassword: string;
}

/** The private CA, the broker's certificate and the PLAIN user's password, made once per stack directory. */
export async function securedListenerFiles(settings: StackSettings): Promise<SecuredFiles | undefined> {
  if (settings.saslSslPort === undefined && settings.mtlsPort === undefined) return undefined;
  const p = paths(settings.dir);
  if (!existsSync(p.plainPassword)) {
    await createCa(p.tls, 'ca');
    const broker = await issueCertificate(p.ca, p.tls, 'broker', 'server');
    await writeFile(p.brokerKeystore, `${await readFile(broker.key, 'utf8')}${await readFile(broker.cert, 'utf8')}`, { mode: 0o600 });
    await writeFile(p.plainPassword, randomBytes(18).toString('base64url'), { mode: 0o600 });
  }
  return { ca: p.ca, keystore: p.brokerKeystore, plainPassword: await readFile(p.plainPassword, 'utf8') };
}

/** The secured listeners of a stack started with them, or undefined. */
export async function securedListeners(settings: StackSettings): Promise<SecuredListeners | undefined> {
  const current = await recordedSettings(settings);
  const p = paths(current.dir);
  if (current.saslSslPort === undefined || current.mtlsPort === undefined || !existsSync(p.plainPassword)) return undefined;
  const files = { ca: p.ca, keystore: p.brokerKeystore, plainPassword: await readFile(p.plainPassword, 'utf8') };
  return securedListenersOf(current, '127.0.0.1', files, { kind: 'jvm', bootstrap: endpointsOf(current).brokers[0]! });
}

/** What clients on this machine need to use the secured listeners of a broker reachable at `host`. */
export function securedListenersOf(settings: StackSettings, host: string, files: SecuredFiles, admin: BrokerAdmin): SecuredListeners | undefined {
  if (settings.saslSslPort === undefined || settings.mtlsPort === undefined) return undefined;
  return {
    saslSsl: `${host}:${settings.saslSslPort}`,
    mtls: `${host}:${settings.mtlsPort}`,
    ca: files.ca,
    plainUser: { username: 'plain', password: files.plainPassword },
    admin,
  };
}

/**
 * Where the broker's listeners bind and what it tells clients: the only difference between the JVM stack (loopback)
 * and the container (every interface inside it, published on the host at the same port numbers).
 */
export interface BrokerAddresses {
  bind: string;
  /** The host clients on this machine connect to. */
  advertised: string;
  /** A plaintext listener for containers on the stack's network, under the broker's alias there. */
  internal?: { alias: string; port: number };
}

const loopbackBroker: BrokerAddresses = { bind: '127.0.0.1', advertised: '127.0.0.1' };

/** The secured listeners' files as the broker sees them: its key and certificate, the CA it trusts, the PLAIN user's password. */
export interface BrokerTls {
  keystore: string;
  truststore: string;
  plainPassword: string;
}

const brokerTls = (files: SecuredFiles): BrokerTls => ({ keystore: files.keystore, truststore: files.ca.cert, plainPassword: files.plainPassword });

/** The broker's server.properties. */
export function kafkaProperties(settings: StackSettings, dataDir: string, secured: BrokerTls | undefined, addresses: BrokerAddresses = loopbackBroker): string {
  const { kafkaPort, controllerPort, saslSslPort, mtlsPort } = settings;
  const { bind, advertised, internal } = addresses;
  const listeners: Array<[name: string, port: number, host: string]> = [['PLAINTEXT', kafkaPort, advertised]];
  const securedConfig: string[] = [];
  if (secured && saslSslPort !== undefined) {
    listeners.push(['SASL_SSL', saslSslPort, advertised]);
    const jaas = (name: string) => `listener.name.sasl_ssl.${name}.sasl.jaas.config`;
    securedConfig.push(
      'sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN',
      `${jaas('scram-sha-512')}=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `${jaas('scram-sha-256')}=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `${jaas('plain')}=org.apache.kafka.common.security.plain.PlainLoginModule required user_plain="${secured.plainPassword}";`,
    );
  }
  if (secured && mtlsPort !== undefined) {
    listeners.push(['MTLS', mtlsPort, advertised]);
    securedConfig.push('listener.name.mtls.ssl.client.auth=required');
  }
  if (secured) {
    // PEM stores: the broker reads openssl's files directly (unencrypted PKCS#8 key, so no ssl.key.password).
    securedConfig.push(
      'ssl.keystore.type=PEM', `ssl.keystore.location=${secured.keystore}`,
      'ssl.truststore.type=PEM', `ssl.truststore.location=${secured.truststore}`,
    );
  }
  if (internal) listeners.push(['INTERNAL', internal.port, internal.alias]);
  return `${[
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${[...listeners, ['CONTROLLER', controllerPort]].map(([name, port]) => `${name}://${bind}:${port}`).join(',')}`,
    `advertised.listeners=${listeners.map(([name, port, host]) => `${name}://${host}:${port}`).join(',')}`,
    'controller.listener.names=CONTROLLER',
    // Inside a container, the broker reaches itself by its alias rather than by the host's address.
    `inter.broker.listener.name=${internal ? 'INTERNAL' : 'PLAINTEXT'}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL,INTERNAL:PLAINTEXT',
    ...securedConfig,
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
