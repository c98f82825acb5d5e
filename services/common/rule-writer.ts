/**
 * Changes rules the only way they change: by producing to the compacted event-rules topic, keyed by rule id.
 * A rule is checked before it is written (errors name the field); deleting writes a tombstone.
 */
import { contracts, type EventRule, type EventRuleInput, type ValidationIssue } from '../../schemas/index.ts';
import { createProducer, type Kafka, type Producer } from './kafka.ts';
import type { Codec, SchemaRegistryClient } from './registry.ts';
import { checkRule } from './rules.ts';

export class RuleValidationError extends Error {
  override name = 'RuleValidationError';
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    super(`invalid rule, nothing published:\n${issues.map((issue) => `  ${issue.field}: ${issue.reason}`).join('\n')}`);
    this.issues = issues;
  }
}

export class RuleWriter {
  readonly #producer: Producer;
  readonly #codec: Codec<EventRule>;
  readonly #topic: string;

  private constructor(producer: Producer, codec: Codec<EventRule>, topic: string) {
    this.#producer = producer;
    this.#codec = codec;
    this.#topic = topic;
  }

  static async create(kafka: Kafka, registry: SchemaRegistryClient, topic: string): Promise<RuleWriter> {
    const codec = await registry.codec(`${topic}-value`, contracts.eventRule);
    const producer = createProducer(kafka);
    await producer.connect();
    return new RuleWriter(producer, codec, topic);
  }

  /** Validates and writes rules (`updatedAt` defaults to now); resolves once Kafka acknowledged them. */
  async put(...inputs: Array<Omit<EventRuleInput, 'updatedAt'> & { updatedAt?: number }>): Promise<EventRule[]> {
    const rules = inputs.map((input) => {
      const checked = checkRule({ ...input, updatedAt: input.updatedAt ?? Date.now() });
      if (!checked.ok) throw new RuleValidationError(checked.issues);
      return checked.rule;
    });
    await this.#producer.send({ topic: this.#topic, acks: -1, messages: rules.map((rule) => ({ key: rule.id, value: this.#codec.encode(rule) })) });
    return rules;
  }

  /** Writes tombstones: the rules table deletes these ids. */
  async delete(...ids: string[]): Promise<void> {
    await this.#producer.send({ topic: this.#topic, acks: -1, messages: ids.map((id) => ({ key: id, value: null })) });
  }

  async close(): Promise<void> {
    await this.#producer.disconnect();
  }
}
