/**
 * The dispatcher: turns delivery commands into signed POSTs and records every attempt on the delivery log. This module
 * only assembles the parts and runs their lifecycle:
 *
 *   command source (consumer, offsets, pause/seek, rebalances)
 *     → delivery handler: policy (pure decisions) → attempt runner (render, sign, send) → policy (judge the result)
 *     → recorder (delivery-log record and follow-ups, acknowledged before the offset moves)
 */
import type { Registry } from 'prom-client';
import { contracts } from '../../schemas/index.ts';
import { formatBytes, type BaseConfig } from '../common/config.ts';
import { createKafka, createProducer, DISPATCHER_ASSIGNERS, GROUP_TIMEOUTS, headerValue, kafkaConnection, type Producer } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { createMetrics, startOpsServer, type OpsServer } from '../common/ops-server.ts';
import { OutputQueue } from '../common/output-batch.ts';
import { registryConnection, SchemaRegistryClient } from '../common/registry.ts';
import { RuleWriter } from '../common/rule-writer.ts';
import { RulesTable } from '../common/rules-table.ts';
import { prepareCluster } from '../common/setup.ts';
import { DEFAULT_POOL, retryTopicOf, topicNames, type TopicNames } from '../common/topics.ts';
import { AttemptRunner } from './attempt-runner.ts';
import { CommandSource } from './command-source.ts';
import { DeliveryHandler } from './delivery-handler.ts';
import { CircuitBreakers, EndpointSlots, RateLimiter, Semaphore } from './isolation.ts';
import { dispatcherMetrics } from './metrics.ts';
import type { PolicySettings } from './policy.ts';
import { NOT_BEFORE_HEADER, Recorder } from './recorder.ts';
import { RetryPolicy } from './retry-policy.ts';
import { EndpointHealthTable, RuleHealth } from './rule-health.ts';
import { Sender } from './sender.ts';
import { createAddressGuard } from '../common/ssrf.ts';

export interface DispatcherSettings {
  groupId: string;
  pool: string;
  /** What this pool offers; rules' delegate selectors must all be among them. */
  tags: string[];
  httpHost: string;
  httpPort: number;
  /** CIDRs and host names dialled although not public (the SSRF guard's allowlist). */
  allowNetworks: string[];
  /** Every request through this HTTP(S) proxy (CONNECT): deliveries leave from its address. */
  proxy?: URL | undefined;
  connectTimeoutMs: number;
  attemptTimeoutMs: number;
  /** Requests on the wire at once, over all endpoints. */
  maxInFlight: number;
  maxInFlightPerEndpoint: number;
  /** Commands that may wait for one endpoint's slot before further ones go to the retry path. */
  maxWaitingPerEndpoint: number;
  /** Commands waiting for an endpoint or for the wire, over all endpoints: past it, reading waits. */
  maxQueued: number;
  /** Bytes of commands and their rendered bodies held at once: past it, reading waits. */
  maxHeldBytes: number;
  /** Bytes of rendered bodies waiting for one endpoint's slot: past it, its overflow goes to the retry path. */
  maxWaitingBytesPerEndpoint: number;
  /** With the waiting room half full, a command past an endpoint's waiting list waits only if its turn comes within this. */
  maxQueueWaitMs: number;
  breakerFailures: number;
  breakerOpenMs: number;
  /** A delivery not ended this long after the matcher created it is dead-lettered as expired. */
  maxAgeMs: number;
  /** A rule whose endpoint has failed without a single success this long is disabled. */
  disableAfterMs: number;
  /** Partitions handled at the same time. */
  concurrency: number;
  userAgent: string;
  /** Bytes of each request and response body the delivery log keeps (with the whole body's size and SHA-256). */
  logBodyBytes: number;
}

type DispatcherConfig = Pick<BaseConfig, 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL' | 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX' | 'TOPIC_PARTITIONS' | 'RETRY_SCHEDULE'>;

const SERVICE = 'dispatcher';

/**
 * The default maximum age: the whole retry schedule plus a margin for deferrals, jitter and time spent queued behind
 * a backlog — a quarter of the schedule, and at least an hour, so a short schedule does not expire deliveries that
 * merely waited out a restart.
 */
export function defaultMaxAgeMs(schedule: readonly number[]): number {
  const total = schedule.reduce((sum, delay) => sum + delay, 0);
  return total + Math.max(Math.ceil(total / 4), 3_600_000);
}

export class Dispatcher {
  readonly metrics: Registry;
  readonly #settings: DispatcherSettings;
  readonly #config: DispatcherConfig;
  readonly #logger: Logger;
  readonly #names: TopicNames;
  readonly #kafka: ReturnType<typeof createKafka>;
  readonly #producer: Producer;
  readonly #registry: SchemaRegistryClient;
  readonly #rules: RulesTable;
  readonly #retry: RetryPolicy;
  readonly #sender: Sender;
  readonly #breakers: CircuitBreakers;
  readonly #slots: EndpointSlots;
  readonly #wire: Semaphore;
  readonly #healthTable: EndpointHealthTable;
  readonly #health: RuleHealth;
  readonly #rateLimiter = new RateLimiter();
  readonly #counters: ReturnType<typeof dispatcherMetrics>;
  #source: CommandSource | undefined;
  #ruleWriter: RuleWriter | undefined;
  #ops: OpsServer | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #onFatal: (error: Error) => void;

  /** `onFatal` is told when the dispatcher cannot go on (outputs unwritable, consumer dead): exit, restart from the last commit. */
  constructor(config: DispatcherConfig, settings: DispatcherSettings, logger: Logger, onFatal: (error: Error) => void = () => undefined) {
    this.#settings = settings;
    this.#config = config;
    this.#logger = logger;
    this.#names = topicNames(config.TOPIC_PREFIX);
    this.#retry = new RetryPolicy(config.RETRY_SCHEDULE);
    this.metrics = createMetrics(SERVICE);
    this.#breakers = new CircuitBreakers({ failureThreshold: settings.breakerFailures, openMs: settings.breakerOpenMs });
    this.#slots = new EndpointSlots(settings.maxInFlightPerEndpoint, settings.maxWaitingPerEndpoint, { maxWaitingTotal: settings.maxQueued, maxQueueWaitMs: settings.maxQueueWaitMs, maxWaitingBytes: settings.maxWaitingBytesPerEndpoint });
    this.#wire = new Semaphore(settings.maxInFlight);
    this.#counters = dispatcherMetrics(this.metrics, {
      inFlight: () => this.#wire.held,
      held: () => this.#source?.held ?? 0,
      heldBytes: () => this.#source?.heldBytes ?? 0,
      breakers: () => {
        const counts = new Map<string, number>();
        for (const [, state] of this.#breakers.notClosed()) counts.set(state, (counts.get(state) ?? 0) + 1);
        return counts;
      },
    });
    this.#sender = new Sender({
      guard: createAddressGuard({ allow: settings.allowNetworks }),
      connectTimeoutMs: settings.connectTimeoutMs,
      attemptTimeoutMs: settings.attemptTimeoutMs,
      connectionsPerOrigin: settings.maxInFlightPerEndpoint,
      userAgent: settings.userAgent,
      logBodyBytes: settings.logBodyBytes,
      ...(settings.proxy ? { proxy: settings.proxy } : {}),
    });
    // Named by its origin: the URL's user:pass@ stays out of the log.
    if (settings.proxy) logger.info({ proxy: settings.proxy.origin }, 'every request goes through the egress proxy');
    this.#kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-${SERVICE}`, logger });
    this.#registry = new SchemaRegistryClient(registryConnection(config));
    this.#producer = createProducer(this.#kafka);
    this.#rules = new RulesTable({ kafka: this.#kafka, registry: this.#registry, topic: this.#names.eventRules, logger, groupPrefix: settings.groupId, onFatal });
    this.#healthTable = new EndpointHealthTable({ kafka: this.#kafka, registry: this.#registry, topic: this.#names.endpointHealth, logger, groupPrefix: settings.groupId, onFatal });
    this.#health = new RuleHealth(this.#healthTable, settings.pool);
    // A rule changed by anyone starts its failure clock over: an edited URL or a re-enabled rule gets a fresh chance.
    this.#rules.onChange(({ id }) => this.#health.forget(id));
    this.#onFatal = onFatal;
  }

  get opsPort(): number | undefined {
    return this.#ops?.port;
  }

  notReadyReason(): string | undefined {
    if (this.#rules.failure) return `the rules table stopped following its topic: ${this.#rules.failure.message}`;
    if (this.#healthTable.failure) return `the endpoint-health table stopped following its topic: ${this.#healthTable.failure.message}`;
    if (!this.#rules.bootstrapped) return 'reading the event-rules topic';
    if (!this.#healthTable.bootstrapped) return 'reading the endpoint-health topic';
    return this.#source?.consuming ? undefined : 'joining the consumer group';
  }

  /**
   * The retry topics this dispatcher drains, by name, with their delays: its schedule's, and every other one of its
   * pool that exists — a schedule changed (or two during a rolling deploy) must not strand the retries already waiting
   * in the topics of delays it no longer has.
   */
  async #retryTopics(): Promise<Map<string, number>> {
    const { pool } = this.#settings;
    const topics = new Map(this.#retry.delays.map((delay) => [this.#names.retry(delay, pool), delay]));
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      for (const name of await admin.listTopics()) {
        const retry = retryTopicOf(name, this.#config.TOPIC_PREFIX);
        if (retry?.pool === pool && !topics.has(name)) {
          topics.set(name, retry.delayMs);
          this.#logger.info({ topic: name }, 'draining a retry topic of a delay the schedule no longer has');
        }
      }
    } finally {
      await admin.disconnect();
    }
    return topics;
  }

  async start(): Promise<void> {
    const { pool, tags } = this.#settings;
    this.#ops = await startOpsServer({ host: this.#settings.httpHost, port: this.#settings.httpPort, metrics: this.metrics, notReadyReason: () => this.notReadyReason() });
    // A pool other than the default one brings its own command and retry topics.
    if (pool !== DEFAULT_POOL) await prepareCluster({ ...this.#config, KAFKA_CLIENT_ID: `${this.#config.KAFKA_CLIENT_ID}-${SERVICE}` }, this.#logger, [pool]);
    await this.#producer.connect();
    const [commandCodec, logCodec, poolCodec, healthCodec] = await Promise.all([
      this.#registry.codec(`${this.#names.deliveries(pool)}-value`, contracts.deliveryCommand),
      this.#registry.codec(`${this.#names.deliveryLog}-value`, contracts.deliveryLog),
      this.#registry.codec(`${this.#names.dispatcherPools}-value`, contracts.dispatcherPool),
      this.#registry.codec(`${this.#names.endpointHealth}-value`, contracts.endpointHealth),
    ]);
    this.#ruleWriter = await RuleWriter.create(this.#kafka, this.#registry, this.#names.eventRules, this.#rules);
    const recorder = new Recorder({
      service: SERVICE,
      pool,
      names: this.#names,
      outputs: new OutputQueue(this.#producer),
      commandCodec,
      logCodec,
      healthCodec,
      ruleWriter: this.#ruleWriter,
      currentRule: (id) => this.#rules.get(id),
      logger: this.#logger,
      onRecord: this.#counters.recorded,
      onInputDeadLettered: this.#counters.deadLetteredInput,
    });
    const policy: PolicySettings = { maxAgeMs: this.#settings.maxAgeMs, disableAfterMs: this.#settings.disableAfterMs, attemptTimeoutMs: this.#settings.attemptTimeoutMs, retry: this.#retry };
    const runner = new AttemptRunner({
      sender: this.#sender,
      breakers: this.#breakers,
      slots: this.#slots,
      wire: this.#wire,
      userAgent: this.#settings.userAgent,
      describeLimits: `${this.#settings.maxInFlightPerEndpoint} in flight, ${this.#settings.maxWaitingPerEndpoint} or ${formatBytes(this.#settings.maxWaitingBytesPerEndpoint)} waiting`,
      logBodyBytes: this.#settings.logBodyBytes,
    });
    const handler = new DeliveryHandler({
      registry: this.#registry, rules: this.#rules, runner, recorder, breakers: this.#breakers, rateLimiter: this.#rateLimiter, health: this.#health, policy,
      onLatency: this.#counters.observeLatency,
    });
    await Promise.all([this.#rules.start(), this.#healthTable.start()]);
    // Tells the matchers this pool exists and which tags it has, and the console what it may dial (compacted: the
    // latest announcement wins).
    await this.#producer.send({ topic: this.#names.dispatcherPools, acks: -1, messages: [{ key: pool, value: poolCodec.encode({ pool, tags, updatedAt: Date.now(), allowNetworks: this.#settings.allowNetworks }) }] });
    this.#logger.info({ pool, tags }, 'announced the pool');
    const retryDelays = await this.#retryTopics();
    this.#source = new CommandSource({
      consumer: this.#kafka.consumer({ groupId: this.#settings.groupId, allowAutoTopicCreation: false, ...GROUP_TIMEOUTS, maxWaitTimeInMs: 250, partitionAssigners: DISPATCHER_ASSIGNERS }),
      topics: [this.#names.deliveries(pool), ...retryDelays.keys()],
      concurrency: this.#settings.concurrency,
      dueAt: (topic, message) => {
        const delay = retryDelays.get(topic);
        return delay === undefined ? undefined : this.#retry.dueAt(Number(headerValue(message.headers, NOT_BEFORE_HEADER) ?? 0), Number(message.timestamp), delay);
      },
      maxHeld: this.#settings.maxInFlight + this.#settings.maxQueued,
      maxHeldBytes: this.#settings.maxHeldBytes,
      handle: (topic, partition, message, hold) => handler.handle(topic, partition, message, hold),
      onFatal: this.#onFatal,
      onRebalance: this.#counters.rebalanced,
      logger: this.#logger,
    });
    await this.#source.start();
    this.#sweepTimer = setInterval(() => {
      this.#rateLimiter.prune();
      this.#slots.sweep();
    }, 200);
  }

  /** Stops taking new commands, lets those in hand finish (bounded), commits, leaves the group. */
  async stop(): Promise<void> {
    clearInterval(this.#sweepTimer);
    await this.#source?.stop(Date.now() + this.#settings.attemptTimeoutMs + 5000);
    await Promise.all([this.#rules.stop(), this.#healthTable.stop()]);
    await this.#ruleWriter?.close();
    await this.#producer.disconnect();
    await this.#sender.close();
    await this.#ops?.close();
  }
}
