/**
 * The recorder: writes what a decision or an attempt leaves behind — the delivery-log record, its follow-up (a retry
 * command, a dead-letter copy, a rule disabled with its reason) and a change of the endpoint's failing-since clock —
 * and resolves only once Kafka acknowledged all of it, so the command's offset is committed after its consequences
 * are durable and never before.
 */
import type { DeliveryCommand, DeliveryLog, EndpointHealth, EventRule } from '../../schemas/index.ts';
import { deadLetter, deadLetterHeaders, fitted, type DeadLetterSource } from '../common/dead-letter.ts';
import { commandKey, deliveryLogRecord, endpointOf, type AttemptEntry } from '../common/deliveries.ts';
import type { Message } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { RecordTooLargeError, type OutputQueue } from '../common/output-batch.ts';
import type { Codec } from '../common/registry.ts';
import { RuleValidationError, StaleRuleError, type RuleWriter } from '../common/rule-writer.ts';
import { loggableUrl } from '../common/rules.ts';
import type { TopicNames } from '../common/topics.ts';
import type { DeadLetterReason } from './policy.ts';
import type { HealthChange } from './rule-health.ts';

export const NOT_BEFORE_HEADER = 'not-before';

export type RecordedFollowUp =
  | { kind: 'none' }
  | { kind: 'retry'; topicDelayMs: number; notBefore: number; /** The next attempt's number: the same after a deferral. */ attempt: number }
  | { kind: 'dead-letter'; reason: DeadLetterReason; error: string }
  | {
    kind: 'disable';
    reason: string;
    /** The URL the failing requests went to: an edited URL is not disabled for the old one's sake. */
    url: string;
    /** Keep the command in the dead-letter topic too, so it can be replayed once the rule is fixed and enabled. */
    deadLetter: boolean;
  };

export interface RecorderSettings {
  service: string;
  pool: string;
  names: TopicNames;
  outputs: OutputQueue;
  commandCodec: Codec<DeliveryCommand>;
  logCodec: Codec<DeliveryLog>;
  healthCodec: Codec<EndpointHealth>;
  ruleWriter: RuleWriter;
  /** The current version of a rule (the dispatcher's rules table). */
  currentRule: (id: string) => EventRule | undefined;
  logger: Logger;
  /** Told of every record written: metrics. */
  onRecord: (outcome: DeliveryLog['outcome'], followUp: RecordedFollowUp) => void;
  onInputDeadLettered: (reason: string) => void;
}

export class Recorder {
  readonly #settings: RecorderSettings;
  /** Rule versions a disable was already written for: concurrent failures of one version disable it once. */
  readonly #disabled = new WeakSet<EventRule>();

  constructor(settings: RecorderSettings) {
    this.#settings = settings;
  }

  /**
   * The delivery-log record of this attempt or decision, with its follow-up; resolves once all of it is acknowledged.
   * Records the broker refuses as too large end the delivery as dead-lettered `too-large` instead.
   */
  async record(command: DeliveryCommand, rule: EventRule | undefined, entry: AttemptEntry, followUp: RecordedFollowUp = { kind: 'none' }, health?: HealthChange): Promise<void> {
    const { names, pool, outputs, logCodec, healthCodec } = this.#settings;
    const records: Array<readonly [string, Message]> = [];
    if (health) records.push([names.endpointHealth, { key: health.ruleId, value: health.value && healthCodec.encode(health.value) }]);
    if (followUp.kind === 'retry') records.push([names.retry(followUp.topicDelayMs, pool), this.#retryMessage({ ...command, attempt: followUp.attempt, notBefore: followUp.notBefore }, rule)]);
    const dead = followUp.kind === 'dead-letter' ? followUp : followUp.kind === 'disable' && followUp.deadLetter ? { reason: 'rule-disabled', error: followUp.reason } : undefined;
    if (dead) records.push(this.#deadLetter(command, dead.reason, dead.error));
    records.push([names.deliveryLog, { key: command.deliveryId, value: logCodec.encode(deliveryLogRecord(command, rule, entry, pool)) }]);
    this.#settings.onRecord(entry.outcome, followUp);
    try {
      await Promise.all([outputs.send(records), followUp.kind === 'disable' ? this.#disable(command.ruleId, followUp.reason, followUp.url) : undefined]);
    } catch (error) {
      if (!(error instanceof RecordTooLargeError)) throw error;
      await this.#tooLarge(command, rule, entry, error);
    }
  }

  /**
   * Some record of this delivery was refused as too large (a topic configured below MAX_RECORD_BYTES): the delivery
   * ends here, dead-lettered with the reason, and its log record without the bodies. Should the broker refuse even
   * the command's copy, the copy keeps only its headers (with the value's size and hash).
   */
  async #tooLarge(command: DeliveryCommand, rule: EventRule | undefined, entry: AttemptEntry, refusal: RecordTooLargeError): Promise<void> {
    const { names, pool, outputs, logCodec } = this.#settings;
    const error = `too-large: ${refusal.message}`;
    const log: readonly [string, Message] = [names.deliveryLog, {
      key: command.deliveryId,
      value: logCodec.encode(deliveryLogRecord(command, rule, { ...entry, outcome: 'dead_lettered', error: entry.error ? `${entry.error}; ${error}` : error, request: null, response: null }, pool)),
    }];
    this.#settings.onRecord('dead_lettered', { kind: 'dead-letter', reason: 'too-large', error });
    try {
      await outputs.send([this.#deadLetter(command, 'too-large', error), log]);
    } catch (again) {
      if (!(again instanceof RecordTooLargeError)) throw again;
      await outputs.send([this.#deadLetter(command, 'too-large', error, 0), log]);
    }
  }

  #deadLetter(command: DeliveryCommand, reason: string, error: string, limit?: number): readonly [string, Message] {
    const { names, service, commandCodec } = this.#settings;
    const record = { key: command.ruleId, value: commandCodec.encode(command), headers: { 'delivery-id': command.deliveryId } };
    return [names.deliveriesDlq, fitted(record, deadLetterHeaders(service, reason, error), limit)];
  }

  #retryMessage(command: DeliveryCommand, rule: EventRule | undefined): Message {
    return { key: commandKey(command, rule && endpointOf(rule.url)), value: this.#settings.commandCodec.encode(command), headers: { 'delivery-id': command.deliveryId, [NOT_BEFORE_HEADER]: String(command.notBefore) } };
  }

  /** An input record that could not be read as a command, kept byte for byte with the reason. */
  deadLetterInput(source: DeadLetterSource, reason: string, error: string): Promise<void> {
    this.#settings.onInputDeadLettered(reason);
    return this.#settings.outputs.send([[this.#settings.names.deliveriesDlq, deadLetter(source, this.#settings.service, reason, error)]]);
  }

  /** Disables the rule's current version, once, unless it changed meanwhile in a way that makes the reason moot. */
  async #disable(ruleId: string, reason: string, url: string): Promise<void> {
    const current = this.#settings.currentRule(ruleId);
    if (!current?.enabled || current.url !== url || this.#disabled.has(current)) return;
    this.#disabled.add(current);
    const { updatedAt: _, ...draft } = current;
    try {
      // Made from this table's copy: should an operator have changed or deleted the rule since (a new secret, a new
      // URL), the disable is refused rather than writing the old copy back. The next failure judges the new version.
      await this.#settings.ruleWriter.change(ruleId, current, { ...draft, enabled: false, disabledReason: reason });
    } catch (error) {
      if (error instanceof StaleRuleError) {
        this.#settings.logger.info({ ruleId, url: loggableUrl(url), reason }, 'not disabled: the rule changed since the failure was judged');
        return;
      }
      // A rule no longer valid as it stands (every secret expired since it was written, say) cannot be rewritten; its
      // deliveries end anyway. Only a failed write to Kafka is worth starting over for.
      if (!(error instanceof RuleValidationError)) throw error;
      this.#settings.logger.warn({ ruleId, url: loggableUrl(url), reason, issues: error.issues }, 'could not disable the rule: it is no longer valid as it stands; fix or delete it');
      return;
    }
    this.#settings.logger.warn({ ruleId, url: loggableUrl(url), reason }, 'rule disabled');
  }
}
