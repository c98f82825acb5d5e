/**
 * Changes rules the only way they change: by producing to the compacted event-rules topic, keyed by rule id.
 * A rule is checked before it is written (errors name the field); deleting writes a tombstone.
 *
 * Operators and the dispatcher change rules concurrently, each from the copy its own table holds, so their changes
 * are conditional (change()): based on the version they were made from, refused by every reader if another change
 * came first (see table.ts). A refused change is answered as StaleRuleError, and the copy in force is written again
 * after it: a compacted topic keeps only the last record per key, and that must be the one in force.
 */
import { contracts, type EventRule, type EventRuleInput, type ValidationIssue } from '../../schemas/index.ts';
import { createProducer, type Kafka, type Message, type Producer } from './kafka.ts';
import type { Codec, SchemaRegistryClient } from './registry.ts';
import { checkRule } from './rules.ts';
import type { RulesTable } from './rules-table.ts';
import { BASED_ON_HEADER, NO_ENTRY, type EntryVersion } from './table.ts';

/** How long a change waits for this writer's table to read it back before it is answered as written, unconfirmed. */
const CONFIRM_TIMEOUT_MS = 10_000;
/** Rewrites of the copy in force after a refused change, should other changes keep coming in between. */
const REPAIR_ATTEMPTS = 3;

export type RuleDraft = Omit<EventRuleInput, 'updatedAt'>;

export class RuleValidationError extends Error {
  override name = 'RuleValidationError';
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    super(`invalid rule, nothing published:\n${issues.map((issue) => `  ${issue.field}: ${issue.reason}`).join('\n')}`);
    this.issues = issues;
  }
}

/** A change was made from a copy of the rule that another change replaced (or deleted) first; nothing was applied. */
export class StaleRuleError extends Error {
  override name = 'StaleRuleError';
  readonly id: string;
  /** The rule in force now, if any. */
  readonly current: EventRule | undefined;
  constructor(id: string, current: EventRule | undefined) {
    super(`rule "${id}" was ${current ? `changed (now the version of ${new Date(current.updatedAt).toISOString()})` : 'deleted'} by another change while this one was made; nothing was applied: read it again and redo the change`);
    this.id = id;
    this.current = current;
  }
}

export class RuleWriter {
  readonly #producer: Producer;
  readonly #codec: Codec<EventRule>;
  readonly #topic: string;
  readonly #table: RulesTable | undefined;

  private constructor(producer: Producer, codec: Codec<EventRule>, topic: string, table: RulesTable | undefined) {
    this.#producer = producer;
    this.#codec = codec;
    this.#topic = topic;
    this.#table = table;
  }

  /** `table` follows `topic` (started by the caller): change() reads its own writes back there. */
  static async create(kafka: Kafka, registry: SchemaRegistryClient, topic: string, table?: RulesTable): Promise<RuleWriter> {
    const codec = await registry.codec(`${topic}-value`, contracts.eventRule);
    const producer = createProducer(kafka);
    await producer.connect();
    return new RuleWriter(producer, codec, topic, table);
  }

  /**
   * One change to rule `id` made from the copy `basedOn` (undefined: it did not exist), writing `next` (null deletes
   * it). Resolves with the rule as it then stands once this writer's table applied the change (after 10 s unread: as
   * written); rejects with StaleRuleError if another change came first, RuleValidationError if `next` is invalid.
   */
  async change(id: string, basedOn: EventRule | undefined, next: RuleDraft | null): Promise<EventRule | undefined> {
    const table = this.#table;
    if (!table) throw new Error('RuleWriter.change needs the rules table the writer reads its changes back from');
    // Strictly after the base, so the new version is never taken for the old one even within one millisecond.
    const rule = next && this.#checked({ ...next, updatedAt: Math.max(Date.now(), (basedOn?.updatedAt ?? 0) + 1) });
    const written = await this.#send(id, rule, basedOn ? String(basedOn.updatedAt) : NO_ENTRY);
    if (!(await table.waitUntilReached(written, CONFIRM_TIMEOUT_MS))) return rule ?? undefined;
    if (!table.wasStale(written)) return table.get(id);
    await this.#repair(id, table);
    throw new StaleRuleError(id, table.get(id));
  }

  /** Writes the copy in force again (or its tombstone), based on itself, until it is the topic's last record for `id`. */
  async #repair(id: string, table: RulesTable): Promise<void> {
    for (let attempt = 0; attempt < REPAIR_ATTEMPTS; attempt += 1) {
      const inForce = table.get(id);
      const written = await this.#send(id, inForce ?? null, inForce ? String(inForce.updatedAt) : NO_ENTRY);
      if (!(await table.waitUntilReached(written, CONFIRM_TIMEOUT_MS)) || !table.wasStale(written)) return;
    }
  }

  async #send(id: string, rule: EventRule | null, basedOn: string): Promise<EntryVersion> {
    const message: Message = { key: id, value: rule && this.#codec.encode(rule), headers: { [BASED_ON_HEADER]: basedOn } };
    const [acknowledged] = await this.#producer.send({ topic: this.#topic, acks: -1, messages: [message] });
    return { partition: acknowledged!.partition, offset: Number(acknowledged!.baseOffset) };
  }

  #checked(input: EventRuleInput): EventRule {
    const checked = checkRule(input);
    if (!checked.ok) throw new RuleValidationError(checked.issues);
    return checked.rule;
  }

  /**
   * Validates and writes rules unconditionally (`updatedAt` defaults to now), as a team producing rule messages
   * directly does; resolves once Kafka acknowledged them. Operators' and services' changes go through change().
   */
  async put(...inputs: Array<Omit<EventRuleInput, 'updatedAt'> & { updatedAt?: number }>): Promise<EventRule[]> {
    const rules = inputs.map((input) => this.#checked({ ...input, updatedAt: input.updatedAt ?? Date.now() }));
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
