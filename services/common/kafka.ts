/**
 * The only module that imports the Kafka client. Everything else gets clients and types from here, so the client can be
 * swapped (e.g. for @confluentinc/kafka-javascript, which offers the same API) in one place.
 */
import { connect as connectTcp, isIP } from 'node:net';
import { connect as connectTls } from 'node:tls';
import kafkajs from 'kafkajs';
import type { Logger } from './logger.ts';
import { keyPartition } from './murmur2.ts';

export type {
  Admin, Consumer, ConsumerConfig, EachBatchPayload, EachMessagePayload, IHeaders, ITopicConfig, Kafka, KafkaMessage,
  Message, Producer, ProducerConfig, RecordMetadata, Transaction,
} from 'kafkajs';

const { Kafka: KafkaClient, logLevel, CompressionTypes } = kafkajs;
export { CompressionTypes };

// kafkajs 2.2.4's request queue arms its throttle check with `throttledUntil - Date.now()`, a negative delay whenever it
// is not throttled; Node clamps that to 1 ms (the intended behaviour) but, since Node 24, warns on every call.
// Swallow exactly that warning and pass every other one to Node's own handlers.
const warningHandlers = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') for (const handler of warningHandlers) handler(warning);
});

export interface KafkaSettings {
  brokers: string[];
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

export function createKafka({ brokers, clientId, logger, retries = 5, connectionTimeoutMs = 3000 }: KafkaSettings): kafkajs.Kafka {
  const log = logger.child({ component: 'kafka' });
  return new KafkaClient({
    brokers,
    clientId,
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
 * clients would put them) and, unless a transactional id is set, idempotence so retries never duplicate or reorder.
 */
export function createProducer(kafka: kafkajs.Kafka, config: kafkajs.ProducerConfig = {}): kafkajs.Producer {
  return kafka.producer({
    createPartitioner: javaCompatiblePartitioner,
    idempotent: true,
    maxInFlightRequests: 5,
    ...config,
  });
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
