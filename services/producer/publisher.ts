/**
 * The producer SDK a workflow engine embeds: validate, encode through the registry, and publish workflow and task
 * events to Kafka. Events are keyed by workflow execution id so one execution's events stay in order, sent by an
 * idempotent producer, and batched: calls within `lingerMs` share one produce request (of at most `maxBatchSize`
 * events and MAX_REQUEST_BYTES). Each record carries the caller's active OpenTelemetry trace context as W3C
 * `traceparent`/`tracestate` headers, so the webhook this event causes continues the caller's trace. This module is
 * the public surface of the `@workflow-webhooks/producer` package (packages/producer-sdk builds it).
 */
import { contracts, validate, type ValidationIssue, type WorkflowEvent, type WorkflowEventInput } from '../../schemas/index.ts';
import { CompressionTypes, createKafka, createProducer, type KafkaConnection, type Message, type Producer } from '../common/kafka.ts';
import { MAX_EVENT_BYTES, MAX_REQUEST_BYTES, recordBytes } from '../common/limits.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import { SchemaRegistryClient, type Codec, type RegistryConnection } from '../common/registry.ts';
import { topicNames } from '../common/topics.ts';
import { activeTraceContext, traceHeaders } from '../common/trace-context.ts';

export { EVENT_TYPES } from '../../schemas/index.ts';
export type { EventType, ValidationIssue, WorkflowEvent, WorkflowEventInput } from '../../schemas/index.ts';
export { KafkaConnectError, type KafkaConnection } from '../common/kafka.ts';
export { RegistryError, type RegistryConnection } from '../common/registry.ts';

/**
 * The WorkflowEvent Avro schema as it is registered under `<topic>-value` (named types inlined): the contract. A
 * producer in another language registers or looks up this schema with its own Confluent serializer.
 */
export const workflowEventSchema: object = contracts.workflowEvent.schema;

/**
 * Where to publish: `brokers` (+ `ssl`, `sasl` for a secured cluster) and `registryUrl` (+ `registryAuth`,
 * `registryCa`, `registryCertificate`). A service holding settings passes `...kafkaConnection(config), ...registryConnection(config)`.
 */
export interface PublisherOptions extends KafkaConnection, RegistryConnection {
  /** Defaults to the workflow-events topic of `topicPrefix`. */
  topic?: string;
  topicPrefix?: string;
  clientId?: string;
  logger?: Logger;
  /** How long a publish waits for others to share its produce request. */
  lingerMs?: number;
  /** Events per produce request at most. */
  maxBatchSize?: number;
  /** Retries of a failed produce or registry request before the caller gets an error. */
  retries?: number;
}

export interface InvalidEvent extends ValidationIssue {
  /** Position of the event in the publish call's input. */
  index: number;
  eventId?: string;
}

/** Thrown before anything is sent when an event does not satisfy the WorkflowEvent contract. */
export class EventValidationError extends Error {
  override name = 'EventValidationError';
  readonly invalid: InvalidEvent[];
  constructor(invalid: InvalidEvent[]) {
    super(`${invalid.length} invalid event field(s), nothing published:\n${invalid.map((i) => `  event ${i.index}${i.eventId ? ` (${i.eventId})` : ''}: ${i.field}: ${i.reason}`).join('\n')}`);
    this.invalid = invalid;
  }
}

/** Thrown when Kafka did not acknowledge some events after the retries; `notPublished` lists exactly those. */
export class PublishError extends Error {
  override name = 'PublishError';
  /** The events Kafka did not acknowledge, with their position in the publish call's input. */
  readonly notPublished: Array<{ index: number; event: WorkflowEvent }>;
  readonly published: number;
  constructor(notPublished: Array<{ index: number; event: WorkflowEvent }>, published: number, cause: unknown) {
    super(`${notPublished.length} event(s) not published (${published} were): ${(cause as Error)?.message ?? cause}`, { cause });
    this.notPublished = notPublished;
    this.published = published;
  }
}

/** Checks one event: the schema's rules plus the ones a producer must keep (no `unknown` type). */
export function checkEvent(input: unknown): { ok: true; event: WorkflowEvent } | { ok: false; issues: ValidationIssue[] } {
  const result = validate(contracts.workflowEvent, input);
  if (!result.ok) return result;
  if (result.value.type === 'unknown') {
    return { ok: false, issues: [{ field: 'type', reason: '"unknown" is reserved for readers that meet a newer event type; publish a concrete type' }] };
  }
  return { ok: true, event: result.value };
}

/** The partition key: one workflow run's events share a partition and so keep their order. */
export function eventKey(event: WorkflowEvent): string {
  return event.workflowExecutionId ?? event.pipelineExecutionId ?? event.eventId;
}

interface Pending {
  event: WorkflowEvent;
  message: Message;
  settle: (error?: unknown) => void;
}

export class Publisher {
  readonly topic: string;
  readonly #producer: Producer;
  readonly #codec: Codec<WorkflowEvent>;
  readonly #logger: Logger;
  readonly #lingerMs: number;
  readonly #maxBatchSize: number;
  #buffer: Pending[] = [];
  #bufferBytes = 0;
  /** The last produce request: each waits for the one before it, so the last settles after all of them. */
  #previous: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** The registry id of the WorkflowEvent schema every record carries. */
  get schemaId(): number {
    return this.#codec.schemaId;
  }

  private constructor(topic: string, producer: Producer, codec: Codec<WorkflowEvent>, logger: Logger, lingerMs: number, maxBatchSize: number) {
    this.topic = topic;
    this.#producer = producer;
    this.#codec = codec;
    this.#logger = logger;
    this.#lingerMs = lingerMs;
    this.#maxBatchSize = maxBatchSize;
  }

  /** Connects to Kafka and resolves the schema id once; fails with a clear error when either is unreachable. */
  static async create(options: PublisherOptions): Promise<Publisher> {
    // A library keeps stdout for its host: by default only warnings and errors, on stderr.
    const logger = (options.logger ?? createLogger('producer', 'warn', { destination: process.stderr })).child({ component: 'publisher' });
    const topic = options.topic ?? topicNames(options.topicPrefix).workflowEvents;
    const retries = options.retries ?? 5;
    const registry = new SchemaRegistryClient(options, { retries: Math.min(retries, 3) });
    const codec = await registry.codec(`${topic}-value`, contracts.workflowEvent);
    const { brokers, ssl, sasl } = options;
    const producer = createProducer(createKafka({ brokers, ssl, sasl, clientId: options.clientId ?? 'workflow-events-producer', logger, retries }));
    // Fails with KafkaConnectError, which names the setting to fix.
    await producer.connect();
    return new Publisher(topic, producer, codec, logger, options.lingerMs ?? 5, options.maxBatchSize ?? 500);
  }

  /**
   * Publishes one event or several. Resolves once Kafka has acknowledged every one of them. Invalid input throws
   * EventValidationError before anything is sent; events Kafka did not acknowledge are listed by PublishError.
   */
  async publish(input: WorkflowEventInput | readonly WorkflowEventInput[]): Promise<{ published: number }> {
    if (this.#closed) throw new Error('publisher is closed');
    const inputs: readonly unknown[] = Array.isArray(input) ? input : [input];
    const invalid: InvalidEvent[] = [];
    const events: WorkflowEvent[] = [];
    const values: Buffer[] = [];
    inputs.forEach((candidate, index) => {
      const checked = checkEvent(candidate);
      const eventId = (candidate as { eventId?: unknown } | null)?.eventId;
      const refuse = (issues: ValidationIssue[]) => invalid.push(...issues.map((issue) => ({ ...issue, index, ...(typeof eventId === 'string' ? { eventId } : {}) })));
      if (!checked.ok) return refuse(checked.issues);
      const value = this.#codec.encode(checked.event);
      // Consumers dead-letter larger events; refuse them here, where the caller can still act.
      if (value.length > MAX_EVENT_BYTES) return refuse([{ field: '(event)', reason: `encodes to ${value.length} bytes, more than the ${MAX_EVENT_BYTES} allowed` }]);
      events.push(checked.event);
      values.push(value);
    });
    if (invalid.length > 0) throw new EventValidationError(invalid);

    // Read now, in the caller's context: the records may be sent from a timer's.
    const trace = traceHeaders(activeTraceContext());
    const outcomes = await Promise.allSettled(events.map((event, index) => this.#enqueue(event, values[index]!, trace)));
    const failed = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? [{ index, event: events[index]!, error: outcome.reason as unknown }] : []));
    if (failed.length > 0) throw new PublishError(failed.map(({ index, event }) => ({ index, event })), events.length - failed.length, failed[0]!.error);
    return { published: events.length };
  }

  #enqueue(event: WorkflowEvent, value: Buffer, trace: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      // The record keeps the producer's own time, not occurredAt: brokers refuse record times far ahead of their clock
      // (Kafka 4: one hour by default), and time-based retention would delete a backfilled event at once.
      const message: Message = { key: eventKey(event), value, headers: { 'event-type': event.type, ...trace } };
      const bytes = recordBytes(message);
      // A request would grow past the limit: this event starts the next one.
      if (this.#bufferBytes + bytes > MAX_REQUEST_BYTES) this.#flushBuffer();
      this.#buffer.push({ event, message, settle: (error) => (error === undefined ? resolve() : reject(error)) });
      this.#bufferBytes += bytes;
      if (this.#buffer.length >= this.#maxBatchSize) this.#flushBuffer();
      else this.#timer ??= setTimeout(() => this.#flushBuffer(), this.#lingerMs);
    });
  }

  #flushBuffer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#bufferBytes = 0;
    if (batch.length === 0) return;
    // After the request before it: concurrent kafkajs sends may reach the broker in either order, and one execution's
    // events must stay in the order published.
    this.#previous = this.#previous
      .then(() => this.#producer.send({ topic: this.topic, messages: batch.map((pending) => pending.message), compression: CompressionTypes.None }))
      .then(
        () => batch.forEach((pending) => pending.settle()),
        (error: Error) => {
          this.#logger.error({ err: error, events: batch.length }, 'produce failed after retries');
          batch.forEach((pending) => pending.settle(error));
        },
      );
  }

  /** Sends whatever is buffered and waits for every outstanding produce request. */
  async flush(): Promise<void> {
    this.#flushBuffer();
    await this.#previous;
  }

  /** Flushes, then disconnects. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
    await this.#producer.disconnect();
  }
}

export const createPublisher = (options: PublisherOptions): Promise<Publisher> => Publisher.create(options);
