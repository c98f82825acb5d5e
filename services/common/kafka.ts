/**
 * The only module that imports the Kafka client. Everything else gets clients and types from here, so the client can be
 * swapped (e.g. for @confluentinc/kafka-javascript, which offers the same API) in one place.
 */
import { readFileSync } from 'node:fs';
import { connect as connectTcp, isIP } from 'node:net';
import { connect as connectTls } from 'node:tls';
// Before kafkajs: its record-batch checksum module is replaced by a native one, its request queue's endless 1 ms
// re-check by one armed only while requests wait, and its encoders grow without zero-filling (see the modules).
import './kafka-crc32c.ts';
import './kafka-encoder.ts';
import './kafka-request-queue.ts';
import kafkajs from 'kafkajs';
import type { ConnectionConfig, SaslMechanism } from './config.ts';
import type { Logger } from './logger.ts';
import { keyPartition } from './murmur2.ts';
import { CERTIFICATE_ERROR, CLIENT_CERTIFICATE_REFUSED } from './tls-errors.ts';

export type {
  Admin, Consumer, ConsumerConfig, EachBatchPayload, EachMessagePayload, IHeaders, ITopicConfig, Kafka, KafkaMessage,
  Message, ProducerConfig, RecordMetadata,
} from 'kafkajs';

/** What the services do with a producer (createProducer's). */
export type Producer = Pick<kafkajs.Producer, 'connect' | 'disconnect' | 'send' | 'sendBatch'>;

const { Kafka: KafkaClient, logLevel, CompressionTypes, AssignerProtocol } = kafkajs;
export { CompressionTypes };

/** Where the brokers are and how to authenticate to them: what the producer SDK takes and kafkaConnection() builds. */
export interface KafkaConnection {
  brokers: string[];
  /** TLS: true trusts the system's CAs; PEM text for a private CA (`ca`) and mutual TLS (`cert` + `key`). */
  ssl?: boolean | { ca?: string; cert?: string; key?: string };
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

/** The connection the settings describe (files are read here; config.ts has checked that they are readable PEM). */
export function kafkaConnection(config: Pick<ConnectionConfig, Extract<keyof ConnectionConfig, `KAFKA_${string}`>>): KafkaConnection {
  const files = { ca: config.KAFKA_SSL_CA_FILE, cert: config.KAFKA_SSL_CERT_FILE, key: config.KAFKA_SSL_KEY_FILE };
  const pem = Object.fromEntries(Object.entries(files).flatMap(([name, path]) => (path === undefined ? [] : [[name, readFileSync(path, 'utf8')]])));
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = config;
  return {
    brokers: config.KAFKA_BROKERS,
    ...(Object.keys(pem).length > 0 ? { ssl: pem } : config.KAFKA_SSL ? { ssl: true } : {}),
    ...(mechanism && username !== undefined && password !== undefined ? { sasl: { mechanism, username, password } } : {}),
  };
}

export interface KafkaSettings extends KafkaConnection {
  clientId: string;
  logger: Logger;
  /** Retries of a failed request before the client gives up and the caller sees an error. */
  retries?: number;
  connectionTimeoutMs?: number;
}

/**
 * kafkajs's own socket factory leaves Nagle's algorithm on: a small request written while another is unacknowledged
 * on the same connection (fetch, produce, commit and heartbeat share one) then waits for the broker's delayed ACK, up
 * to 40 ms on Linux, at every stage of the pipeline. This one is kafkajs's with TCP_NODELAY set.
 */
const socketFactory: kafkajs.ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? connectTls({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : connectTcp({ host, port }, onConnect);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 60_000);
  return socket;
};

export function createKafka({ brokers, ssl, sasl, clientId, logger, retries = 5, connectionTimeoutMs = 3000 }: KafkaSettings): kafkajs.Kafka {
  const log = logger.child({ component: 'kafka' });
  const kafka = new KafkaClient({
    brokers,
    clientId,
    ssl,
    sasl: sasl as kafkajs.SASLOptions | undefined,
    connectionTimeout: connectionTimeoutMs,
    socketFactory,
    retry: { retries, initialRetryTime: 200, maxRetryTime: 5000 },
    logLevel: logLevel.WARN,
    // kafkajs logs through pino, so its lines carry the service name and honour redaction.
    logCreator: () => ({ level, log: entry }) => {
      const { message, ...rest } = entry;
      log[quietened(message) ? 'debug' : level === logLevel.ERROR ? 'error' : level === logLevel.WARN ? 'warn' : level === logLevel.INFO ? 'info' : 'debug'](rest, message);
    },
  });
  // Every client's connect() fails with an error that says which setting to fix, not only what the socket saw.
  const explain = <Client extends { connect(): Promise<void> }>(client: Client): Client => {
    const connect = client.connect.bind(client);
    client.connect = () => connect().catch((error: unknown) => { throw new KafkaConnectError(brokers, { ssl, sasl }, error); });
    return client;
  };
  const [producer, consumer, admin] = [kafka.producer.bind(kafka), kafka.consumer.bind(kafka), kafka.admin.bind(kafka)];
  kafka.producer = (config) => explain(producer(config));
  kafka.consumer = (config) => explain(consumer(config));
  kafka.admin = (config) => explain(admin(config));
  return kafka;
}

const NOT_TLS = /before secure TLS connection|wrong version number|packet length too long|ECONNRESET/i;

/**
 * A client could not connect: the cause, and which setting to look at. Never quotes the password (kafkajs's own
 * messages do not contain it either).
 */
export class KafkaConnectError extends Error {
  override name = 'KafkaConnectError';
  readonly retriable = false;
  constructor(brokers: string[], { ssl, sasl }: Pick<KafkaConnection, 'ssl' | 'sasl'>, error: unknown) {
    const causes: string[] = [];
    for (let current = error as { message?: string; cause?: unknown; originalError?: unknown } | undefined; current && causes.length < 5; current = (current.cause ?? current.originalError) as typeof current) {
      if (current.message && !causes.includes(current.message)) causes.push(current.message);
    }
    const seen = (causes.join(': ') || String(error)).trim();
    const name = (error as { name?: string }).name;
    let hint: string;
    if (name === 'KafkaJSSASLAuthenticationError') {
      hint = `it refused the SASL ${sasl?.mechanism ?? ''} login of user "${sasl?.username ?? ''}"; check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE), and KAFKA_SASL_MECHANISM`;
    } else if (ssl && CLIENT_CERTIFICATE_REFUSED.test(seen)) {
      hint = 'it refused the client certificate (mutual TLS); set KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE to a certificate its CA trusts';
    } else if (ssl && CERTIFICATE_ERROR.test(seen)) {
      hint = 'its TLS certificate is not trusted; set KAFKA_SSL_CA_FILE to the CA that signed it';
    } else if (ssl && NOT_TLS.test(seen)) {
      hint = 'it did not complete a TLS handshake; is this a TLS listener? For a plaintext one unset KAFKA_SSL and the KAFKA_SSL_* files';
    } else if (!ssl) {
      hint = 'is it running, and is this a plaintext listener? For a TLS listener set KAFKA_SSL=true (and KAFKA_SSL_CA_FILE for a private CA); for a SASL one KAFKA_SASL_MECHANISM';
    } else {
      hint = 'is it running and reachable?';
    }
    super(`cannot connect to Kafka at ${brokers.join(',')}: ${hint} (${seen})`, { cause: error });
  }
}

/**
 * kafkajs messages that are noise at warn/error level: every error response it is about to retry ("Response …",
 * e.g. a coordinator still loading — a real failure surfaces as the caller's error), and its caution that bounded
 * retries weaken idempotence (bounded retries are deliberate: callers must learn of an outage, not hang).
 */
function quietened(message: string): boolean {
  return message.startsWith('Response ') || message.startsWith('Limiting retries for the idempotent producer');
}

/**
 * kafkajs's DefaultPartitioner, the Java client's rule, with a fast murmur2: a record's own partition if it has one,
 * else its key's murmur2 partition, else round robin over the partitions that have a leader.
 */
const javaCompatiblePartitioner: kafkajs.ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }) => {
    if (message.partition !== undefined && message.partition !== null) return message.partition;
    if (message.key !== undefined && message.key !== null) {
      return keyPartition(typeof message.key === 'string' ? Buffer.from(message.key) : message.key, partitionMetadata.length);
    }
    const next = (counters.get(topic) ?? Math.floor(Math.random() * 2 ** 31)) + 1;
    counters.set(topic, next);
    const led = partitionMetadata.filter((partition) => partition.leader >= 0);
    const candidates = led.length > 0 ? led : partitionMetadata;
    return candidates[(next & 0x7fffffff) % candidates.length]!.partitionId;
  };
};

/**
 * A producer with the settings every service wants: the Java client's murmur2 partitioner (so keys land where other
 * clients would put them) and idempotence so retries never duplicate or reorder — kept sound after a failed send
 * (see RenewingProducer).
 */
export function createProducer(kafka: kafkajs.Kafka, config: kafkajs.ProducerConfig = {}): Producer {
  return new RenewingProducer(() => kafka.producer({ createPartitioner: javaCompatiblePartitioner, idempotent: true, maxInFlightRequests: 5, ...config }));
}

/**
 * An idempotent producer whose sequence numbers are never trusted after a send failed. kafkajs rewinds the sequence of
 * every partition of a failed request, also of those the broker appended (one record too large fails the request for
 * all; sendMessages.js), so the next batch to such a partition reuses numbers already written: refused as out of order
 * from then on, or, when its count happens to match, acknowledged as a duplicate and silently dropped. So the send after
 * a failure goes through a fresh producer (a new producer id, sequences from 0); the old one is disconnected once the
 * sends it still carries have settled.
 */
class RenewingProducer implements Producer {
  readonly #create: () => kafkajs.Producer;
  #current: kafkajs.Producer;
  #stale = false;
  #renewal: Promise<kafkajs.Producer> | undefined;
  /** The sends the current producer carries: a retired producer is disconnected once they have settled. */
  #carried = new Set<Promise<unknown>>();
  readonly #retiring = new Set<Promise<void>>();

  constructor(create: () => kafkajs.Producer) {
    this.#create = create;
    this.#current = create();
  }

  connect(): Promise<void> {
    return this.#current.connect();
  }

  async disconnect(): Promise<void> {
    await this.#renewal?.catch(() => undefined);
    await Promise.all([...this.#retiring]);
    await this.#current.disconnect();
  }

  send(record: kafkajs.ProducerRecord): Promise<kafkajs.RecordMetadata[]> {
    return this.#through((producer) => producer.send(record));
  }

  sendBatch(batch: kafkajs.ProducerBatch): Promise<kafkajs.RecordMetadata[]> {
    return this.#through((producer) => producer.sendBatch(batch));
  }

  async #through<T>(operation: (producer: kafkajs.Producer) => Promise<T>): Promise<T> {
    const producer = this.#stale ? await this.#renew() : this.#current;
    const carried = this.#carried;
    const sending = operation(producer);
    carried.add(sending);
    try {
      return await sending;
    } catch (error) {
      if (producer === this.#current) this.#stale = true;
      throw error;
    } finally {
      carried.delete(sending);
    }
  }

  /** One fresh producer for all sends waiting on it; a failed connect leaves the producer stale for the next send. */
  #renew(): Promise<kafkajs.Producer> {
    this.#renewal ??= (async () => {
      const fresh = this.#create();
      try {
        await fresh.connect();
      } finally {
        this.#renewal = undefined;
      }
      const [old, carried] = [this.#current, this.#carried];
      [this.#current, this.#carried, this.#stale] = [fresh, new Set(), false];
      const retired = Promise.allSettled([...carried]).then(() => old.disconnect()).catch(() => undefined).finally(() => this.#retiring.delete(retired));
      this.#retiring.add(retired);
      return fresh;
    })();
    return this.#renewal;
  }
}

/**
 * Consumer-group settings shared by the services: a member that dies without leaving (kill -9, a lost host) is
 * replaced after 10 s instead of kafkajs's default 30 s, so its partitions do not sit idle that long.
 */
export const GROUP_TIMEOUTS = { sessionTimeout: 10_000, heartbeatInterval: 1_000, rebalanceTimeout: 30_000 } as const;

/** A header's value as a string (Kafka headers arrive as Buffers, possibly repeated). */
export function headerValue(headers: kafkajs.IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/**
 * Retries `operation` while it fails with an error Kafka marks retriable (e.g. NOT_COORDINATOR while a new group's
 * coordinator loads). Some admin calls (fetchOffsets, setOffsets) do not retry those by themselves.
 */
export async function retryRetriable<T>(operation: () => Promise<T>, attempts = 10, delayMs = 200): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= attempts || (error as { retriable?: boolean }).retriable !== true) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs * attempt));
    }
  }
}

/**
 * Calls `onFatal` (once) when the consumer stopped for good: kafkajs gave up and will not restart it, or, with
 * `maxRestarts`, it crashed that many times more without a fetch in between (kafkajs restarts forever when, e.g., the
 * topic was deleted). The process should then exit and be restarted by its supervisor rather than linger, alive but idle.
 */
export function onFatalCrash(consumer: kafkajs.Consumer, onFatal: (error: Error) => void, { maxRestarts = Infinity } = {}): void {
  let crashes = 0;
  let told = false;
  consumer.on(consumer.events.FETCH, () => (crashes = 0));
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    crashes += 1;
    if (told || (payload.restart && crashes <= maxRestarts)) return;
    told = true;
    onFatal(payload.error);
  });
}

/** Whether `error` (or what it wraps) is the broker refusing a record or a request as larger than it accepts. */
export function isRecordTooLarge(error: unknown): boolean {
  for (let current = error as { type?: string; cause?: unknown; originalError?: unknown } | undefined, depth = 0; current && depth < 5; depth += 1) {
    if (current.type === 'MESSAGE_TOO_LARGE' || current.type === 'RECORD_LIST_TOO_LARGE') return true;
    current = (current.cause ?? current.originalError) as typeof current;
  }
  return false;
}

/**
 * A partition assigner that gives partition N of every subscribed topic to the same member: a dispatcher pool keys
 * an endpoint's commands alike in its command topic and in every retry topic (deliveries.ts commandKey), so each
 * endpoint is served by one member at a time and per-endpoint limits hold for the pool. It also assigns a topic only to
 * members subscribed to it, so during a rolling deploy no partition goes to a member that will not read it. Members
 * of an older version (round robin only) are answered with round robin until they are gone.
 */
export const coPartitionedAssigner: kafkajs.PartitionAssigner = ({ cluster }) => ({
  name: 'CoPartitionedAssigner',
  version: 1,
  async assign({ members, topics }) {
    const subscribed = new Map(members.map(({ memberId, memberMetadata }) => [memberId, new Set(AssignerProtocol.MemberMetadata.decode(memberMetadata)?.topics ?? [])]));
    const sorted = [...subscribed.keys()].sort();
    const assignment = new Map<string, Record<string, number[]>>(sorted.map((memberId) => [memberId, {}]));
    for (const topic of topics) {
      const readers = sorted.filter((memberId) => subscribed.get(memberId)!.has(topic));
      if (readers.length === 0) continue;
      for (const { partitionId } of cluster.findTopicPartitionMetadata(topic)) {
        const owner = assignment.get(readers[partitionId % readers.length]!)!;
        (owner[topic] ??= []).push(partitionId);
      }
    }
    return [...assignment].map(([memberId, topicPartitions]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: topicPartitions, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: 'CoPartitionedAssigner', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
  },
});

/** The assigners a dispatcher group offers, preferred first; round robin is what members of older versions offer. */
export const DISPATCHER_ASSIGNERS: kafkajs.PartitionAssigner[] = [coPartitionedAssigner, kafkajs.PartitionAssigners.roundRobin];
