/**
 * The dashboard: the ShareRing seed's Webhook Logs page and the Harness seed's Event Rules list as one web page on
 * 127.0.0.1, fed by the delivery-log topic — attempts with filters and details, live charts (Chart.js) of deliveries
 * per second, success rate and latency per rule and endpoint, the rules with their state, and dead-letter counts.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { Gauge } from 'prom-client';
import type { DeliveryOutcome } from '../../schemas/index.ts';
import type { BaseConfig, ConnectionConfig } from '../common/config.ts';
import { kafkaConnection, createKafka, type Admin } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { createMetrics, startOpsServer, type OpsServer } from '../common/ops-server.ts';
import { registryConnection, SchemaRegistryClient } from '../common/registry.ts';
import { loggableUrl } from '../common/rules.ts';
import { RulesTable } from '../common/rules-table.ts';
import { topicNames, type TopicNames } from '../common/topics.ts';
import { DeliveryLogStore } from './delivery-log-store.ts';

export interface DashboardSettings {
  groupId: string;
  httpHost: string;
  httpPort: number;
}

type DashboardConfig = ConnectionConfig & Pick<BaseConfig, 'KAFKA_CLIENT_ID' | 'TOPIC_PREFIX'>;

const asset = (path: string | URL) => readFileSync(path);
const assets: Record<string, { type: string; body: Buffer }> = {
  '/': { type: 'text/html; charset=utf-8', body: asset(new URL('./dashboard/index.html', import.meta.url)) },
  '/dashboard.js': { type: 'text/javascript; charset=utf-8', body: asset(new URL('./dashboard/dashboard.js', import.meta.url)) },
  '/vendor/chart.umd.min.js': { type: 'text/javascript; charset=utf-8', body: asset(new URL('./chart.umd.min.js', import.meta.resolve('chart.js'))) },
};
const OUTCOMES = new Set<DeliveryOutcome>(['delivered', 'retrying', 'failed', 'dead_lettered', 'blocked', 'skipped']);

export class Dashboard {
  readonly metrics = createMetrics('console');
  readonly #settings: DashboardSettings;
  readonly #logger: Logger;
  readonly #names: TopicNames;
  readonly #store: DeliveryLogStore;
  readonly #rules: RulesTable;
  readonly #admin: Admin;
  #deadLetters = { events: 0, rules: 0, deliveries: 0, pools: 0 };
  #timer: NodeJS.Timeout | undefined;
  #ops: OpsServer | undefined;

  constructor(config: DashboardConfig, settings: DashboardSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
    this.#names = topicNames(config.TOPIC_PREFIX);
    const kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-console`, logger });
    const registry = new SchemaRegistryClient(registryConnection(config));
    this.#store = new DeliveryLogStore(kafka, registry, this.#names.deliveryLog, logger, settings.groupId);
    this.#rules = new RulesTable({ kafka, registry, topic: this.#names.eventRules, logger, groupPrefix: settings.groupId });
    this.#admin = kafka.admin();
    const store = this.#store;
    const deadLetters = () => this.#deadLetters;
    new Gauge({ name: 'console_delivery_log_entries', help: 'Delivery-log records held for the dashboard', registers: [this.metrics], collect() { this.set(store.size); } });
    new Gauge({
      name: 'console_dead_letters',
      help: 'Records in each dead-letter topic',
      labelNames: ['topic'],
      registers: [this.metrics],
      collect() {
        for (const [topic, count] of Object.entries(deadLetters())) this.set({ topic }, count);
      },
    });
  }

  get opsPort(): number | undefined {
    return this.#ops?.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#ops?.port}/`;
  }

  async start(): Promise<void> {
    this.#ops = await startOpsServer({
      host: this.#settings.httpHost,
      port: this.#settings.httpPort,
      metrics: this.metrics,
      notReadyReason: () => (this.#rules.bootstrapped ? undefined : 'reading the event-rules topic'),
      routes: (url, response) => this.#route(url, response),
    });
    await this.#admin.connect();
    await this.#rules.start();
    await this.#store.start();
    await this.#countDeadLetters();
    this.#timer = setInterval(() => void this.#countDeadLetters(), 5000);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([this.#store.stop(), this.#rules.stop(), this.#admin.disconnect()]);
    await this.#ops?.close();
  }

  async #countDeadLetters(): Promise<void> {
    const count = async (topic: string) => (await this.#admin.fetchTopicOffsets(topic)).reduce((sum, { offset, low }) => sum + Number(offset) - Number(low), 0);
    try {
      this.#deadLetters = {
        events: await count(this.#names.workflowEventsDlq),
        rules: await count(this.#names.eventRulesDlq),
        deliveries: await count(this.#names.deliveriesDlq),
        pools: await count(this.#names.dispatcherPoolsDlq),
      };
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not count dead letters');
    }
  }

  #route(url: URL, response: ServerResponse): boolean {
    const json = (body: unknown) => response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    const file = assets[url.pathname];
    if (file) {
      response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache' }).end(file.body);
      return true;
    }
    const query = url.searchParams;
    const time = (name: string) => (query.get(name) ? Number(query.get(name)) : undefined);
    switch (url.pathname) {
      case '/api/logs': {
        const outcome = query.get('outcome') as DeliveryOutcome | null;
        json({ entries: this.#store.query({ ruleId: query.get('rule') || undefined, outcome: outcome && OUTCOMES.has(outcome) ? outcome : undefined, since: time('since'), until: time('until'), limit: Math.min(Number(query.get('limit')) || 200, 1000) }) });
        return true;
      }
      case '/api/attempt':
        json(this.#store.find(query.get('deliveryId') ?? '', Number(query.get('attempt'))) ?? null);
        return true;
      case '/api/stats':
        json(this.#store.stats());
        return true;
      case '/api/rules':
        json([...this.#rules.values()].map((rule) => ({
          id: rule.id, name: rule.name, application: rule.application, enabled: rule.enabled, disabledReason: rule.disabledReason,
          url: loggableUrl(rule.url), payloadFormat: rule.payloadFormat, eventTypes: rule.eventTypes, scope: rule.scope,
        })).sort((a, b) => a.id.localeCompare(b.id)));
        return true;
      case '/api/dead-letters':
        json(this.#deadLetters);
        return true;
      default:
        return false;
    }
  }
}
