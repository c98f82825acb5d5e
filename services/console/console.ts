/**
 * The console service: what its pages and JSON API show and act on. It reads the event-rules and dispatcher-pools
 * tables, the delivery log, the pools' command topics and every dead-letter topic, and changes things only through
 * the operator actions, as the rules CLI does. A rule change is made from the copy this console's rules table holds
 * and answered once that table applied it, so the page never shows stale state.
 */
import { join } from 'node:path';
import { Gauge } from 'prom-client';
import type { BaseConfig, ConnectionConfig } from '../common/config.ts';
import { createKafka, kafkaConnection } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { createMetrics } from '../common/ops-server.ts';
import { PoolsTable } from '../common/pools.ts';
import { registryConnection, SchemaRegistryClient } from '../common/registry.ts';
import { RuleWriter } from '../common/rule-writer.ts';
import { RulesTable } from '../common/rules-table.ts';
import { topicNames, type TopicNames } from '../common/topics.ts';
import { OperatorActions } from '../operator/actions.ts';
import { CommandSender } from '../operator/command-sender.ts';
import { DeadLetterStore } from './dead-letter-store.ts';
import { CommandFeed, HistoryFeed } from './history/feed.ts';
import { DEFAULT_RETENTION, HistoryRetention, type RetentionSettings } from './history/retention.ts';
import { PostgresHistoryStore } from './history/postgres-store.ts';
import { SqliteHistoryStore } from './history/sqlite-store.ts';
import type { HistoryStore } from './history/store.ts';
import { startWebServer, type ServedConsole, type WebServer, type WebSettings } from './web-server.ts';

export interface ConsoleSettings extends WebSettings {
  groupId: string;
  /** The directory the delivery history is kept in (its SQLite file). */
  dataDir: string;
  /** A PostgreSQL URL: the history kept there instead, shared by every console given it. */
  historyUrl?: string | undefined;
  /** How much of it is kept: DEFAULT_RETENTION unless told. */
  retention?: RetentionSettings;
  /** How long a Test waits for its sample's delivery-log record. */
  testTimeoutMs?: number;
}

type ConsoleConfig = ConnectionConfig & Pick<BaseConfig, 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX'>;

/** How often a console that does not feed a shared history tries to take over. */
const LEAD_RETRY_MS = 5000;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Console implements ServedConsole {
  readonly metrics = createMetrics('console');
  readonly names: TopicNames;
  readonly rules: RulesTable;
  readonly history: HistoryStore;
  readonly retention: HistoryRetention;
  readonly #feed: HistoryFeed;
  readonly deadLetters: DeadLetterStore;
  readonly actions: OperatorActions;
  readonly testTimeoutMs: number;
  readonly #settings: ConsoleSettings;
  readonly #logger: Logger;
  readonly #pools: PoolsTable;
  readonly #commands: CommandFeed;
  readonly #kafka: ReturnType<typeof createKafka>;
  readonly #registry: SchemaRegistryClient;
  #writer: RuleWriter | undefined;
  #sender: CommandSender | undefined;
  #web: WebServer | undefined;
  #leading = false;
  #standby: NodeJS.Timeout | undefined;
  #standbyLogged = false;

  constructor(config: ConsoleConfig, settings: ConsoleSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
    this.testTimeoutMs = settings.testTimeoutMs ?? 30_000;
    this.names = topicNames(config.TOPIC_PREFIX);
    this.#kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-console`, logger });
    this.#registry = new SchemaRegistryClient(registryConnection(config));
    const tableOptions = { kafka: this.#kafka, registry: this.#registry, logger, groupPrefix: settings.groupId };
    this.rules = new RulesTable({ ...tableOptions, topic: this.names.eventRules });
    this.#pools = new PoolsTable({ ...tableOptions, topic: this.names.dispatcherPools });
    this.history = settings.historyUrl ? new PostgresHistoryStore(settings.historyUrl) : new SqliteHistoryStore(join(settings.dataDir, 'history.sqlite'));
    this.#feed = new HistoryFeed({ ...tableOptions, store: this.history, topic: this.names.deliveryLog });
    this.retention = new HistoryRetention(this.history, settings.retention ?? DEFAULT_RETENTION, logger);
    this.deadLetters = new DeadLetterStore(this.#kafka, this.#registry, this.names, logger, settings.groupId);
    const commandTopics = new RegExp(`^${escapeRegExp(this.names.deliveries())}(\\.(?!dlq$)[^.]+)?$`);
    this.#commands = new CommandFeed({ ...tableOptions, store: this.history, topics: commandTopics });
    // The writer and the sender are made by start() before the web server takes a request.
    const started = <T>(resource: () => T | undefined) => async () => resource()!;
    this.actions = new OperatorActions({
      kafka: this.#kafka, registry: this.#registry, names: this.names,
      rules: started(() => this.rules), pools: started(() => this.#pools), writer: started(() => this.#writer), sender: started(() => this.#sender), deliveryLog: started(() => this.#feed),
    }, logger);
    const { history, deadLetters } = this;
    new Gauge({ name: 'console_history_attempts', help: 'Delivery attempts the console\'s history holds', registers: [this.metrics], async collect() { this.set((await history.holds()).attempts); } });
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
    const sources = { 'event-rules table': this.rules, 'dispatcher-pools table': this.#pools, 'delivery history': this.#feed, 'dead-letters window': this.deadLetters, 'commands history': this.#commands };
    for (const [name, source] of Object.entries(sources)) if (source.failure) return `the ${name} stopped following its topic for good: ${source.failure.message}`;
    return this.rules.bootstrapped ? undefined : 'reading the event-rules topic';
  }

  async start(): Promise<void> {
    this.#writer = await RuleWriter.create(this.#kafka, this.#registry, this.names.eventRules, this.rules);
    this.#sender = await CommandSender.create(this.#kafka, this.#registry);
    // Up while the tables load: /healthz answers, /readyz says what is still being read.
    this.#web = await startWebServer(this, this.#settings, this.#logger);
    const { layoutChanged } = await this.history.opened();
    if (layoutChanged) this.#logger.warn('the delivery history was kept in an older layout: it is read again from the delivery-log and command topics');
    await Promise.all([this.rules.start(), this.#pools.start()]);
    await Promise.all([this.deadLetters.start(), this.#feedWhenLeading()]);
  }

  /**
   * Feeds the history (and runs its retention) if this console is the one to; a console sharing a database with one
   * that does serves the pages from it and tries again every few seconds, taking over when the other stops.
   */
  async #feedWhenLeading(): Promise<void> {
    if (await this.history.lead()) {
      await Promise.all([this.#feed.start(), this.#commands.start()]);
      this.retention.start();
      this.#leading = true;
      return;
    }
    if (!this.#standbyLogged) this.#logger.info('another console feeds the shared delivery history: this one serves it, and takes over if that one stops');
    this.#standbyLogged = true;
    this.#standby = setTimeout(() => void this.#feedWhenLeading().catch((error) => this.#logger.error({ err: error }, 'could not take over feeding the delivery history; trying again')), LEAD_RETRY_MS);
    this.#standby.unref();
  }

  async stop(): Promise<void> {
    await this.#web?.close();
    clearTimeout(this.#standby);
    const feeds = this.#leading ? [this.#feed.stop(), this.#commands.stop()] : [];
    await Promise.allSettled([...feeds, this.deadLetters.stop(), this.rules.stop(), this.#pools.stop(), this.#writer?.close(), this.#sender?.close()]);
    await this.retention.stop();
    await this.history.close();
  }
}
