/**
 * The sender's floor, run as a child process of `npm run bench` so its CPU is its own: what the cheapest possible
 * sender spends per unit of work, in the same run, against the same receiver and broker as the pipeline.
 *
 *   post     a minimal undici loop: pre-rendered, pre-signed bodies, POSTed over `--connections` connections with
 *            undici's low-level dispatch() (the dispatcher's own path) and nothing else: no Kafka, no log, no retry
 *   consume  kafkajs eachBatch over a topic, counting records (no Avro decode)
 *   produce  kafkajs sendBatch of `--records` command-sized records, 1,000 per request, acks=all, idempotent
 *            (`--client platformatic`: the same two measures with @platformatic/kafka, the pure-TypeScript client
 *            weighed as kafkajs's successor: its consumer stream counting records, its idempotent send of the same
 *            batches. Measured beside kafkajs, not used by the product)
 *   work     the dispatcher's own work per delivery without any I/O, with its own modules: decode the command through
 *            the registry client, render and sign it (AttemptRunner.prepare), build and encode its delivery-log record.
 *            A lower bound: the pipeline adds the promises, queues and offset tracking of concurrent handling, and
 *            the garbage of thousands of commands in hand
 *
 * Prints one JSON line: { mode, client, units, seconds, cpuMicrosPerUnit } (CPU = user + system of this process, from
 * process.cpuUsage(), over the measured phase only; client is kafkajs or platformatic for consume and produce).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Consumer, MessagesStreamModes, ProduceAcks, Producer, type ConnectionOptions } from '@platformatic/kafka';
import { Agent, type Dispatcher } from 'undici';
import { parseCommandLine } from '../services/common/cli.ts';
import { baseSettings, connectionSettings, loadConfig } from '../services/common/config.ts';
import { createKafka, createProducer, kafkaConnection } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { contracts, validate } from '../schemas/index.ts';
import { deliveryLogRecord, newDeliveryCommand } from '../services/common/deliveries.ts';
import { MAX_COMMAND_BYTES } from '../services/common/limits.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { checkRule } from '../services/common/rules.ts';
import { DEFAULT_POOL, topicNames } from '../services/common/topics.ts';
import { AttemptRunner } from '../services/dispatcher/attempt-runner.ts';
import { CircuitBreakers, EndpointSlots, Semaphore } from '../services/dispatcher/isolation.ts';
import { Sender } from '../services/dispatcher/sender.ts';
import { sign } from '../services/dispatcher/signing.ts';
import { dispatcherSettings } from '../services/dispatcher/main.ts';
import { createAddressGuard } from '../services/common/ssrf.ts';
import { benchEvent, benchRule } from './workload.ts';

/** The dispatcher's default: the floor does the work a dispatcher does. */
const LOG_BODY_BYTES = loadConfig({ DISPATCHER_LOG_BODY_BYTES: dispatcherSettings.DISPATCHER_LOG_BODY_BYTES }, {}).DISPATCHER_LOG_BODY_BYTES;

const USAGE = `
usage: node bench/floor.ts post --url URL [--requests 20000] [--connections 50]
       node bench/floor.ts consume --topic T [--records 20000] [--client kafkajs|platformatic]
       node bench/floor.ts produce --topic T [--records 20000] [--bytes 600] [--client kafkajs|platformatic]
       node bench/floor.ts work [--records 20000]

The sender's floor for npm run bench (which runs it): CPU µs per unit of this process, as one JSON line. Kafka and
registry settings come from the environment (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_PREFIX and the TLS / SASL
settings).
`;
const { values, positionals } = parseCommandLine({
  allowPositionals: true,
  options: {
    help: { type: 'boolean', short: 'h' },
    url: { type: 'string' },
    requests: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '50' },
    topic: { type: 'string' },
    records: { type: 'string', default: '20000' },
    bytes: { type: 'string', default: '600' },
    client: { type: 'string', default: 'kafkajs' },
  },
}, USAGE, { post: [], consume: [], produce: [], work: [] });
const mode = positionals[0];
const client = values.client;
if (client !== 'kafkajs' && client !== 'platformatic') {
  process.stderr.write(`--client: kafkajs or platformatic, not ${client}\n`);
  process.exit(2);
}
// stdout carries the result line only.
const logger = createLogger('bench-floor', 'warn', { destination: process.stderr });

/** Runs `work` and reports the CPU it took per unit. */
async function measure(units: number, work: () => Promise<void>): Promise<void> {
  const cpu = process.cpuUsage();
  const began = performance.now();
  await work();
  const seconds = (performance.now() - began) / 1000;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ mode, ...(mode === 'consume' || mode === 'produce' ? { client } : {}), units, seconds: Number(seconds.toFixed(3)), cpuMicrosPerUnit: Number(((used.user + used.system) / units).toFixed(1)) }));
}

async function post(): Promise<void> {
  const url = new URL(values.url!);
  const count = Number(values.requests);
  const connections = Number(values.connections);
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const now = Date.now();
  // Rendered and signed before the clock starts: the floor is the cost of sending alone.
  const requests = Array.from({ length: count }, (_, index) => {
    const id = `msg_floor${index}`;
    const body = JSON.stringify({ type: 'task.completed', timestamp: new Date(now).toISOString(), data: { eventId: id, application: { id: 'bench-app' }, status: 'SUCCESS' } });
    return { body, headers: { ...sign(id, body, [secret], now), 'content-type': 'application/json', 'user-agent': 'floor' } };
  });
  const agent = new Agent({ connections });
  const send = ({ body, headers }: (typeof requests)[number]) => new Promise<void>((resolve, reject) => {
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: () => undefined, onResponseStart: () => undefined, onResponseData: () => undefined,
      onResponseEnd: () => resolve(), onResponseError: (_controller, error) => reject(error),
    };
    agent.dispatch({ origin: url.origin, path: url.pathname, method: 'POST', headers, body }, handler);
  });
  let next = 0;
  await measure(count, () => Promise.all(Array.from({ length: connections }, async () => {
    while (next < count) await send(requests[next++]!);
  })).then(() => undefined));
  await agent.close();
}

/** The benchmark's cluster, from the environment it gives this process (bench/support.ts serviceEnv). */
const cluster = () => kafkaConnection(loadConfig({ KAFKA_BROKERS: baseSettings.KAFKA_BROKERS, ...connectionSettings }));
const kafkaClient = () => createKafka({ ...cluster(), clientId: 'bench-floor', logger });

/** The same cluster, TLS and SASL settings as @platformatic/kafka takes them. */
function platformaticConnection(): ConnectionOptions & { clientId: string; bootstrapBrokers: string[] } {
  const { brokers, ssl, sasl } = cluster();
  return {
    clientId: 'bench-floor',
    bootstrapBrokers: brokers,
    ...(ssl ? { tls: ssl === true ? {} : ssl } : {}),
    ...(sasl ? { sasl: { mechanism: sasl.mechanism.toUpperCase() as 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512', username: sasl.username, password: sasl.password } } : {}),
  };
}

const floorGroup = () => `bench-floor-${randomBytes(4).toString('hex')}`;

async function consume(): Promise<void> {
  const limit = Number(values.records);
  if (client === 'platformatic') return consumePlatformatic(limit);
  const kafka = kafkaClient();
  const consumer = kafka.consumer({ groupId: floorGroup() });
  await consumer.connect();
  await consumer.subscribe({ topic: values.topic!, fromBeginning: true });
  let count = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  // Joining the group is inside the measure (kafkajs fetches and decodes ahead of the first batch handed over); it is a
  // one-off cost, a few hundredths of a µs per record at these counts.
  await measure(limit, async () => {
    void consumer.run({
      eachBatch: async ({ batch, resolveOffset }) => {
        count += batch.messages.length;
        resolveOffset(batch.lastOffset());
        if (count >= limit) done();
      },
    });
    await finished;
  });
  await consumer.disconnect();
}

/** consume with @platformatic/kafka: its stream of records from the earliest offset, joining the group inside the measure as above. */
async function consumePlatformatic(limit: number): Promise<void> {
  const consumer = new Consumer({ ...platformaticConnection(), groupId: floorGroup() });
  await measure(limit, async () => {
    const stream = await consumer.consume({ topics: [values.topic!], mode: MessagesStreamModes.EARLIEST, autocommit: true });
    await new Promise<void>((resolve, reject) => {
      let count = 0;
      stream.on('data', () => {
        count += 1;
        if (count === limit) resolve();
      });
      stream.on('error', reject);
    });
  });
  await consumer.close(true);
}

/** The records a produce measure sends, 1,000 per request, whichever client sends them (kafkajs ignores `topic`). */
function* produceBatches(topic: string, count: number): Generator<Array<{ topic: string; key: Buffer; value: Buffer }>> {
  const value = randomBytes(Number(values.bytes));
  const keys = Array.from({ length: 50 }, (_, index) => Buffer.from(`rule-${index}`));
  for (let sent = 0; sent < count; sent += 1000) {
    yield Array.from({ length: Math.min(1000, count - sent) }, (_, index) => ({ topic, key: keys[(sent + index) % 50]!, value }));
  }
}

async function produce(): Promise<void> {
  const count = Number(values.records);
  const topic = values.topic!;
  if (client === 'platformatic') {
    const producer = new Producer({ ...platformaticConnection(), idempotent: true, acks: ProduceAcks.ALL });
    // Connected before the clock starts, as kafkajs's connect() is below.
    await producer.metadata({ topics: [topic] });
    await measure(count, async () => {
      for (const messages of produceBatches(topic, count)) await producer.send({ messages });
    });
    await producer.close();
    return;
  }
  const producer = createProducer(kafkaClient());
  await producer.connect();
  await measure(count, async () => {
    for (const messages of produceBatches(topic, count)) await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
  });
  await producer.disconnect();
}

async function work(): Promise<void> {
  const config = loadConfig({ SCHEMA_REGISTRY_URL: baseSettings.SCHEMA_REGISTRY_URL, TOPIC_PREFIX: baseSettings.TOPIC_PREFIX, ...connectionSettings });
  const registry = new SchemaRegistryClient(registryConnection(config));
  const names = topicNames(config.TOPIC_PREFIX);
  const [commandCodec, logCodec] = await Promise.all([
    registry.codec(`${names.deliveries(DEFAULT_POOL)}-value`, contracts.deliveryCommand),
    registry.codec(`${names.deliveryLog}-value`, contracts.deliveryLog),
  ]);
  const checked = checkRule({ ...benchRule('bench-0', 'bench-app', 'http://127.0.0.1:9/hook', `whsec_${randomBytes(32).toString('base64')}`), updatedAt: Date.now() });
  const event = validate(contracts.workflowEvent, benchEvent(0, 'bench-app', 'wf'));
  if (!checked.ok || !event.ok) throw new Error('the bench rule or event does not validate');
  const rule = checked.rule;
  const count = Number(values.records);
  const now = Date.now();
  const commands = Array.from({ length: count }, (_, index) => commandCodec.encode(newDeliveryCommand({ ...event.value, eventId: `work-${index}` }, rule.id, now)));
  const runner = new AttemptRunner({
    sender: new Sender({ guard: createAddressGuard({ allow: [] }), connectTimeoutMs: 1000, attemptTimeoutMs: 1000, connectionsPerOrigin: 1, userAgent: 'floor', logBodyBytes: LOG_BODY_BYTES }),
    breakers: new CircuitBreakers({ failureThreshold: 5, openMs: 1000 }), slots: new EndpointSlots(1, 0), wire: new Semaphore(1), userAgent: 'floor', describeLimits: '',
    logBodyBytes: LOG_BODY_BYTES,
  });
  // What a fast endpoint answers, as the sender summarizes it.
  const response = { headers: { 'content-type': 'text/plain', 'content-length': '2' }, body: 'ok', bodyTruncated: false, bodyBytes: 2, bodySha256: createHash('sha256').update('ok').digest('hex') };
  const deliver = async (value: Buffer) => {
    const command = await registry.decode(contracts.deliveryCommand, value, MAX_COMMAND_BYTES);
    const prepared = runner.prepare(command, rule, Date.now());
    if (!prepared.ok) throw new Error(prepared.error);
    logCodec.encode(deliveryLogRecord(command, rule, { outcome: 'delivered', httpStatus: 200, latencyMs: 1, request: prepared.attempt.request, response }, DEFAULT_POOL));
  };
  // Before the clock starts: the schema lookup, and enough rounds for the JIT to settle, as it has in a running dispatcher.
  for (const value of commands.slice(0, 5000)) await deliver(value);
  await measure(count, async () => {
    for (const value of commands) await deliver(value);
  });
}

const modes: Record<string, () => Promise<void>> = { post, consume, produce, work };
if (!mode) {
  process.stderr.write(`${USAGE.trim()}\n`);
  process.exit(2);
}
await modes[mode]!();
process.exit(0);
