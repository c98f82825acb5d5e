/**
 * The dispatcher: turns delivery commands into signed POSTs and records every attempt on the delivery log.
 *
 * - Commands come from the pool's deliveries topic and from the retry topics. Records of a partition are handled
 *   concurrently; its offset is committed only past records whose outputs (log record, retry or dead-letter record,
 *   rule update) Kafka acknowledged, so a kill -9 at any moment loses nothing (duplicates keep their webhook-id).
 * - A retry topic's partition is paused until its first record is due: nothing ever sleeps inside a handler.
 * - The current rule decides: a deleted or disabled rule stops pending retries, a rotated secret applies at once.
 * - Isolation: bounded in-flight requests in total and per endpoint, and a circuit breaker per endpoint; a saturated
 *   or open endpoint's commands go to the retry path instead of waiting, so healthy endpoints keep their pace.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { contracts, type DeliveryCommand, type DeliveryLog, type DeliveryOutcome, type EventRule } from '../../schemas/index.ts';
import type { BaseConfig } from '../common/config.ts';
import { deadLetter, deadLetterHeaders } from '../common/dead-letter.ts';
import { deliveryLogRecord } from '../common/deliveries.ts';
import { kafkaConnection, createKafka, createProducer, GROUP_TIMEOUTS, onFatalCrash, headerValue, type Consumer, type EachBatchPayload, type KafkaMessage, type Message, type Producer } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { MAX_COMMAND_BYTES } from '../common/limits.ts';
import { OffsetTracker } from '../common/offset-tracker.ts';
import { createMetrics, startOpsServer, type OpsServer } from '../common/ops-server.ts';
import { OutputQueue } from '../common/output-batch.ts';
import { registryConnection, DecodeError, SchemaRegistryClient, type Codec } from '../common/registry.ts';
import { RuleWriter } from '../common/rule-writer.ts';
import { prepareCluster } from '../common/setup.ts';
import { activeSecrets, loggableUrl } from '../common/rules.ts';
import { RulesTable } from '../common/rules-table.ts';
import { DEFAULT_POOL, topicNames, type TopicNames } from '../common/topics.ts';
import { CircuitBreakers, EndpointSlots, RateLimiter } from './isolation.ts';
import { renderPayload } from './payload.ts';
import { RetryPolicy } from './retry-policy.ts';
import { Sender, type SendResult } from './sender.ts';
import { sign } from './signing.ts';
import { createAddressGuard } from './ssrf.ts';

export interface DispatcherSettings {
  groupId: string;
  pool: string;
  /** What this pool offers; rules' delegate selectors must all be among them. */
  tags: string[];
  httpHost: string;
  httpPort: number;
  /** CIDRs and host names dialled although not public (the SSRF guard's allowlist). */
  allowNetworks: string[];
  connectTimeoutMs: number;
  attemptTimeoutMs: number;
  maxInFlight: number;
  maxInFlightPerEndpoint: number;
  /** Commands that may wait for an endpoint's slot before further ones are sent to the retry path. */
  maxWaitingPerEndpoint: number;
  breakerFailures: number;
  breakerOpenMs: number;
  /** Partitions handled at the same time. */
  concurrency: number;
  userAgent: string;
}

type DispatcherConfig = Pick<BaseConfig, 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL' | 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX' | 'TOPIC_PARTITIONS' | 'RETRY_SCHEDULE'>;

const SERVICE = 'dispatcher';
const NOT_BEFORE_HEADER = 'not-before';

function dispatcherMetrics(registry: Registry, inFlight: () => number, breakers: () => Map<string, number>) {
  return {
    attempts: new Counter({ name: 'dispatcher_attempts_total', help: 'Delivery-log records by outcome', labelNames: ['outcome'], registers: [registry] }),
    latency: new Histogram({
      name: 'dispatcher_request_duration_seconds',
      help: 'Time from sending a request to its response or failure',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
      registers: [registry],
    }),
    retries: new Counter({ name: 'dispatcher_retries_total', help: 'Commands written to a retry topic, by its delay', labelNames: ['delay'], registers: [registry] }),
    deadLettered: new Counter({ name: 'dispatcher_dead_lettered_total', help: 'Commands sent to the dead-letter topic', labelNames: ['reason'], registers: [registry] }),
    inFlight: new Gauge({ name: 'dispatcher_in_flight', help: 'Commands being handled', registers: [registry], collect() { this.set(inFlight()); } }),
    breakers: new Gauge({
      name: 'dispatcher_breakers',
      help: 'Endpoints whose circuit breaker is open or half-open',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [state, count] of breakers()) this.set({ state }, count);
      },
    }),
  };
}

export class Dispatcher {
  readonly metrics: Registry;
  readonly #settings: DispatcherSettings;
  readonly #logger: Logger;
  readonly #names: TopicNames;
  readonly #producer: Producer;
  readonly #consumer: Consumer;
  readonly #registry: SchemaRegistryClient;
  readonly #table: RulesTable;
  readonly #retry: RetryPolicy;
  readonly #sender: Sender;
  readonly #breakers: CircuitBreakers;
  readonly #slots: EndpointSlots;
  readonly #rateLimiter = new RateLimiter();
  readonly #counters: ReturnType<typeof dispatcherMetrics>;
  readonly #onFatal: (error: Error) => void;
  readonly #config: DispatcherConfig;
  readonly #trackers = new Map<string, OffsetTracker>();
  readonly #commits = new Map<string, { topic: string; partition: number; offset: string }>();
  readonly #kafka: ReturnType<typeof createKafka>;
  #outputs: OutputQueue | undefined;
  #commandCodec: Codec<DeliveryCommand> | undefined;
  #logCodec: Codec<DeliveryLog> | undefined;
  #ruleWriter: RuleWriter | undefined;
  #ops: OpsServer | undefined;
  #commitTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #capacityWaiters: Array<() => void> = [];
  #consuming = false;
  #stopping = false;

  constructor(config: DispatcherConfig, settings: DispatcherSettings, logger: Logger, onFatal: (error: Error) => void = () => undefined) {
    this.#settings = settings;
    this.#config = config;
    this.#logger = logger;
    this.#onFatal = onFatal;
    this.#names = topicNames(config.TOPIC_PREFIX);
    this.#retry = new RetryPolicy(config.RETRY_SCHEDULE);
    this.metrics = createMetrics(SERVICE);
    this.#breakers = new CircuitBreakers({ failureThreshold: settings.breakerFailures, openMs: settings.breakerOpenMs });
    this.#slots = new EndpointSlots(settings.maxInFlightPerEndpoint, settings.maxWaitingPerEndpoint);
    this.#counters = dispatcherMetrics(this.metrics, () => this.#inFlight, () => {
      const counts = new Map<string, number>();
      for (const [, state] of this.#breakers.notClosed()) counts.set(state, (counts.get(state) ?? 0) + 1);
      return counts;
    });
    this.#sender = new Sender({
      guard: createAddressGuard({ allow: settings.allowNetworks }),
      connectTimeoutMs: settings.connectTimeoutMs,
      attemptTimeoutMs: settings.attemptTimeoutMs,
      connectionsPerOrigin: settings.maxInFlightPerEndpoint,
      userAgent: settings.userAgent,
    });
    this.#kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-${SERVICE}`, logger });
    this.#registry = new SchemaRegistryClient(registryConnection(config));
    this.#producer = createProducer(this.#kafka);
    this.#consumer = this.#kafka.consumer({ groupId: settings.groupId, allowAutoTopicCreation: false, ...GROUP_TIMEOUTS, maxWaitTimeInMs: 250 });
    this.#table = new RulesTable({ kafka: this.#kafka, registry: this.#registry, topic: this.#names.eventRules, logger, groupPrefix: settings.groupId });
  }

  get opsPort(): number | undefined {
    return this.#ops?.port;
  }

  notReadyReason(): string | undefined {
    if (!this.#table.bootstrapped) return 'reading the event-rules topic';
    return this.#consuming ? undefined : 'joining the consumer group';
  }

  /** The topics this dispatcher consumes: its pool's commands and every retry topic. */
  get topics(): string[] {
    const { pool } = this.#settings;
    return [this.#names.deliveries(pool), ...[...new Set(this.#retry.delays)].map((delay) => this.#names.retry(delay, pool))];
  }

  async start(): Promise<void> {
    this.#ops = await startOpsServer({ host: this.#settings.httpHost, port: this.#settings.httpPort, metrics: this.metrics, notReadyReason: () => this.notReadyReason() });
    // A pool other than the default one brings its own command and retry topics.
    if (this.#settings.pool !== DEFAULT_POOL) await prepareCluster({ ...this.#config, KAFKA_CLIENT_ID: `${this.#config.KAFKA_CLIENT_ID}-${SERVICE}` }, this.#logger, [this.#settings.pool]);
    await this.#producer.connect();
    this.#outputs = new OutputQueue(this.#producer);
    this.#commandCodec = await this.#registry.codec(`${this.#names.deliveries(this.#settings.pool)}-value`, contracts.deliveryCommand);
    this.#logCodec = await this.#registry.codec(`${this.#names.deliveryLog}-value`, contracts.deliveryLog);
    this.#ruleWriter = await RuleWriter.create(this.#kafka, this.#registry, this.#names.eventRules);
    await this.#table.start();
    await this.#announce();
    onFatalCrash(this.#consumer, (error) => {
      this.#consuming = false;
      this.#onFatal(error);
    });
    // After a rebalance, offsets in flight may belong to partitions now owned elsewhere: track afresh.
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => this.#trackers.clear());
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.topics, fromBeginning: true });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#settings.concurrency,
      eachBatch: (payload) => this.#dispatchBatch(payload),
    });
    this.#consuming = true;
    this.#commitTimer = setInterval(() => {
      void this.#flushCommits();
      this.#rateLimiter.prune();
      this.#slots.sweep();
    }, 200);
  }

  /** Tells the matchers this pool exists and which tags it has (compacted: the latest announcement wins). */
  async #announce(): Promise<void> {
    const codec = await this.#registry.codec(`${this.#names.dispatcherPools}-value`, contracts.dispatcherPool);
    const { pool, tags } = this.#settings;
    await this.#producer.send({ topic: this.#names.dispatcherPools, acks: -1, messages: [{ key: pool, value: codec.encode({ pool, tags, updatedAt: Date.now() }) }] });
    this.#logger.info({ pool, tags }, 'announced the pool');
  }

  /** Stops taking new commands, lets those in flight finish (bounded), commits, leaves the group. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#consuming = false;
    const deadline = Date.now() + this.#settings.attemptTimeoutMs + 5000;
    while (this.#inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    clearInterval(this.#commitTimer);
    await this.#flushCommits();
    await Promise.all([this.#consumer.disconnect(), this.#table.stop()]);
    await this.#ruleWriter?.close();
    await this.#producer.disconnect();
    await this.#sender.close();
    await this.#ops?.close();
  }

  async #dispatchBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const key = `${batch.topic}:${batch.partition}`;
    let tracker = this.#trackers.get(key);
    if (!tracker) this.#trackers.set(key, (tracker = new OffsetTracker()));
    const isRetryTopic = batch.topic !== this.#names.deliveries(this.#settings.pool);
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stopping) return;
      if (isRetryTopic) {
        const due = Number(headerValue(message.headers, NOT_BEFORE_HEADER) ?? 0);
        if (due > Date.now()) return this.#pauseUntil(batch.topic, batch.partition, message.offset, due);
      }
      if (this.#inFlight >= this.#settings.maxInFlight) {
        // At the cap: wait for a slot, and keep the group membership alive meanwhile (the wait can be long).
        await this.#capacity();
        await heartbeat();
      }
      const current = tracker;
      current.start(message.offset);
      resolveOffset(message.offset);
      this.#inFlight += 1;
      void this.#handle(batch.topic, batch.partition, message).then(
        () => {
          this.#release();
          const offset = current.done(message.offset);
          if (offset !== undefined) this.#commits.set(key, { topic: batch.topic, partition: batch.partition, offset });
        },
        (error: Error) => {
          this.#release();
          // Outputs could not be written (Kafka down past retries): leave the offset uncommitted and start over.
          this.#logger.error({ err: error, topic: batch.topic, partition: batch.partition, offset: message.offset }, 'could not record a delivery; restarting from the last commit');
          this.#onFatal(error);
        },
      );
    }
    await heartbeat();
  }

  /** Waits for a free in-flight slot (the global cap). */
  async #capacity(): Promise<void> {
    while (this.#inFlight >= this.#settings.maxInFlight) await new Promise<void>((resolve) => this.#capacityWaiters.push(resolve));
  }

  #release(): void {
    this.#inFlight -= 1;
    this.#capacityWaiters.shift()?.();
  }

  #pauseUntil(topic: string, partition: number, offset: string, due: number): void {
    this.#consumer.pause([{ topic, partitions: [partition] }]);
    this.#consumer.seek({ topic, partition, offset });
    setTimeout(() => {
      if (!this.#stopping) this.#consumer.resume([{ topic, partitions: [partition] }]);
    }, due - Date.now()).unref();
  }

  async #flushCommits(): Promise<void> {
    if (this.#commits.size === 0) return;
    const offsets = [...this.#commits.values()];
    this.#commits.clear();
    await this.#consumer.commitOffsets(offsets).catch((error: Error) => this.#logger.warn({ err: error }, 'offset commit failed (a rebalance?); records will be redelivered'));
  }

  async #handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    let command: DeliveryCommand;
    try {
      command = await this.#registry.decode(contracts.deliveryCommand, message.value, MAX_COMMAND_BYTES);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.#counters.deadLettered.inc({ reason: error.reason });
      return this.#outputs!.send([[this.#names.deliveriesDlq, deadLetter({ topic, partition, message }, SERVICE, error.reason, error.message)]]);
    }
    const rule = this.#table.get(command.ruleId);
    if (!rule) return this.#record(command, undefined, { outcome: 'skipped', error: 'the rule was deleted' });
    if (!rule.enabled) return this.#record(command, rule, { outcome: 'skipped', error: `the rule is disabled${rule.disabledReason ? ` (${rule.disabledReason})` : ''}` });

    if (rule.rateLimitPerSecond !== null) {
      const waitMs = this.#rateLimiter.reserve(rule.id, rule.rateLimitPerSecond);
      // A short wait paces the rule in place; a backlog longer than the first retry delay goes to the retry path.
      if (waitMs > this.#retry.delays[0]!) return this.#defer(command, rule, waitMs, `rate limit of ${rule.rateLimitPerSecond}/s reached`);
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    const url = new URL(rule.url);
    const endpoint = url.origin;
    // Never queue behind an endpoint whose breaker is open.
    if (this.#breakers.state(endpoint) === 'open') return this.#defer(command, rule, this.#breakers.openFor(endpoint), `circuit breaker open for ${endpoint}`);
    const release = await this.#slots.acquire(endpoint);
    // Not before its requests in flight have had their answer or timed out: sooner, it would only be deferred again.
    if (!release) return this.#defer(command, rule, this.#settings.attemptTimeoutMs, `endpoint ${endpoint} is saturated (${this.#settings.maxInFlightPerEndpoint} in flight, ${this.#settings.maxWaitingPerEndpoint} waiting) and not answering`);
    // Decided only now: the breaker may have opened while this command waited, and half-open admits one trial.
    const admitted = this.#breakers.admit(endpoint);
    if (!admitted.ok) {
      release();
      return this.#defer(command, rule, admitted.retryInMs, `circuit breaker open for ${endpoint}`);
    }
    let result: SendResult;
    try {
      const body = renderPayload(command.event, rule);
      const signature = sign(command.deliveryId, body, activeSecrets(rule));
      result = await this.#sender.send(url, { ...rule.headers, ...signature }, body);
    } finally {
      release();
    }
    this.#counters.latency.observe(result.latencyMs / 1000);
    return this.#settle(command, rule, endpoint, result);
  }

  async #settle(command: DeliveryCommand, rule: EventRule, endpoint: string, result: SendResult): Promise<void> {
    const latencyMs = result.latencyMs;
    if (result.kind === 'blocked') return this.#record(command, rule, { outcome: 'blocked', error: result.error, latencyMs });
    if (result.kind === 'response' && result.status >= 200 && result.status < 300) {
      this.#breakers.success(endpoint);
      return this.#record(command, rule, { outcome: 'delivered', httpStatus: result.status, latencyMs });
    }
    if (result.kind === 'response' && result.status === 410) {
      this.#breakers.success(endpoint);
      const reason = `the endpoint answered 410 Gone at ${new Date().toISOString()}`;
      await this.#ruleWriter!.put({ ...rule, enabled: false, disabledReason: reason, updatedAt: Date.now() });
      this.#logger.warn({ ruleId: rule.id, url: loggableUrl(rule.url) }, 'rule disabled: endpoint answered 410 Gone');
      return this.#record(command, rule, { outcome: 'failed', httpStatus: 410, error: '410 Gone: the rule was disabled', latencyMs });
    }
    const status = result.kind === 'response' ? result.status : null;
    const error = result.kind === 'response' ? `HTTP ${result.status}` : result.error;
    // A client error other than 429 means the endpoint is up: it says nothing about the endpoint's health.
    if (status === null || status >= 500 || status === 429) this.#breakers.failure(endpoint);
    // 429/502/504 ask us to slow down: honour Retry-After, else wait at least twice the scheduled delay.
    const slowDown = status === 429 || status === 502 || status === 504;
    const scheduled = this.#retry.delays[command.attempt - 1] ?? 0;
    const retryAfterMs = result.kind === 'response' ? (result.retryAfterMs ?? (slowDown ? 2 * scheduled : undefined)) : undefined;
    const decision = this.#retry.afterFailure(command.attempt, retryAfterMs);
    if (!decision) {
      this.#counters.deadLettered.inc({ reason: 'exhausted' });
      const dead: Message = {
        key: rule.id,
        value: this.#commandCodec!.encode(command),
        headers: { 'delivery-id': command.deliveryId, ...deadLetterHeaders(SERVICE, 'exhausted', `gave up after ${command.attempt} attempts; last: ${error}`) },
      };
      return this.#record(command, rule, { outcome: 'dead_lettered', httpStatus: status, error, latencyMs }, [[this.#names.deliveriesDlq, dead]]);
    }
    const next = { ...command, attempt: command.attempt + 1, notBefore: decision.notBefore };
    this.#counters.retries.inc({ delay: String(decision.topicDelayMs) });
    return this.#record(command, rule, { outcome: 'retrying', httpStatus: status, error, latencyMs, nextAttemptAt: decision.notBefore }, [
      [this.#names.retry(decision.topicDelayMs, this.#settings.pool), this.#retryMessage(next)],
    ]);
  }

  /** Not attempted now (breaker open, endpoint saturated): back to the retry path with the same attempt number. */
  #defer(command: DeliveryCommand, rule: EventRule, waitMs: number, reason: string): Promise<void> {
    const decision = this.#retry.wait(waitMs);
    this.#counters.retries.inc({ delay: String(decision.topicDelayMs) });
    return this.#record(command, rule, { outcome: 'retrying', error: reason, nextAttemptAt: decision.notBefore }, [
      [this.#names.retry(decision.topicDelayMs, this.#settings.pool), this.#retryMessage({ ...command, notBefore: decision.notBefore })],
    ]);
  }

  #retryMessage(command: DeliveryCommand): Message {
    return {
      key: command.ruleId,
      value: this.#commandCodec!.encode(command),
      headers: { 'delivery-id': command.deliveryId, [NOT_BEFORE_HEADER]: String(command.notBefore) },
    };
  }

  /** Writes the delivery-log record of this attempt together with any follow-up records; resolves once all are acked. */
  #record(
    command: DeliveryCommand,
    rule: EventRule | undefined,
    entry: { outcome: DeliveryOutcome; httpStatus?: number | null; error?: string; latencyMs?: number; nextAttemptAt?: number },
    followUps: Array<readonly [string, Message]> = [],
  ): Promise<void> {
    const log = deliveryLogRecord(command, rule, entry, this.#settings.pool);
    this.#counters.attempts.inc({ outcome: entry.outcome });
    return this.#outputs!.send([...followUps, [this.#names.deliveryLog, { key: command.deliveryId, value: this.#logCodec!.encode(log) }]]);
  }
}
