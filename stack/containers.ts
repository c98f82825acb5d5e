/**
 * The stack as containers, for machines with a container runtime but no Java or Maven: Kafka (KRaft, the apache/kafka
 * image of the jars' version, configured by the same server.properties as the JVM broker) and Apicurio Registry (the
 * same version, its Confluent-compatible API at the same path), on a network of their own. Their ports are published
 * at the stack settings' numbers, on the host's loopback when the runtime is local, so clients reach them exactly as
 * they reach the JVM stack. testcontainers starts them, and its reaper removes them should this process die first.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GenericContainer, getContainerRuntimeClient, ImageName, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import type { RuntimeAnswer } from './choose.ts';
import { images, versions } from './artifacts.ts';
import {
  kafkaLog4j2, kafkaProperties, kafkaReady, newClusterId, securedListenerFiles, securedListenersOf,
  type Endpoints, type Progress, type SecuredListeners, type StackSettings,
} from './index.ts';
import { waitUntil } from './processes.ts';

const PROBE_TIMEOUT_MS = 15_000;
const DEFAULT_SOCKET = '/var/run/docker.sock';

/**
 * Asks testcontainers for a working container runtime (DOCKER_HOST, ~/.testcontainers.properties, the Docker socket,
 * a rootless or Docker Desktop socket, in its order; it reads this process's environment, once). Its own error names
 * none of the places it looked, so the answer names the one a user would check.
 */
export async function probeContainerRuntime(): Promise<RuntimeAnswer> {
  const { env } = process;
  const where = env.DOCKER_HOST ? `DOCKER_HOST=${env.DOCKER_HOST}` : DEFAULT_SOCKET;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS).unref();
  });
  try {
    const { info } = await Promise.race([getContainerRuntimeClient(), timeout]);
    return { ok: true, runtime: `${info.containerRuntime.operatingSystem}, engine ${info.containerRuntime.serverVersion}` };
  } catch (error) {
    const late = (error as Error).message.startsWith('within') ? ` ${(error as Error).message}` : '';
    const socketThere = !env.DOCKER_HOST && existsSync(DEFAULT_SOCKET) ? ' (the socket is there: is the engine running, and may this user use it?)' : '';
    return { ok: false, problem: `no container runtime answered at ${where}${late}${socketThere}` };
  } finally {
    clearTimeout(timer);
  }
}

/** The broker's network alias and plaintext port for the other containers of its network. */
const KAFKA_INTERNAL = { alias: 'kafka', port: 9092 };
const REGISTRY_PORT = 8080;
/** Where the broker's files live inside its container; the data directory is a volume the image declares. */
const inKafka = { dir: '/opt/stack', config: '/opt/stack/server.properties', log4j: '/opt/stack/log4j2.properties', data: '/var/lib/kafka/data' };
const LOG_TAIL_LINES = 40;

/** A container whose ports are published at chosen host ports, on one host address ('' = every interface). */
class PublishedContainer extends GenericContainer {
  readonly #tail: string[] = [];

  constructor(image: string) {
    super(image);
    this.withLogConsumer((stream) => stream.on('data', (chunk: Buffer | string) => {
      this.#tail.push(...String(chunk).split('\n').filter((line) => line.trim() !== ''));
      this.#tail.splice(0, Math.max(0, this.#tail.length - LOG_TAIL_LINES));
    }));
  }

  /** Its last log lines, for an error that says why it did not start. */
  get logTail(): string {
    return this.#tail.join('\n');
  }

  publish(ports: Array<{ container: number; host: number }>, hostIp: string): this {
    this.withExposedPorts(...ports);
    // testcontainers publishes on every interface; the stack's servers stay on loopback like the JVM stack's.
    for (const { container, host } of ports) this.hostConfig.PortBindings![`${container}/tcp`] = [{ HostIp: hostIp, HostPort: String(host) }];
    return this;
  }
}

export interface ContainerStack {
  endpoints: Endpoints;
  /** The broker's SASL_SSL and mutual-TLS listeners, when started with them. */
  secured: SecuredListeners | undefined;
  /** SIGKILL to the broker's container, like kill -9 of the JVM broker; its data volume stays. */
  killBroker(): Promise<void>;
  /** Starts the killed broker's container again; resolves once the broker answers. */
  startBroker(): Promise<void>;
  /** Removes both containers, their volumes and the network. */
  remove(): Promise<void>;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

/** Pulls what is missing first, saying so: the images are large and testcontainers pulls silently. */
async function pullMissing(progress: Progress): Promise<void> {
  const client = await getContainerRuntimeClient();
  for (const image of Object.values(images)) {
    const name = ImageName.fromString(image);
    if (await client.image.exists(name)) continue;
    const began = Date.now();
    progress(`pulling ${image} (first run only)…`);
    await client.image.pull(name);
    progress(`pulled ${image} in ${seconds(began)} s`);
  }
}

/** Starts the stack's containers with `settings`' ports and heap; ready when this resolves. */
export async function startContainerStack(settings: StackSettings, progress: Progress): Promise<ContainerStack> {
  const client = await getContainerRuntimeClient();
  const { host } = client.info.containerRuntime;
  // A local runtime publishes on loopback and clients dial 127.0.0.1; a remote one (DOCKER_HOST=tcp://…) is dialled by its name.
  const advertised = isLoopback(host) ? '127.0.0.1' : host;
  const hostIp = isLoopback(host) ? '127.0.0.1' : '';
  await pullMissing(progress);

  const secured = await securedListenerFiles(settings);
  const tlsInside = secured && { keystore: `${inKafka.dir}/broker.pem`, truststore: `${inKafka.dir}/ca.crt`, plainPassword: secured.plainPassword };
  const clientPorts = [settings.kafkaPort, settings.saslSslPort, settings.mtlsPort].filter((port): port is number => port !== undefined);
  // Created before the containers, so that a failure below leaves nothing behind but what `remove` stops.
  const started: Array<StartedTestContainer | StartedNetwork> = [];
  const remove = async () => {
    const failures: Error[] = [];
    for (const resource of started.splice(0).reverse()) await resource.stop().catch((error: Error) => failures.push(error));
    if (failures.length) throw new AggregateError(failures, `removing the stack's containers failed: ${failures.map((error) => error.message).join('; ')}`);
  };
  try {
    const network = await new Network().start();
    started.push(network);

    const kafka = new PublishedContainer(images.kafka)
      .withNetwork(network)
      .withNetworkAliases(KAFKA_INTERNAL.alias)
      .publish(clientPorts.map((port) => ({ container: port, host: port })), hostIp)
      .withCopyContentToContainer([
        // The container listens on every interface at the same port numbers as published; it tells clients the host's address.
        { content: kafkaProperties(settings, inKafka.data, tlsInside, { bind: '0.0.0.0', advertised, internal: KAFKA_INTERNAL }), target: inKafka.config },
        { content: kafkaLog4j2, target: inKafka.log4j },
      ])
      .withCopyFilesToContainer(secured && tlsInside
        // Readable by the image's user whatever this machine's owner of the files: they are this stack's throwaway CA's.
        ? [{ source: secured.keystore, target: tlsInside.keystore, mode: 0o644 }, { source: secured.ca.cert, target: tlsInside.truststore, mode: 0o644 }]
        : [])
      .withEnvironment({ KAFKA_HEAP_OPTS: `-Xmx${settings.kafkaHeap}`, KAFKA_LOG4J_OPTS: `-Dlog4j2.configurationFile=${inKafka.log4j}` })
      // The image's own start script builds its configuration from KAFKA_* variables; this broker's is the file above.
      // Formatting is idempotent, so a restarted container keeps the data its volume holds.
      .withCommand(['sh', '-c', `/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t ${newClusterId()} -c ${inKafka.config} `
        + `&& exec /opt/kafka/bin/kafka-server-start.sh ${inKafka.config}`])
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .withStartupTimeout(settings.startTimeoutMs);
    const brokers = [`${advertised}:${settings.kafkaPort}`];
    let began = Date.now();
    progress(`starting Kafka ${versions.kafka} (KRaft, container ${images.kafka}) on ${brokers[0]}`);
    const broker = await kafka.start().catch((error: Error) => {
      throw new Error(`the Kafka container did not start: ${error.message}. Its last log lines:\n${kafka.logTail}`);
    });
    started.push(broker);
    progress(`Kafka ${versions.kafka} ready on ${brokers[0]} (${seconds(began)} s)`);

    const registry = new PublishedContainer(images.registry)
      .withNetwork(network)
      .withNetworkAliases('schema-registry')
      .publish([{ container: REGISTRY_PORT, host: settings.registryPort }], hostIp)
      // SQL storage on in-memory H2: the registry lives exactly as long as the broker whose records its ids serve.
      .withEnvironment({ APICURIO_STORAGE_KIND: 'sql', APICURIO_STORAGE_SQL_KIND: 'h2' })
      .withWaitStrategy(Wait.forHttp('/apis/ccompat/v7/subjects', REGISTRY_PORT).forStatusCode(200))
      .withStartupTimeout(settings.startTimeoutMs);
    const registryUrl = `http://${advertised}:${settings.registryPort}/apis/ccompat/v7`;
    began = Date.now();
    progress(`starting Apicurio Registry ${versions.apicurio} (container ${images.registry}) on ${registryUrl}`);
    started.push(await registry.start().catch((error: Error) => {
      throw new Error(`the Apicurio Registry container did not start: ${error.message}. Its last log lines:\n${registry.logTail}`);
    }));
    progress(`Apicurio Registry ${versions.apicurio} ready on ${registryUrl} (${seconds(began)} s)`);

    const brokerContainer = client.container.getById(broker.getId());
    const running = async () => (await client.container.inspect(brokerContainer)).State.Running;
    return {
      endpoints: { brokers, registryUrl },
      secured: secured && securedListenersOf(settings, advertised, secured, { kind: 'container', containerId: broker.getId(), bootstrap: `127.0.0.1:${KAFKA_INTERNAL.port}` }),
      async killBroker() {
        await brokerContainer.kill({ signal: 'SIGKILL' });
        while (await running()) await sleep(100);
      },
      async startBroker() {
        await client.container.start(brokerContainer);
        await waitUntil(() => kafkaReady(brokers), {
          timeoutMs: settings.startTimeoutMs,
          tick: (s) => progress(`  waiting for Kafka on ${brokers[0]} … ${s} s`),
          alive: running,
          hint: `See its log: docker logs ${broker.getId().slice(0, 12)}`,
        }).catch((error: Error) => { throw new Error(`Kafka ${error.message}`); });
      },
      remove,
    };
  } catch (error) {
    // What did start goes; the error that stopped the start is the one worth reporting.
    await remove().catch(() => undefined);
    throw error;
  }
}

/** Runs `command` inside a container; its exit code and output. */
export async function execInContainer(containerId: string, command: string[]): Promise<{ exitCode: number; output: string }> {
  const client = await getContainerRuntimeClient();
  const { exitCode, output } = await client.container.exec(client.container.getById(containerId), command);
  return { exitCode, output };
}
