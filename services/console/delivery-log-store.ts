/**
 * The delivery log as the dashboard needs it: the latest attempts in memory (a bounded window, newest last), read
 * from the delivery-log topic from its beginning by a consumer group of this instance's own, plus the aggregates the
 * charts show (deliveries per second, success rate and latency per rule and endpoint).
 */
import { contracts, type DeliveryLog, type DeliveryOutcome } from '../../schemas/index.ts';
import type { Kafka } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import { TopicWindow } from './topic-window.ts';

export interface LogQuery {
  ruleId?: string;
  outcome?: DeliveryOutcome;
  /** The target URL as logged (no query string, no credentials). */
  url?: string;
  eventType?: string;
  eventId?: string;
  deliveryId?: string;
  since?: number;
  until?: number;
  limit?: number;
}

export interface TargetStats {
  ruleId: string;
  ruleName: string | null;
  url: string | null;
  attempts: number;
  delivered: number;
  successRate: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

/** What history the store holds: at most `capacity` attempts, from `oldestAt` on. */
export interface LogWindow {
  capacity: number;
  held: number;
  oldestAt: number | null;
  newestAt: number | null;
}

export interface Stats {
  /** One bucket per second of the window, oldest first. */
  perSecond: Array<{ at: number; delivered: number; notDelivered: number }>;
  byTarget: TargetStats[];
  outcomes: Partial<Record<DeliveryOutcome, number>>;
}

const percentile = (sorted: number[], p: number): number | null => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null);

export class DeliveryLogStore {
  readonly #entries: DeliveryLog[] = [];
  readonly #capacity: number;
  readonly #window: TopicWindow;
  readonly #registry: SchemaRegistryClient;
  readonly #logger: Logger;
  readonly #waiters = new Map<string, Set<(entry: DeliveryLog) => void>>();

  constructor(kafka: Kafka, registry: SchemaRegistryClient, topic: string, logger: Logger, groupPrefix: string, capacity = 50_000) {
    this.#registry = registry;
    this.#logger = logger;
    this.#capacity = capacity;
    this.#window = new TopicWindow(kafka, { name: 'delivery-log', topics: [topic], groupPrefix, logger, onRecord: async ({ message }) => {
      try {
        this.add(await this.#registry.decode(contracts.deliveryLog, message.value));
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        this.#logger.warn({ offset: message.offset, reason: error.reason }, 'skipping an undecodable delivery-log record');
      }
    } });
  }

  /** Why the window stopped following the delivery log for good, if it did. */
  get failure(): Error | undefined {
    return this.#window.failure;
  }

  get size(): number {
    return this.#entries.length;
  }

  start(): Promise<void> {
    return this.#window.start();
  }

  stop(): Promise<void> {
    return this.#window.stop();
  }

  add(entry: DeliveryLog): void {
    this.#entries.push(entry);
    for (const resolve of this.#waiters.get(entry.deliveryId) ?? []) resolve(entry);
    // Drop the oldest in chunks, so keeping the window costs O(1) per record on average.
    if (this.#entries.length > this.#capacity * 1.1) this.#entries.splice(0, this.#entries.length - this.#capacity);
  }

  get window(): LogWindow {
    return { capacity: this.#capacity, held: this.#entries.length, oldestAt: this.#entries[0]?.attemptedAt ?? null, newestAt: this.#entries.at(-1)?.attemptedAt ?? null };
  }

  /** The next record of `deliveryId` to arrive, or undefined after `timeoutMs`. */
  next(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(deliveryId) ?? new Set();
      this.#waiters.set(deliveryId, waiters);
      const done = (entry: DeliveryLog | undefined) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(deliveryId);
        resolve(entry);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      waiters.add(done);
    });
  }

  /** Matching attempts, newest first. */
  query({ ruleId, outcome, url, eventType, eventId, deliveryId, since, until, limit = 200 }: LogQuery): DeliveryLog[] {
    const found: DeliveryLog[] = [];
    for (let index = this.#entries.length - 1; index >= 0 && found.length < limit; index -= 1) {
      const entry = this.#entries[index]!;
      if (ruleId && entry.ruleId !== ruleId) continue;
      if (outcome && entry.outcome !== outcome) continue;
      if (url && entry.url !== url) continue;
      if (eventType && entry.eventType !== eventType) continue;
      if (eventId && entry.eventId !== eventId) continue;
      if (deliveryId && entry.deliveryId !== deliveryId) continue;
      if (since !== undefined && entry.attemptedAt < since) continue;
      if (until !== undefined && entry.attemptedAt > until) continue;
      found.push(entry);
    }
    return found;
  }

  find(deliveryId: string, attempt: number): DeliveryLog | undefined {
    return this.#entries.findLast((entry) => entry.deliveryId === deliveryId && entry.attempt === attempt);
  }

  stats(now = Date.now(), windowSeconds = 300): Stats {
    const start = Math.floor(now / 1000) - windowSeconds + 1;
    const perSecond = Array.from({ length: windowSeconds }, (_, index) => ({ at: (start + index) * 1000, delivered: 0, notDelivered: 0 }));
    const targets = new Map<string, { stats: TargetStats; latencies: number[] }>();
    const outcomes: Stats['outcomes'] = {};
    for (let index = this.#entries.length - 1; index >= 0; index -= 1) {
      const entry = this.#entries[index]!;
      const second = Math.floor(entry.attemptedAt / 1000) - start;
      if (second < 0) break;
      const bucket = perSecond[second];
      if (bucket) bucket[entry.outcome === 'delivered' ? 'delivered' : 'notDelivered'] += 1;
      outcomes[entry.outcome] = (outcomes[entry.outcome] ?? 0) + 1;
      const key = `${entry.ruleId} ${entry.url}`;
      let target = targets.get(key);
      if (!target) {
        target = { stats: { ruleId: entry.ruleId, ruleName: entry.ruleName, url: entry.url, attempts: 0, delivered: 0, successRate: 0, p50Ms: null, p95Ms: null }, latencies: [] };
        targets.set(key, target);
      }
      target.stats.attempts += 1;
      if (entry.outcome === 'delivered') target.stats.delivered += 1;
      if (entry.latencyMs !== null) target.latencies.push(entry.latencyMs);
    }
    const byTarget = [...targets.values()].map(({ stats, latencies }) => {
      latencies.sort((a, b) => a - b);
      return { ...stats, successRate: stats.delivered / stats.attempts, p50Ms: percentile(latencies, 0.5), p95Ms: percentile(latencies, 0.95) };
    });
    return { perSecond, byTarget: byTarget.sort((a, b) => b.attempts - a.attempts), outcomes };
  }
}
