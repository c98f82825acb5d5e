/**
 * The console service: what its pages and JSON API act on. It reads the event-rules and dispatcher-pools tables, the
 * delivery log, the pools' command topics and every dead-letter topic, and changes things only as the rules CLI does
 * (RuleWriter to the compacted event-rules topic, CommandSender to a pool's topic), with an audit line per change.
 * A rule change is made from the copy this console's rules table holds and answered once that table applied it, so
 * the page never shows stale state; a change someone else made first is refused (409), never overwritten.
 */
import { randomBytes } from 'node:crypto';
import { Gauge } from 'prom-client';
import type { DeliveryLog, EventRule } from '../../schemas/index.ts';
import type { BaseConfig, ConnectionConfig } from '../common/config.ts';
import { newDeliveryCommand } from '../common/deliveries.ts';
import { parseDuration } from '../common/duration.ts';
import { createKafka, kafkaConnection } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { createMetrics } from '../common/ops-server.ts';
import { choosePool, PoolsTable } from '../common/pools.ts';
import { unreachableWarnings } from '../common/reachability.ts';
import { registryConnection, SchemaRegistryClient } from '../common/registry.ts';
import { RuleWriter, StaleRuleError, type RuleDraft } from '../common/rule-writer.ts';
import { generateSecret } from '../common/rules.ts';
import { RulesTable } from '../common/rules-table.ts';
import { topicNames, type TopicNames } from '../common/topics.ts';
import { CommandSender } from './command-sender.ts';
import { DeadLetterStore } from './dead-letter-store.ts';
import { DeliveryLogStore } from './delivery-log-store.ts';
import { filterDeadDeliveries, planReplay, sendReplays, type DlqFilter } from './dlq.ts';
import { RecentCommands } from './recent-commands.ts';
import { resolvePut, sampleEvent, withEnabled, withRotatedSecret } from './rule-changes.ts';
import { RuleInputError, type RulePut } from './rule-input.ts';
import { startWebServer, type WebServer, type WebSettings } from './web-server.ts';

export interface ConsoleSettings extends WebSettings {
  groupId: string;
  /** How long a Test waits for its sample's delivery-log record. */
  testTimeoutMs?: number;
}

type ConsoleConfig = ConnectionConfig & Pick<BaseConfig, 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX'>;

/** An error the API answers with this status and message (no stack, nothing secret). */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Console {
  readonly metrics = createMetrics('console');
  readonly names: TopicNames;
  readonly rules: RulesTable;
  readonly logs: DeliveryLogStore;
  readonly deadLetters: DeadLetterStore;
  readonly #settings: ConsoleSettings;
  readonly #logger: Logger;
  readonly #pools: PoolsTable;
  readonly #commands: RecentCommands;
  readonly #kafka: ReturnType<typeof createKafka>;
  readonly #registry: SchemaRegistryClient;
  #writer: RuleWriter | undefined;
  #sender: CommandSender | undefined;
  #web: WebServer | undefined;

  constructor(config: ConsoleConfig, settings: ConsoleSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
    this.names = topicNames(config.TOPIC_PREFIX);
    this.#kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-console`, logger });
    this.#registry = new SchemaRegistryClient(registryConnection(config));
    const tableOptions = { kafka: this.#kafka, registry: this.#registry, logger, groupPrefix: settings.groupId };
    this.rules = new RulesTable({ ...tableOptions, topic: this.names.eventRules });
    this.#pools = new PoolsTable({ ...tableOptions, topic: this.names.dispatcherPools });
    this.logs = new DeliveryLogStore(this.#kafka, this.#registry, this.names.deliveryLog, logger, settings.groupId);
    this.deadLetters = new DeadLetterStore(this.#kafka, this.#registry, this.names, logger, settings.groupId);
    const commandTopics = new RegExp(`^${escapeRegExp(this.names.deliveries())}(\\.(?!dlq$)[^.]+)?$`);
    this.#commands = new RecentCommands(this.#kafka, this.#registry, commandTopics, logger, settings.groupId);
    const { logs, deadLetters } = this;
    new Gauge({ name: 'console_delivery_log_entries', help: 'Delivery-log records held for the console', registers: [this.metrics], collect() { this.set(logs.size); } });
    new Gauge({
      name: 'console_dead_letters',
      help: 'Records read from each dead-letter topic',
      labelNames: ['topic'],
      registers: [this.metrics],
      collect() {
        for (const [topic, count] of Object.entries(deadLetters.counts())) this.set({ topic }, count);
      },
    });
  }

  get opsPort(): number | undefined {
    return this.#web?.port;
  }

  get apiRoutes(): string[] {
    return this.#web?.apiRoutes ?? [];
  }

  get url(): string {
    return `http://127.0.0.1:${this.#web?.port}/`;
  }

  /** Why the console is not ready: it is still reading its rules, or something it shows stopped following its topic. */
  get ready(): string | undefined {
    const sources = { 'event-rules table': this.rules, 'dispatcher-pools table': this.#pools, 'delivery-log window': this.logs, 'dead-letters window': this.deadLetters, 'commands window': this.#commands };
    for (const [name, source] of Object.entries(sources)) if (source.failure) return `the ${name} stopped following its topic for good: ${source.failure.message}`;
    return this.rules.bootstrapped ? undefined : 'reading the event-rules topic';
  }

  async start(): Promise<void> {
    this.#web = await startWebServer(this, this.#settings, this.#logger);
    this.#writer = await RuleWriter.create(this.#kafka, this.#registry, this.names.eventRules, this.rules);
    this.#sender = await CommandSender.create(this.#kafka, this.#registry);
    await Promise.all([this.rules.start(), this.#pools.start()]);
    await Promise.all([this.logs.start(), this.deadLetters.start(), this.#commands.start()]);
  }

  async stop(): Promise<void> {
    await this.#web?.close();
    await Promise.allSettled([this.logs.stop(), this.deadLetters.stop(), this.#commands.stop(), this.rules.stop(), this.#pools.stop(), this.#writer?.close(), this.#sender?.close()]);
  }

  rule(id: string): EventRule {
    const rule = this.rules.get(id);
    if (!rule) throw new ApiError(404, `no rule with id "${id}"`);
    return rule;
  }

  /** Why `rule` will not be delivered as the announced pools stand (no pool fits, or its pool may not dial the URL). */
  warnings(rule: EventRule): Promise<string[]> {
    return unreachableWarnings(rule, sampleEvent(rule), this.#pools.values());
  }

  /** A new rule (disabled unless it says so) signing with the operator's own secret, or a generated one returned once. */
  async createRule(input: unknown): Promise<{ rule: EventRule; secret: string | undefined }> {
    const { id: given, secret, ...put } = ruleInput(input);
    // Like Harness, a rule needs only a name: its id is derived from it unless given.
    const slug = typeof put.name === 'string' ? put.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) : '';
    const id = given ?? `${slug || 'rule'}-${randomBytes(3).toString('hex')}`;
    if (this.rules.get(id)) throw new RuleInputError([{ field: 'id', reason: `a rule with id "${id}" already exists` }]);
    const { draft, generatedSecret } = resolvePut({ ...put, id, ...(secret === undefined ? {} : { secrets: [{ secret, notAfter: null }] }) }, undefined);
    return { rule: await this.#save('rule created', undefined, draft), secret: generatedSecret };
  }

  /** Every field but the secrets; `enabled` as given, else as it was. `version`: the updatedAt the caller edited. */
  async updateRule(id: string, input: unknown, version?: number): Promise<EventRule> {
    const existing = this.rule(id);
    if (version !== undefined && version !== existing.updatedAt) {
      throw new ApiError(409, `rule "${id}" was changed by someone else since you loaded it (now the version of ${new Date(existing.updatedAt).toISOString()}); nothing was applied: reload it and redo the change`);
    }
    const { id: given, secret, ...put } = ruleInput(input);
    if (given !== undefined && given !== id) throw new RuleInputError([{ field: 'id', reason: 'cannot change; create a new rule instead' }]);
    if (secret !== undefined) throw new RuleInputError([{ field: 'secret', reason: 'is set when a rule is created; change it with rotate-secret' }]);
    return this.#save('rule updated', existing, resolvePut({ ...put, id }, existing).draft);
  }

  setEnabled(id: string, enabled: boolean): Promise<EventRule> {
    const rule = this.rule(id);
    return this.#save(enabled ? 'rule enabled' : 'rule disabled', rule, withEnabled(rule, enabled));
  }

  /** A new signing secret (the operator's own, else generated and returned once); the old ones sign for the overlap. */
  async rotateSecret(id: string, overlap: string, given?: string): Promise<{ rule: EventRule; secret: string | undefined }> {
    let overlapMs: number;
    try {
      overlapMs = parseDuration(overlap);
    } catch (error) {
      throw new RuleInputError([{ field: 'overlap', reason: (error as Error).message }]);
    }
    const secret = given ?? generateSecret();
    const rule = this.rule(id);
    return { rule: await this.#save('secret rotated', rule, withRotatedSecret(rule, secret, overlapMs)), secret: given === undefined ? secret : undefined };
  }

  async deleteRule(id: string): Promise<void> {
    await this.#change(id, this.rule(id), null);
    this.#audit('rule deleted', { ruleId: id });
  }

  /** Deletes every rule of `application`; one changed by someone else meanwhile stays, and the answer says so (409). */
  async deleteApplication(application: string): Promise<string[]> {
    const rules = [...this.rules.values()].filter((rule) => rule.application === application);
    const results = await Promise.allSettled(rules.map((rule) => this.#change(rule.id, rule, null)));
    const deleted = rules.filter((_, index) => results[index]!.status === 'fulfilled').map((rule) => rule.id);
    if (deleted.length) this.#audit('application rules deleted', { application, ruleIds: deleted });
    const failed = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    if (failed.length) throw failed.every((error) => error instanceof ApiError) ? new ApiError(409, `deleted ${deleted.length} of ${rules.length}; ${failed.map((error) => error.message).join('; ')}`) : failed[0];
    return deleted;
  }

  /**
   * The Test button: a sample event through the dispatcher to this rule only — also while the rule is disabled, so it
   * can be tried before it goes live; its delivery-log record, or null on timeout.
   */
  async testRule(id: string): Promise<{ deliveryId: string; pool: string; entry: DeliveryLog | null }> {
    const rule = this.rule(id);
    const event = sampleEvent(rule);
    const route = choosePool(rule, event, this.#pools.values());
    if (!route.ok) throw new ApiError(409, route.error);
    const command = newDeliveryCommand(event, rule.id, Date.now(), { sample: true });
    const logged = this.logs.next(command.deliveryId, this.#settings.testTimeoutMs ?? 30_000);
    await this.#sender!.send(this.names.deliveries(route.pool), command);
    this.#audit('rule tested', { ruleId: id, deliveryId: command.deliveryId });
    return { deliveryId: command.deliveryId, pool: route.pool, entry: (await logged) ?? null };
  }

  /** Delivers a recent delivery's event again to its rule as it is now: same delivery id (receivers de-duplicate on it), attempt 1. */
  async resend(deliveryId: string): Promise<{ pool: string }> {
    const command = this.#commands.get(deliveryId);
    if (!command) throw new ApiError(404, `delivery ${deliveryId} is no longer in the console's window of commands; if it was dead-lettered, replay it from Dead letters`);
    const rule = this.rule(command.ruleId);
    const route = choosePool(rule, command.event, this.#pools.values());
    if (!route.ok) throw new ApiError(409, route.error);
    await this.#sender!.send(this.names.deliveries(route.pool), { ...command, attempt: 1, notBefore: Date.now() }, { 'resent-by': 'console' });
    this.#audit('delivery resent', { ruleId: rule.id, deliveryId });
    return { pool: route.pool };
  }

  /** Replays dead-lettered deliveries chosen by position (`topic:partition:offset`), rule or delivery id. */
  async replay(selection: { positions?: string[]; ruleId?: string; deliveryId?: string }): Promise<{ replayed: number; refused: Array<{ position: string; why: string }> }> {
    const positions = new Set(selection.positions ?? []);
    if (positions.size === 0 && !selection.ruleId && !selection.deliveryId) throw new ApiError(400, 'say what to replay: positions, ruleId or deliveryId');
    const filter: DlqFilter = { ruleId: selection.ruleId };
    const chosen = filterDeadDeliveries(this.deadLetters.deliveries(), filter).filter((entry) =>
      (positions.size === 0 || positions.has(`${entry.topic}:${entry.partition}:${entry.offset}`)) &&
      (!selection.deliveryId || entry.command?.deliveryId === selection.deliveryId));
    if (chosen.length === 0) throw new ApiError(404, 'no dead-lettered delivery matches');
    const plan = planReplay(chosen, (id) => this.rules.get(id), this.#pools.values(), this.names);
    const replayed = await sendReplays(plan, this.#sender!);
    this.#audit('dead letters replayed', { ruleIds: [...new Set(plan.replay.map(({ entry }) => entry.command!.ruleId))], deliveryIds: plan.replay.map(({ entry }) => entry.command!.deliveryId), refused: plan.refused.length });
    return { replayed, refused: plan.refused.map(({ entry, why }) => ({ position: `${entry.topic}:${entry.partition}:${entry.offset}`, why })) };
  }

  /** A rule written from the copy `basedOn` this console holds, with its audit line; the rule as it then stands. */
  async #save(action: string, basedOn: EventRule | undefined, draft: RuleDraft): Promise<EventRule> {
    const saved = (await this.#change(draft.id, basedOn, draft))!;
    this.#audit(action, { ruleId: saved.id, application: saved.application, enabled: saved.enabled });
    return saved;
  }

  /** One change through the writer (see RuleWriter.change); a change someone else made first is a 409 that names it. */
  async #change(id: string, basedOn: EventRule | undefined, next: RuleDraft | null): Promise<EventRule | undefined> {
    try {
      return await this.#writer!.change(id, basedOn, next);
    } catch (error) {
      throw error instanceof StaleRuleError ? new ApiError(409, error.message) : error;
    }
  }

  /** One line per change: what, which rule, when (pino's time). Never a secret: only ids and flags are passed here. */
  #audit(action: string, details: Record<string, unknown>): void {
    this.#logger.info({ audit: { action, ...details } }, `audit: ${action}`);
  }
}

/**
 * The page's JSON as a rule put: an object, without `secrets` (rotated, never listed). `secret` is the operator's own
 * signing secret (ShareRing's signing key), for a new rule; checkRule judges its form when it is written.
 */
function ruleInput(input: unknown): Omit<RulePut, 'id'> & { id?: string; secret?: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new RuleInputError([{ field: '(body)', reason: 'must be a JSON object of rule fields' }]);
  if ('secrets' in input) throw new RuleInputError([{ field: 'secrets', reason: 'are not listed: give a new rule its own with secret, change them with rotate-secret' }]);
  const { id, secret, ...rest } = input as Record<string, unknown>;
  if (secret !== undefined && typeof secret !== 'string') throw new RuleInputError([{ field: 'secret', reason: 'must be a string: whsec_ followed by base64 of 24 to 64 random bytes' }]);
  // The rest is checked by checkRule when written: unknown or mistyped fields come back named, nothing is published.
  return { ...(rest as Omit<RulePut, 'id'>), ...(typeof id === 'string' && id.trim() ? { id: id.trim() } : {}), ...(secret?.trim() ? { secret: secret.trim() } : {}) };
}
