/**
 * The operator actions, written once for the console's API and the rules CLI: create, update, put, enable, rotate,
 * test, delete, delete-application, resend, replay, retire a pool. Each change writes one audit line naming who made
 * it (`by`); a change is made from the copy the caller's rules table holds, so one someone else made first is refused
 * (a `conflict`), never overwritten. The callers differ only in what they hold: the console keeps every resource
 * started, the CLI starts the ones a command uses (see OperatorResources).
 */
import { randomBytes } from 'node:crypto';
import type { DeliveryCommand, DeliveryLog, EventRule, SignatureScheme } from '../../schemas/index.ts';
import { newDeliveryCommand } from '../common/deliveries.ts';
import type { Kafka } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { choosePool, type PoolsTable } from '../common/pools.ts';
import { unreachableWarnings } from '../common/reachability.ts';
import type { SchemaRegistryClient } from '../common/registry.ts';
import { StaleRuleError, type RuleDraft, type RuleWriter } from '../common/rule-writer.ts';
import { generateSigningKey } from '../common/signing-keys.ts';
import type { RulesTable } from '../common/rules-table.ts';
import type { TopicNames } from '../common/topics.ts';
import type { CommandSender } from './command-sender.ts';
import { replayOf, type DeadDelivery } from './dlq.ts';
import { planSends, sendPlanned, type SendAgain } from './send-again.ts';
import { retirePool, type RetirementOptions, type RetirementResult } from './pool-retirement.ts';
import { resolvePut, sampleEvent, shownOnce, withEnabled, withRotatedSecret } from './rule-changes.ts';
import { RuleInputError, type RulePut } from './rule-input.ts';

/** Why an action did nothing: what was named does not exist, someone else changed it first, or the request is unclear. */
export class ActionError extends Error {
  readonly kind: 'not-found' | 'conflict' | 'invalid';
  constructor(kind: ActionError['kind'], message: string) {
    super(message);
    this.name = 'ActionError';
    this.kind = kind;
  }
}

/** Where a delivery's next log record is awaited: the console's window, or the CLI's tail of the delivery log. */
export interface DeliveryLogWatch {
  /** The next record of `deliveryId`, or undefined after `timeoutMs`; it must hear records written after this call. */
  next(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined>;
}

/** What the actions act on and through, each started when first asked for. */
export interface OperatorResources {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  names: TopicNames;
  rules(): Promise<RulesTable>;
  pools(): Promise<PoolsTable>;
  writer(): Promise<RuleWriter>;
  sender(): Promise<CommandSender>;
  deliveryLog(): Promise<DeliveryLogWatch>;
}

/** Who asks, for the audit line: `by` (`console`, `rules-cli`) and, where known, how (`session`, `bearer`) or which user. */
export interface Actor {
  by: string;
  via?: string;
  user?: string;
}

/** A saved rule, and why it will not be delivered as the announced pools stand (empty when nothing stands in the way). */
export interface Saved {
  rule: EventRule;
  warnings: string[];
}

/** A new rule's fields: its id is derived from its name unless given (as Harness needs only a name). */
export type NewRule = Omit<RulePut, 'id'> & { id?: string };

export class OperatorActions {
  readonly #resources: OperatorResources;
  readonly #audit: Logger;

  /** `audit` is where the audit lines go: the console's log, the CLI's stderr. */
  constructor(resources: OperatorResources, audit: Logger) {
    this.#resources = resources;
    this.#audit = audit;
  }

  async rule(id: string): Promise<EventRule> {
    const rule = (await this.#resources.rules()).get(id);
    if (!rule) throw new ActionError('not-found', `no rule with id "${id}"`);
    return rule;
  }

  /** Why `rule` will not be delivered as the announced pools stand (no pool fits, or its pool may not dial the URL). */
  async warnings(rule: EventRule): Promise<string[]> {
    return unreachableWarnings(rule, sampleEvent(rule), (await this.#resources.pools()).values());
  }

  /** A new rule, disabled unless it says so, signing with its own secrets or a generated one (returned once). */
  async create(actor: Actor, input: NewRule): Promise<Saved & { secret: string | undefined }> {
    const slug = typeof input.name === 'string' ? input.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) : '';
    const id = input.id ?? `${slug || 'rule'}-${randomBytes(3).toString('hex')}`;
    if ((await this.#resources.rules()).get(id)) throw new RuleInputError([{ field: 'id', reason: `a rule with id "${id}" already exists` }]);
    const { draft, generatedSecret } = resolvePut({ ...input, id }, undefined);
    return { ...(await this.#save(actor, 'rule created', undefined, draft)), secret: generatedSecret };
  }

  /**
   * Every field given; secrets, header values and `enabled` stay unless given (see resolvePut). `version`: the
   * updatedAt of the copy the caller edited, refused once the rule moved on.
   */
  async update(actor: Actor, id: string, put: RulePut, version?: number): Promise<Saved> {
    const existing = await this.rule(id);
    if (version !== undefined && version !== existing.updatedAt) {
      throw new ActionError('conflict', `rule "${id}" was changed by someone else since you loaded it (now the version of ${new Date(existing.updatedAt).toISOString()}); nothing was applied: reload it and redo the change`);
    }
    if (put.id !== id) throw new RuleInputError([{ field: 'id', reason: 'cannot change; create a new rule instead' }]);
    return this.#save(actor, 'rule updated', existing, resolvePut(put, existing).draft);
  }

  /** The rules CLI's put: an update of the rule with that id, else a new rule. A put names its rule: no id is derived. */
  async put(actor: Actor, put: RulePut): Promise<Saved & { secret: string | undefined }> {
    if (typeof put.id !== 'string' || !put.id) throw new RuleInputError([{ field: 'id', reason: 'is required: a put creates or updates the rule with this id' }]);
    const existing = (await this.#resources.rules()).get(put.id);
    return existing ? { ...(await this.update(actor, put.id, put)), secret: undefined } : this.create(actor, put);
  }

  async setEnabled(actor: Actor, id: string, enabled: boolean): Promise<Saved> {
    const rule = await this.rule(id);
    return this.#save(actor, enabled ? 'rule enabled' : 'rule disabled', rule, withEnabled(rule, enabled));
  }

  /**
   * A new signing key: the operator's own, else one of `scheme` (the rule's own unless given) generated here and, for
   * an HMAC secret, returned once; the old ones sign until `until`.
   */
  async rotateSecret(actor: Actor, id: string, overlapMs: number, given?: string, scheme?: SignatureScheme): Promise<Saved & { secret: string | undefined; until: number }> {
    const rule = await this.rule(id);
    const now = Date.now();
    const secret = given ?? generateSigningKey(scheme ?? rule.signatureScheme);
    const saved = await this.#save(actor, 'secret rotated', rule, withRotatedSecret(rule, secret, overlapMs, now));
    return { ...saved, secret: given === undefined ? shownOnce(secret) : undefined, until: now + overlapMs };
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.#change(id, await this.rule(id), null);
    this.#line(actor, 'rule deleted', { ruleId: id });
  }

  /** Deletes every rule of `application`; one changed by someone else meanwhile stays, and the conflict says so. */
  async deleteApplication(actor: Actor, application: string): Promise<string[]> {
    const rules = [...(await this.#resources.rules()).values()].filter((rule) => rule.application === application);
    const results = await Promise.allSettled(rules.map((rule) => this.#change(rule.id, rule, null)));
    const deleted = rules.filter((_, index) => results[index]!.status === 'fulfilled').map((rule) => rule.id);
    if (deleted.length) this.#line(actor, 'application rules deleted', { application, ruleIds: deleted });
    const failed = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
    if (failed.length === 0) return deleted;
    if (failed.every((error) => error instanceof ActionError)) throw new ActionError('conflict', `deleted ${deleted.length} of ${rules.length} rule(s) of application ${application}; ${failed.map((error) => error.message).join('; ')}`);
    throw failed[0];
  }

  /**
   * The Test button: a sample event through the dispatcher to this rule only — also while the rule is disabled, so it
   * can be tried before it goes live; its delivery-log record, or null after `timeoutMs`. `onSent` hears the pool.
   */
  async test(actor: Actor, id: string, timeoutMs: number, onSent: (pool: string) => void = () => undefined): Promise<{ deliveryId: string; pool: string; entry: DeliveryLog | null }> {
    const rule = await this.rule(id);
    const event = sampleEvent(rule);
    const route = choosePool(rule, event, (await this.#resources.pools()).values());
    if (!route.ok) throw new ActionError('conflict', route.error);
    const command = newDeliveryCommand(event, rule.id, Date.now(), { sample: true });
    const logged = (await this.#resources.deliveryLog()).next(command.deliveryId, timeoutMs);
    await (await this.#resources.sender()).send(this.#resources.names.deliveries(route.pool), command);
    this.#line(actor, 'rule tested', { ruleId: id, deliveryId: command.deliveryId });
    onSent(route.pool);
    return { deliveryId: command.deliveryId, pool: route.pool, entry: (await logged) ?? null };
  }

  /**
   * Delivers a delivery's event again to its rule as it is now, after its attempt `lastAttempt`: same delivery id
   * (receivers de-duplicate on it), the next attempt number, the whole schedule and a new age.
   */
  async resend(actor: Actor, command: DeliveryCommand, lastAttempt: number): Promise<{ pool: string; attempt: number }> {
    await this.rule(command.ruleId); // a rule gone is not-found, as for every action on a rule
    const { sent: [again], plan } = await this.#sendAgain([{ entry: command, command, missing: '', lastAttempt, headers: { 'resent-by': actor.by } }]);
    if (!again) throw new ActionError('conflict', plan.refused[0]!.why);
    this.#line(actor, 'delivery resent', { ruleId: command.ruleId, deliveryId: command.deliveryId, attempt: again.attempt });
    return { pool: plan.send[0]!.pool, attempt: again.attempt };
  }

  /**
   * Resends many deliveries at once (Recover, a bulk resend of a filtered view), each as resend() sends one; those that
   * cannot go are refused, saying why.
   */
  async resendAll<T>(actor: Actor, items: Array<Omit<SendAgain<T>, 'headers'>>, onSent?: (done: number, of: number) => void): Promise<{ resent: number; refused: Array<{ entry: T; why: string }> }> {
    const { sent, plan } = await this.#sendAgain(items.map((item) => ({ ...item, headers: { 'resent-by': actor.by } })), onSent);
    this.#line(actor, 'deliveries resent', { ruleIds: [...new Set(sent.map((command) => command.ruleId))], resent: sent.length, refused: plan.refused.length });
    return { resent: sent.length, refused: plan.refused };
  }

  /** Replays dead-lettered deliveries through the pool each rule is routed to now; the rest are refused, saying why. */
  async replay(actor: Actor, entries: DeadDelivery[], onSent?: (done: number, of: number) => void): Promise<{ replayed: number; refused: Array<{ entry: DeadDelivery; why: string }> }> {
    const { sent, plan } = await this.#sendAgain(entries.map(replayOf), onSent);
    this.#line(actor, 'dead letters replayed', { ruleIds: [...new Set(sent.map((command) => command.ruleId))], deliveryIds: sent.map((command) => command.deliveryId), refused: plan.refused.length });
    return { replayed: sent.length, refused: plan.refused };
  }

  async #sendAgain<T>(items: Array<SendAgain<T>>, onSent?: (done: number, of: number) => void) {
    const [rules, pools] = await Promise.all([this.#resources.rules(), this.#resources.pools()]);
    const plan = planSends(items, (id) => rules.get(id), pools.values(), this.#resources.names);
    const sent = await sendPlanned(plan, await this.#resources.sender(), (done) => onSent?.(done, plan.send.length));
    return { sent, plan };
  }

  /** Retires `pool` for good (see pool-retirement.ts); a RetirementRefused says why not. */
  async retirePool(actor: Actor, pool: string, options: RetirementOptions): Promise<RetirementResult> {
    const { kafka, registry, names } = this.#resources;
    const [rules, pools] = await Promise.all([this.#resources.rules(), this.#resources.pools()]);
    const result = await retirePool({ service: actor.by, kafka, registry, names, announcement: (name) => pools.get(name), rule: (id) => rules.get(id) }, pool, options);
    this.#line(actor, 'pool retired', { pool, tombstoned: result.tombstoned, deadLettered: result.deadLettered });
    return result;
  }

  async #save(actor: Actor, action: string, basedOn: EventRule | undefined, draft: RuleDraft): Promise<Saved> {
    const rule = (await this.#change(draft.id, basedOn, draft))!;
    this.#line(actor, action, { ruleId: rule.id, application: rule.application, enabled: rule.enabled });
    return { rule, warnings: await this.warnings(rule) };
  }

  /** One change through the writer (see RuleWriter.change); a change someone else made first is a conflict naming it. */
  async #change(id: string, basedOn: EventRule | undefined, next: RuleDraft | null): Promise<EventRule | undefined> {
    try {
      return await (await this.#resources.writer()).change(id, basedOn, next);
    } catch (error) {
      throw error instanceof StaleRuleError ? new ActionError('conflict', error.message) : error;
    }
  }

  /** One line per change: what, by whom, which rule, when (the logger's time). Only ids and flags, never a secret. */
  #line(actor: Actor, action: string, details: Record<string, unknown>): void {
    this.#audit.info({ audit: { action, ...actor, ...details } }, `audit: ${action}`);
  }
}
