/**
 * The console service: what its pages and JSON API show and act on. It reads the event-rules and dispatcher-pools
 * tables, the delivery log, the pools' command topics and every dead-letter topic, and changes things only through
 * the operator actions, as the rules CLI does. A rule change is made from the copy this console's rules table holds
 * and answered once that table applied it, so the page never shows stale state.
 */
import { Gauge } from 'prom-client';
import type { DeliveryCommand } from '../../schemas/index.ts';
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
import { DeliveryLogStore } from './delivery-log-store.ts';
import { RecentCommands } from './recent-commands.ts';
import { startWebServer, type ServedConsole, type WebServer, type WebSettings } from './web-server.ts';

export interface ConsoleSettings extends WebSettings {
  groupId: string;
  /** How long a Test waits for its sample's delivery-log record. */
  testTimeoutMs?: number;
}

type ConsoleConfig = ConnectionConfig & Pick<BaseConfig, 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX'>;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Console implements ServedConsole {
  readonly metrics = createMetrics('console');
  readonly names: TopicNames;
  readonly rules: RulesTable;
  readonly logs: DeliveryLogStore;
  readonly deadLetters: DeadLetterStore;
  readonly actions: OperatorActions;
  readonly testTimeoutMs: number;
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
    this.testTimeoutMs = settings.testTimeoutMs ?? 30_000;
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
    // The writer and the sender are made by start() before the web server takes a request.
    const started = <T>(resource: () => T | undefined) => async () => resource()!;
    this.actions = new OperatorActions({
      kafka: this.#kafka, registry: this.#registry, names: this.names,
      rules: started(() => this.rules), pools: started(() => this.#pools), writer: started(() => this.#writer), sender: started(() => this.#sender), deliveryLog: started(() => this.logs),
    }, logger);
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
    this.#writer = await RuleWriter.create(this.#kafka, this.#registry, this.names.eventRules, this.rules);
    this.#sender = await CommandSender.create(this.#kafka, this.#registry);
    // Up while the tables load: /healthz answers, /readyz says what is still being read.
    this.#web = await startWebServer(this, this.#settings, this.#logger);
    await Promise.all([this.rules.start(), this.#pools.start()]);
    await Promise.all([this.logs.start(), this.deadLetters.start(), this.#commands.start()]);
  }

  async stop(): Promise<void> {
    await this.#web?.close();
    await Promise.allSettled([this.logs.stop(), this.deadLetters.stop(), this.#commands.stop(), this.rules.stop(), this.#pools.stop(), this.#writer?.close(), this.#sender?.close()]);
  }

  recentCommand(deliveryId: string): DeliveryCommand | undefined {
    return this.#commands.get(deliveryId);
  }
}

