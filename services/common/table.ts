/**
 * A compacted topic as a table (event rules, dispatcher pools): every instance reads the whole topic (all partitions,
 * its own consumer group, nothing committed) to its end before it reports ready, and keeps applying changes
 * afterwards. A tombstone deletes an entry. A message that fails validation is not applied — the last valid version
 * stays in force — and, when this table owns dead-lettering, goes to the dead-letter topic with the field and the
 * reason, once: a watermark kept as the offsets of a member-less consumer group survives restarts. Values that carry
 * secrets (rules) are dead-lettered redacted, or without a value when they cannot be decoded: secrets rest nowhere
 * but the table's own topic.
 *
 * Tables written by several writers at once (rules: operators, the CLI, the dispatcher disabling one) take conditional
 * writes: a message with a `based-on` header names the version of the entry it was made from, and is applied only if
 * that version is still in force. Every reader reads one log in one order, so all refuse the same stale writes: a
 * change made from an old copy never undoes a newer one, nor brings back a deleted entry.
 */
import { randomUUID } from 'node:crypto';
import type { Contract, ValidationIssue } from '../../schemas/index.ts';
import { deadLetter, REDACTED } from './dead-letter.ts';
import { headerValue, onFatalCrash, retryRetriable, type Admin, type Consumer, type Kafka, type KafkaMessage, type Producer } from './kafka.ts';
import { MAX_TABLE_ENTRY_BYTES } from './limits.ts';
import type { Logger } from './logger.ts';
import { DecodeError, type Codec, type SchemaRegistryClient } from './registry.ts';

/** Where an entry's current version sits on the topic. */
export interface EntryVersion {
  partition: number;
  offset: number;
}

/** The header of a conditional write: the version (versionOf) of the entry it was based on, or NO_ENTRY. */
export const BASED_ON_HEADER = 'based-on';
/** `based-on` of a write made where the entry did not exist (a create, or a deleted entry's tombstone repeated). */
export const NO_ENTRY = 'none';
/** How many refused conditional writes a table remembers, for their writers to ask about. */
const REMEMBERED_STALE_WRITES = 1000;

export interface TableChange<T> {
  id: string;
  previous: T | undefined;
  current: T | undefined;
}

/** `T` is what the topic carries; `S` what the table keeps of each value (all of it unless `keep` says otherwise). */
export interface TableOptions<T, S = T> {
  /** What the table holds, for group names and logs: `rules`, `pools`. */
  name: string;
  contract: Contract<T>;
  /** Validation beyond the Avro shape; issues name the field and why. */
  check: (value: T) => { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };
  /** The id an entry must be keyed by. */
  idOf: (value: T) => string;
  kafka: Kafka;
  registry: SchemaRegistryClient;
  topic: string;
  logger: Logger;
  /** Names this instance's consumer group (`<groupPrefix>.<name>.<random>`). */
  groupPrefix: string;
  /** When set, invalid messages are dead-lettered here (by one kind of service only, e.g. the matcher). */
  deadLetters?: { topic: string; producer: Producer; service: string; watermarkGroup: string };
  /**
   * Told when the table's consumer stopped for good (the table is stale from then on); the service should report not
   * ready and exit. Before the bootstrap ends, start() rejects instead.
   */
  onFatal?: (error: Error) => void;
  /** For values that carry secrets: the copy a dead-letter record may keep, and what was replaced (for its header). */
  redact?: { value: (value: T) => T; what: string };
  /**
   * What to keep of each valid value and of `version` (where it sits on the topic), for a service that needs only part
   * of it (the matcher: no secrets or headers, but the version its commands carry); get(), values() and changes then
   * hold that. Applied once per value, after validation. Without it, the table keeps the value (S is T).
   */
  keep?: (value: T, version: EntryVersion) => S;
  /** An entry's version, for conditional writes (see above); without it, `based-on` headers are ignored. */
  versionOf?: (entry: S) => number;
}

export class KafkaTable<T, S = T> {
  readonly #options: TableOptions<T, S>;
  readonly #keep: (value: T, version: EntryVersion) => S;
  /** Nothing per entry beyond what keep returns: with a million entries, every allocation per entry shows. */
  readonly #entries = new Map<string, S>();
  /** Per partition: the next offset to apply. */
  readonly #positions = new Map<number, number>();
  readonly #listeners: Array<(change: TableChange<S>) => void> = [];
  readonly #consumer: Consumer;
  readonly #admin: Admin;
  /** Per partition: the offset up to which invalid messages were already dead-lettered. */
  #watermarks = new Map<number, bigint>();
  /** Per partition: the end offset captured at start; bootstrapped once every partition reached it. */
  #pending = new Map<number, bigint>();
  #bootstrapped = false;
  #onBootstrapped: (() => void) | undefined;
  #onBootstrapFailed: ((error: Error) => void) | undefined;
  #failed: Error | undefined;
  #invalid = 0;
  /** Ids deleted since start: a conditional write based on a version of one is stale (the entry is gone). */
  readonly #deleted = new Set<string>();
  /** The latest refused conditional writes, as `partition:offset`, oldest first. */
  readonly #staleWrites = new Set<string>();
  #redactedCodec: Promise<Codec<T>> | undefined;

  constructor(options: TableOptions<T, S>) {
    this.#options = options;
    this.#keep = options.keep ?? ((value) => value as unknown as S);
    this.#consumer = options.kafka.consumer({ groupId: `${options.groupPrefix}.${options.name}.${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 1000,
      // Small fetches during the bootstrap keep the garbage of decoding 100k entries (and so the heap's peak) small.
      maxBytes: 1024 * 1024 });
    this.#admin = options.kafka.admin();
  }

  get size(): number {
    return this.#entries.size;
  }

  get bootstrapped(): boolean {
    return this.#bootstrapped;
  }

  /** Why the table stopped following its topic for good, if it did. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  /** Invalid rule messages met since start. */
  get invalidCount(): number {
    return this.#invalid;
  }

  get(id: string): S | undefined {
    return this.#entries.get(id);
  }

  /** Whether the table has applied the topic up to and including `offset` of `partition`. */
  reached({ partition, offset }: EntryVersion): boolean {
    return (this.#positions.get(partition) ?? 0) > offset;
  }

  /** Whether the conditional write at `version` was refused as stale (asked once reached; remembers the latest 1,000). */
  wasStale({ partition, offset }: EntryVersion): boolean {
    return this.#staleWrites.has(`${partition}:${offset}`);
  }

  /** Waits (at most `timeoutMs`) until reached(version); tells whether it was. */
  async waitUntilReached(version: EntryVersion, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.reached(version)) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }

  values(): IterableIterator<S> {
    return this.#entries.values();
  }

  /** Called for every applied change, during the bootstrap too (so indexes build as the table fills). */
  onChange(listener: (change: TableChange<S>) => void): void {
    this.#listeners.push(listener);
  }

  /** Resolves once the whole topic, as it was when start() was called, has been applied. */
  async start(): Promise<void> {
    const { topic, deadLetters } = this.#options;
    await this.#admin.connect();
    for (const { partition, offset, low } of await retryRetriable(() => this.#admin.fetchTopicOffsets(topic))) {
      if (BigInt(offset) > BigInt(low)) this.#pending.set(partition, BigInt(offset));
    }
    if (deadLetters) {
      const [committed] = await retryRetriable(() => this.#admin.fetchOffsets({ groupId: deadLetters.watermarkGroup, topics: [topic] }));
      for (const { partition, offset } of committed?.partitions ?? []) this.#watermarks.set(partition, BigInt(offset));
    }
    const bootstrapped = new Promise<void>((resolve, reject) => {
      this.#onBootstrapped = resolve;
      this.#onBootstrapFailed = reject;
    });
    this.#checkBootstrapped();
    // Restarts after a crash take 0.2 to 5 s; crashing five more times without a single fetch means it will not recover.
    onFatalCrash(this.#consumer, (error) => {
      this.#failed = error;
      this.#options.logger.error({ table: this.#options.name, err: error }, 'table consumer stopped for good; the table is stale');
      if (this.#bootstrapped) this.#options.onFatal?.(error);
      else this.#onBootstrapFailed?.(error);
    }, { maxRestarts: 5 });
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topic, fromBeginning: true });
    await this.#consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        for (const message of batch.messages) {
          await this.#apply(batch.partition, message);
          this.#positions.set(batch.partition, Number(message.offset) + 1);
        }
        const next = BigInt(batch.lastOffset()) + 1n;
        const target = this.#pending.get(batch.partition);
        if (target !== undefined && next >= target) this.#pending.delete(batch.partition);
        this.#checkBootstrapped();
        await heartbeat();
      },
    });
    await bootstrapped;
    this.#options.logger.info({ table: this.#options.name, entries: this.#entries.size, invalid: this.#invalid }, 'table bootstrapped');
  }

  async stop(): Promise<void> {
    await this.#consumer.disconnect();
    await this.#admin.disconnect();
  }

  #checkBootstrapped(): void {
    if (!this.#bootstrapped && this.#pending.size === 0) {
      this.#bootstrapped = true;
      this.#onBootstrapped?.();
    }
  }

  async #apply(partition: number, message: KafkaMessage): Promise<void> {
    const key = message.key?.toString();
    if (message.value === null) {
      if (!key) return this.#refuse(partition, message, undefined, 'no-key', `${this.#options.name} messages must be keyed by id`);
      return this.#isStale(key, partition, message) ? undefined : this.#set(key, undefined);
    }
    let decoded: T;
    try {
      decoded = await this.#options.registry.decode(this.#options.contract, message.value, MAX_TABLE_ENTRY_BYTES);
    } catch (error) {
      // Registry outages propagate: the batch is retried, nothing is skipped.
      if (!(error instanceof DecodeError)) throw error;
      return this.#refuse(partition, message, undefined, error.reason, error.message);
    }
    if (!key) return this.#refuse(partition, message, decoded, 'no-key', `${this.#options.name} messages must be keyed by id`);
    const checked = this.#options.check(decoded);
    if (!checked.ok) {
      return this.#refuse(partition, message, decoded, 'invalid', checked.issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; '));
    }
    const id = this.#options.idOf(checked.value);
    if (id !== key) return this.#refuse(partition, message, decoded, 'key-mismatch', `key "${key}" differs from id "${id}"`);
    if (this.#isStale(id, partition, message)) return;
    // Keyed by the value's own id string, not the message key's copy of it: one string per entry, not two.
    this.#set(id, this.#keep(checked.value, { partition, offset: Number(message.offset) }));
  }

  /**
   * A conditional write whose base is not the version in force: refused, a lost race rather than bad data (no dead
   * letter). An id this table has never seen takes any base: its history may have been compacted away.
   */
  #isStale(id: string, partition: number, message: KafkaMessage): boolean {
    const basedOn = this.#options.versionOf && headerValue(message.headers, BASED_ON_HEADER);
    if (basedOn === undefined) return false;
    const entry = this.#entries.get(id);
    const inForce = entry !== undefined ? String(this.#options.versionOf!(entry)) : this.#deleted.has(id) ? NO_ENTRY : undefined;
    if (inForce === undefined || inForce === basedOn) return false;
    this.#staleWrites.add(`${partition}:${message.offset}`);
    if (this.#staleWrites.size > REMEMBERED_STALE_WRITES) this.#staleWrites.delete(this.#staleWrites.values().next().value!);
    this.#options.logger.info({ table: this.#options.name, partition, offset: message.offset, key: id, basedOn, inForce }, 'conditional write refused: the entry changed since the copy it was made from');
    return true;
  }

  #set(id: string, current: S | undefined): void {
    const previous = this.#entries.get(id);
    if (current !== undefined) {
      this.#entries.set(id, current);
      this.#deleted.delete(id);
    } else if (previous === undefined) return;
    else {
      this.#entries.delete(id);
      this.#deleted.add(id);
    }
    for (const listener of this.#listeners) listener({ id, previous, current });
  }

  /** `decoded` is the message's value when it could be decoded (so a redacted copy can be dead-lettered). */
  async #refuse(partition: number, message: KafkaMessage, decoded: T | undefined, reason: string, error: string): Promise<void> {
    this.#invalid += 1;
    const key = message.key?.toString();
    this.#options.logger.warn({ table: this.#options.name, partition, offset: message.offset, key, reason, error }, 'message refused; the last valid version stays in force');
    const deadLetters = this.#options.deadLetters;
    const offset = BigInt(message.offset);
    if (!deadLetters || offset < (this.#watermarks.get(partition) ?? -1n)) return;
    const replacement = await this.#redacted(message, decoded);
    await deadLetters.producer.send({
      topic: deadLetters.topic,
      messages: [deadLetter({ topic: this.#options.topic, partition, message }, deadLetters.service, reason, error, replacement)],
    });
    const watermark = { partition, offset: String(offset + 1n) };
    await retryRetriable(() => this.#admin.setOffsets({ groupId: deadLetters.watermarkGroup, topic: this.#options.topic, partitions: [watermark] }));
    this.#watermarks.set(partition, offset + 1n);
  }

  /** The value a dead-letter copy may keep when values carry secrets: redacted and re-encoded, or none. */
  async #redacted(message: KafkaMessage, decoded: T | undefined): Promise<{ value: Buffer | null; note: string } | undefined> {
    const { redact, registry, topic, contract } = this.#options;
    if (!redact || message.value === null) return undefined;
    if (decoded === undefined) return { value: null, note: 'dropped: the value could not be decoded, so its secrets could not be redacted' };
    if (!this.#redactedCodec) {
      this.#redactedCodec = registry.codec(`${topic}-value`, contract);
      this.#redactedCodec.catch(() => (this.#redactedCodec = undefined)); // a registry outage: ask again next time
    }
    return { value: (await this.#redactedCodec).encode(redact.value(decoded)), note: `redacted: ${redact.what} replaced by ${REDACTED}` };
  }
}
