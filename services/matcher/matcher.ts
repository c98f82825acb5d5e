/**
 * The matcher: joins every workflow event against the rules table and emits one DeliveryCommand per matching rule.
 * At-least-once: an event's commands and dead-letters are acknowledged by Kafka (acks=all, idempotent producer) before
 * its offset is handed to the committer, so a crash at any point re-processes rather than loses; the deterministic
 * delivery id makes every duplicate recognisable downstream. The partitions handled at once share one output queue
 * and commits go on a timer, so at moderate rates a fetch costs one produce request, not one and a commit per
 * partition.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { contracts, type DeliveryCommand, type DeliveryLog, type TraceContext, type WorkflowEvent } from '../../schemas/index.ts';
import type { BaseConfig, ConnectionConfig } from '../common/config.ts';
import { deadLetter } from '../common/dead-letter.ts';
import { commandKey, deliveryLogRecord, newDeliveryCommand } from '../common/deliveries.ts';
import { kafkaConnection, createKafka, createProducer, GROUP_TIMEOUTS, onFatalCrash, type Consumer, type EachBatchPayload, type KafkaMessage, type Message, type Producer } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { createMetrics, startOpsServer, type OpsServer } from '../common/ops-server.ts';
import { MAX_EVENT_BYTES } from '../common/limits.ts';
import { assignedPartitions, OffsetCommitter } from '../common/offset-committer.ts';
import { OutputQueue, RecordTooLargeError } from '../common/output-batch.ts';
import { registryConnection, DecodeError, SchemaRegistryClient, type Codec } from '../common/registry.ts';
import { choosePool, PoolsTable } from '../common/pools.ts';
import { RulesTable } from '../common/rules-table.ts';
import { topicNames, type TopicNames } from '../common/topics.ts';
import { carriedContext, endWithError, SpanKind, SpanStatusCode, startSpan, traceContextFromHeaders, type Span } from '../common/trace-context.ts';
import { matchRule, RuleIndex, type MatchRule } from './rule-index.ts';

export interface MatcherSettings {
  groupId: string;
  httpHost: string;
  httpPort: number;
  /** Partitions processed at the same time by one instance. */
  concurrency: number;
}

type MatcherConfig = ConnectionConfig & Pick<BaseConfig, 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX'>;

const SERVICE = 'matcher';

function matcherMetrics(registry: Registry, ruleCounts: () => { all: number; enabled: number }) {
  return {
    eventsIn: new Counter({ name: 'matcher_events_in_total', help: 'Workflow events read', registers: [registry] }),
    eventsDone: new Counter({ name: 'matcher_events_done_total', help: 'Workflow events whose outputs Kafka acknowledged', registers: [registry] }),
    matches: new Counter({ name: 'matcher_matches_total', help: 'Events that matched at least one rule', registers: [registry] }),
    commandsOut: new Counter({ name: 'matcher_commands_out_total', help: 'Delivery commands written', registers: [registry] }),
    unroutable: new Counter({ name: 'matcher_unroutable_total', help: 'Matches no dispatcher pool could take (logged as failed)', registers: [registry] }),
    deadLettered: new Counter({ name: 'matcher_dead_lettered_total', help: 'Records sent to a dead-letter topic', labelNames: ['topic', 'reason'], registers: [registry] }),
    rules: new Gauge({
      name: 'matcher_rules',
      help: 'Rules in the table (all) and in the match index (enabled)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const { all, enabled } = ruleCounts();
        this.set({ state: 'all' }, all);
        this.set({ state: 'enabled' }, enabled);
      },
    }),
    lag: new Gauge({ name: 'matcher_consumer_lag', help: 'Records behind the end of each workflow-events partition', labelNames: ['partition'], registers: [registry] }),
  };
}

export class Matcher {
  readonly metrics: Registry;
  readonly #logger: Logger;
  readonly #names: TopicNames;
  readonly #settings: MatcherSettings;
  readonly #producer: Producer;
  readonly #consumer: Consumer;
  readonly #committer: OffsetCommitter;
  readonly #outputs: OutputQueue;
  readonly #table: RulesTable<MatchRule>;
  readonly #pools: PoolsTable;
  readonly #index = new RuleIndex();
  readonly #registry: SchemaRegistryClient;
  readonly #counters: ReturnType<typeof matcherMetrics>;
  #codec: Codec<DeliveryCommand> | undefined;
  #logCodec: Codec<DeliveryLog> | undefined;
  #ops: OpsServer | undefined;
  #consuming = false;
  #stopping = false;
  /** Batches being handled: stop() lets them finish, then commits, while this member still belongs to the group. */
  readonly #batches = new Set<Promise<void>>();

  readonly #onFatal: (error: Error) => void;

  /** `onFatal` is told when consuming stopped for good (kafkajs gave up); the process should exit and be restarted. */
  constructor(config: MatcherConfig, settings: MatcherSettings, logger: Logger, onFatal: (error: Error) => void = () => undefined) {
    this.#logger = logger;
    this.#onFatal = onFatal;
    this.#settings = settings;
    this.#names = topicNames(config.TOPIC_PREFIX);
    this.metrics = createMetrics(SERVICE);
    this.#counters = matcherMetrics(this.metrics, () => ({ all: this.#table.size, enabled: this.#index.size }));
    const kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-${SERVICE}`, logger });
    this.#registry = new SchemaRegistryClient(registryConnection(config));
    this.#producer = createProducer(kafka);
    // A fetch waits at most 1 s for data: shutdown waits for the fetch in flight, so this bounds it too.
    this.#consumer = kafka.consumer({ groupId: settings.groupId, allowAutoTopicCreation: false, ...GROUP_TIMEOUTS, maxWaitTimeInMs: 1000 });
    this.#committer = new OffsetCommitter(this.#consumer, logger);
    this.#outputs = new OutputQueue(this.#producer);
    // The matchers are the tables' dead-letterers (the dispatchers read the same topics and only skip what is invalid).
    const table = (topic: string, dlq: string, name: string) => ({
      kafka, registry: this.#registry, topic, logger, groupPrefix: settings.groupId, onFatal: (error: Error) => this.#fail(error),
      deadLetters: { topic: dlq, producer: this.#producer, service: SERVICE, watermarkGroup: `${settings.groupId}.${name}-dlq` },
    });
    this.#table = new RulesTable({ ...table(this.#names.eventRules, this.#names.eventRulesDlq, 'rules'), keep: matchRule });
    this.#table.onChange((change) => this.#index.apply(change));
    this.#pools = new PoolsTable(table(this.#names.dispatcherPools, this.#names.dispatcherPoolsDlq, 'pools'));
  }

  /** Ready once the rules table is bootstrapped and events are being consumed. */
  notReadyReason(): string | undefined {
    if (this.#table.failure) return `the rules table stopped following its topic: ${this.#table.failure.message}`;
    if (this.#pools.failure) return `the pools table stopped following its topic: ${this.#pools.failure.message}`;
    if (!this.#table.bootstrapped) return 'reading the event-rules topic';
    if (!this.#pools.bootstrapped) return 'reading the dispatcher-pools topic';
    return this.#consuming ? undefined : 'joining the consumer group';
  }

  /** The rules as this instance sees them, as much of each as matching needs (read-only use: status pages, tests). */
  get rules(): Pick<RulesTable<MatchRule>, 'get' | 'size' | 'bootstrapped'> {
    return this.#table;
  }

  /** The dispatcher pools as this instance sees them (read-only use: status pages, tests). */
  get pools(): Pick<PoolsTable, 'get' | 'size' | 'bootstrapped'> {
    return this.#pools;
  }

  get opsPort(): number | undefined {
    return this.#ops?.port;
  }

  async start(): Promise<void> {
    this.#ops = await startOpsServer({ host: this.#settings.httpHost, port: this.#settings.httpPort, metrics: this.metrics, notReadyReason: () => this.notReadyReason() });
    await this.#producer.connect();
    this.#codec = await this.#registry.codec(`${this.#names.deliveries()}-value`, contracts.deliveryCommand);
    this.#logCodec = await this.#registry.codec(`${this.#names.deliveryLog}-value`, contracts.deliveryLog);
    const began = Date.now();
    await Promise.all([this.#table.start(), this.#pools.start()]);
    this.#logger.info({ rules: this.#table.size, enabled: this.#index.size, ms: Date.now() - began }, 'rules ready; matching events');
    onFatalCrash(this.#consumer, (error) => this.#fail(error));
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, ({ payload }) => this.#committer.retain(assignedPartitions(payload.memberAssignment)));
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topic: this.#names.workflowEvents, fromBeginning: true });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#settings.concurrency,
      eachBatch: (payload) => this.#track(this.#handleBatch(payload)),
    });
    this.#consuming = true;
    this.#committer.start();
  }

  #fail(error: Error): void {
    this.#consuming = false;
    this.#onFatal(error);
  }

  /** Finishes the batch in flight, commits, leaves the group, then closes everything else. */
  async stop(): Promise<void> {
    this.#consuming = false;
    this.#stopping = true;
    await Promise.allSettled([...this.#batches]);
    await this.#committer.stop();
    await Promise.all([this.#consumer.disconnect(), this.#table.stop(), this.#pools.stop()]);
    await this.#producer.disconnect();
    await this.#ops?.close();
  }

  async #handleBatch({ batch, isRunning, isStale, heartbeat, resolveOffset }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    // This batch's outputs not yet acknowledged. Each failure is caught at once (an output can fail while the loop is
    // still reading) and the first one is rethrown once they have all settled.
    let pending: Array<Promise<void>> = [];
    let failure: unknown;
    let handled: string | undefined;
    let settled: string | undefined;
    let unsettled = 0;
    const settle = async () => {
      await Promise.all(pending);
      pending = [];
      if (failure !== undefined) throw failure;
      if (handled === undefined || handled === settled) return;
      settled = handled;
      this.#counters.eventsDone.inc(unsettled);
      unsettled = 0;
      resolveOffset(handled);
      this.#committer.set(topic, partition, String(BigInt(handled) + 1n));
      this.#counters.lag.set({ partition: String(partition) }, Math.max(0, Number(batch.highWatermark) - Number(handled) - 1));
      await heartbeat();
    };
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stopping) break;
      this.#counters.eventsIn.inc();
      let records: Array<[string, Message]>;
      const source = { topic, partition, message };
      const span = matchSpan(source);
      try {
        const event = await this.#registry.decode(contracts.workflowEvent, message.value, MAX_EVENT_BYTES);
        if (event.type === 'unknown') throw new DecodeError('unknown-event-type', "the event type is newer than this matcher's schema");
        records = this.#outputsFor(event, carriedContext(span));
        if (span.isRecording()) span.setAttributes({ 'workflow.event.id': event.eventId, 'workflow.event.type': event.type, 'webhook.commands': records.length });
      } catch (error) {
        if (!(error instanceof DecodeError)) {
          span.end();
          throw error; // registry down: the batch is retried, nothing skipped
        }
        span.setStatus({ code: SpanStatusCode.ERROR, message: `dead-lettered: ${error.reason}` });
        records = [this.#deadLetter(source, error.reason, error.message)];
      }
      if (records.length > 0) {
        // An output the broker refuses as too large (a topic configured below MAX_RECORD_BYTES) dead-letters the event.
        const sent = this.#outputs.send(records).catch((error: unknown) => {
          if (!(error instanceof RecordTooLargeError)) throw error;
          return this.#outputs.send([this.#deadLetter(source, 'too-large', error.message)]);
        });
        // The span lasts until the event's outputs are acknowledged (only followed when it records: no cost untraced).
        if (span.isRecording()) sent.then(() => span.end(), (error: Error) => endWithError(span, error));
        pending.push(sent.catch((error: unknown) => void (failure ??= error)));
      } else span.end();
      handled = message.offset;
      unsettled += 1;
      // Outputs pile up faster than Kafka takes them (or one event matched thousands of rules): wait for this batch's.
      if (this.#outputs.backlogged) await settle();
    }
    await settle();
  }

  #deadLetter(source: Parameters<typeof deadLetter>[0], reason: string, error: string): [string, Message] {
    this.#counters.deadLettered.inc({ topic: this.#names.workflowEventsDlq, reason });
    return [this.#names.workflowEventsDlq, deadLetter(source, SERVICE, reason, error)];
  }

  #track(batch: Promise<void>): Promise<void> {
    this.#batches.add(batch);
    const forget = () => void this.#batches.delete(batch);
    batch.then(forget, forget);
    return batch;
  }

  /** One command per matching rule, to the pool its delegate selectors choose; a failed log record when none can. */
  #outputsFor(event: WorkflowEvent, trace: TraceContext | null): Array<[string, Message]> {
    const rules = this.#index.match(event);
    if (rules.length === 0) return [];
    this.#counters.matches.inc();
    const now = Date.now();
    return rules.map((rule): [string, Message] => {
      const command = newDeliveryCommand(event, rule.id, now, { ruleVersion: { partition: rule.partition, offset: rule.offset }, trace });
      const route = choosePool(rule, event, this.#pools.values());
      if (!route.ok) {
        this.#counters.unroutable.inc();
        const log = deliveryLogRecord(command, rule, { outcome: 'failed', error: route.error }, null, now);
        return [this.#names.deliveryLog, { key: command.deliveryId, value: this.#logCodec!.encode(log) }];
      }
      this.#counters.commandsOut.inc();
      return [this.#names.deliveries(route.pool), { key: commandKey(command, rule.endpoint), value: this.#codec!.encode(command), headers: { 'delivery-id': command.deliveryId, 'event-type': event.type } }];
    });
  }
}

/** The span of matching one event: under the producer's trace when the event's headers carry one. */
function matchSpan({ topic, partition, message }: { topic: string; partition: number; message: KafkaMessage }): Span {
  const span = startSpan('match', traceContextFromHeaders(message.headers), { kind: SpanKind.CONSUMER });
  // Untraced, an event costs no attribute building (see attempt-trace.ts).
  if (span.isRecording()) {
    span.setAttributes({ 'messaging.system': 'kafka', 'messaging.operation.type': 'process', 'messaging.destination.name': topic, 'messaging.destination.partition.id': String(partition), 'messaging.kafka.offset': Number(message.offset) });
  }
  return span;
}
