/**
 * The console's delivery history: every attempt the delivery-log topic carried, and the first command of every
 * delivery the pools' command topics carried (its event, which a resend needs and the log does not keep), kept on disk
 * and queried by the logs page, the endpoint view, the overview and the API. One interface, one backend per database;
 * the feeds (feed.ts) are the only writers. A backend keeps the topic positions it has read to in the same transaction
 * as the records they brought, so a console killed at any point resumes where its history stops: no gap, no
 * duplicate, no re-read from the beginning.
 */
import { DELIVERY_OUTCOMES, type DeliveryCommand, type DeliveryLog, type DeliveryOutcome } from '../../../schemas/index.ts';
import type { EndpointFigures } from './endpoint-stats.ts';

/** Where the history has read a partition of one of its topics to: the next offset to read. */
export interface TopicPosition {
  topic: string;
  partition: number;
  next: string;
}

/** Records read from one partition, and the position after them: stored with them, in the same transaction. */
export interface Segment<T> {
  records: T[];
  position: TopicPosition;
}

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export interface HistoryQuery {
  ruleId?: string;
  outcome?: DeliveryOutcome;
  /** The target URL as logged (no query string, no credentials). */
  url?: string;
  eventType?: string;
  eventId?: string;
  /** Attempts whose event id starts with this. */
  eventIdPrefix?: string;
  /** The delivery id, which is also the webhook-id the receiver got. */
  deliveryId?: string;
  statusClass?: StatusClass;
  since?: number;
  until?: number;
  limit?: number;
  /** Where the previous page stopped (its `next`). */
  cursor?: string;
}

export interface HistoryPage {
  entries: DeliveryLog[];
  /** The attempts the query matches, over the whole history: exact up to COUNT_LIMIT, which `countCapped` says it reached. */
  count: number;
  countCapped: boolean;
  /** The cursor of the page after this one; null on the last page. */
  next: string | null;
}

/** A delivery as its newest record in the history leaves it. */
export interface DeliveryState {
  deliveryId: string;
  ruleId: string;
  /** The highest attempt number it reached. */
  lastAttempt: number;
  /** The outcome of its newest record. */
  outcome: DeliveryOutcome;
}

/** What the history holds. */
export interface HistoryHolds {
  attempts: number;
  oldestAt: number | null;
  newestAt: number | null;
  /** The store's size on disk. */
  bytes: number;
  /** What of that its attempts and indexes take (the rest is free space it reuses or returns). */
  usedBytes: number;
}

/** What the charts and the per-endpoint figures are computed from: an attempt without its request and response. */
export interface AttemptSummary {
  ruleId: string;
  ruleName: string | null;
  url: string | null;
  outcome: DeliveryOutcome;
  latencyMs: number | null;
  attemptedAt: number;
}

export interface HistoryStore {
  /** Once the store can be used; whether it held an older layout, emptied to be filled again from the topics. */
  opened(): Promise<{ layoutChanged: boolean }>;
  /**
   * Whether this console is the one to feed the history (its feeds running), becoming it if no other is: always for
   * an embedded file (one console per file), for a shared database the one holding its lock.
   */
  lead(): Promise<boolean>;
  /**
   * How many writes a feed may have in flight at once, each of other partitions than the others': one for an embedded
   * file (its one connection would only queue a second), more for a database that stores each on a connection, and a
   * core, of its own.
   */
  readonly parallelWrites: number;
  /** The positions the history has read its topics to, as last committed with their records. */
  positions(): Promise<TopicPosition[]>;
  /** Adds attempts, with what they change in the endpoints' figures, and moves their positions in one transaction. */
  append(segments: Array<Segment<DeliveryLog>>): Promise<void>;
  /** Keeps each delivery's first command (a later one of the same delivery, a resend, changes nothing) and moves the positions. */
  appendCommands(segments: Array<Segment<DeliveryCommand>>): Promise<void>;
  /** The delivery's command, event and all, while the history holds it. */
  command(deliveryId: string): Promise<DeliveryCommand | undefined>;
  /** The deliveries with an attempt `query` matches, newest first, at most `limit`, as their newest records leave them. */
  deliveries(query: HistoryQuery, limit: number): Promise<DeliveryState[]>;
  query(query: HistoryQuery): Promise<HistoryPage>;
  /** The newest record of that attempt. */
  find(deliveryId: string, attempt: number): Promise<DeliveryLog | undefined>;
  /** Attempts made at or after `since`, oldest first, without bodies. */
  summaries(since: number): Promise<AttemptSummary[]>;
  holds(): Promise<HistoryHolds>;
  /** Every endpoint (target URL) an attempt was made at, with its figures over each window ending at `now`. */
  endpoints(now: number): Promise<EndpointFigures[]>;
  /**
   * Deletes up to `rows` of the oldest attempts that are older than `before`, or, while the history takes more than
   * `maxBytes`, of the oldest whatever their age; returns how many it deleted. Called in small steps, so writes and
   * queries go on between them.
   */
  prune(before: number, maxBytes: number, rows: number): Promise<number>;
  /** Deletes the endpoint buckets that no window ending at `now` reads (a few rows per endpoint and minute). */
  pruneBuckets(now: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The tables' layout, the same number in both backends, and the SQL that takes a history from a layout to the next in
 * place, keeping what it holds. A history of a layout without a way up from it is emptied and filled again from the
 * topics: what it held beyond their retention is lost, so a change that can be made in place is.
 */
export const LAYOUT = 7;
export const LAYOUT_UPGRADES: Readonly<Record<number, string>> = {
  // Bucket rows carry the version of the write that last changed them (recent-buckets.ts); rows from before, 0.
  6: 'ALTER TABLE endpoint_buckets ADD COLUMN version BIGINT NOT NULL DEFAULT 0',
};

/**
 * Where a filtered query stops counting: counting a filter that matches millions of attempts would cost a page a
 * scan of millions of index entries, and past this "more than" is what a person reads anyway — Elasticsearch counts
 * hits to the same 10,000 by default, and a bulk resend sends at most as many. At 100,000 the counts were most of a
 * broad filter's time (PostgreSQL, two million attempts, p50: an event type 22.8 → 5.2 ms, an endpoint 10.9 → 6.2,
 * 5xx 9.4 → 5.0). The whole history's count is kept exact (holds()).
 */
export const COUNT_LIMIT = 10_000;

/**
 * The attempts table's indexes, in the SQL both backends speak: one per filter of the page, each ending in the page's
 * order (attempted_at, sequence), so a page's keys come from one index alone, sorted there or, for an event-id
 * prefix (a range of its index), sorted as keys before any attempt is read — or, for a prefix matching many, found
 * an hour at a time (see PREFIX_WALK_FROM). A rule and an endpoint have one index each, with the outcome second: what
 * failed for one is a range of it, and all of its attempts are one range per outcome (newestKeys). A second index
 * each, without the outcome, cost PostgreSQL a tenth of its ingest (11,700 and 12,500 attempts/s with them, 12,600
 * and 13,700 without, storing 300,000).
 */
export const ATTEMPT_INDEXES = `
  CREATE INDEX IF NOT EXISTS attempts_by_time ON attempts (attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_outcome ON attempts (outcome, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_rule_outcome ON attempts (rule_id, outcome, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_url_outcome ON attempts (url, outcome, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_event ON attempts (event_id, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_hour_event ON attempts (hour, event_id, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_event_type ON attempts (event_type, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_status_class ON attempts (status_class, attempted_at, sequence);
  CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id, attempt);
`;

/**
 * The newest `wanted` keys (sequence) `where` matches, as SQL with `?` placeholders and their values. A rule or an
 * endpoint without an outcome is read as the newest of each outcome (one range of its index each), merged.
 */
export function newestKeys(query: HistoryQuery, where: string, values: ReadonlyArray<string | number>, wanted: number): { sql: string; values: Array<string | number> } {
  const newest = (outcome?: DeliveryOutcome) => `SELECT sequence${outcome ? ', attempted_at' : ''} FROM attempts ${where}${outcome ? ` AND outcome = '${outcome}'` : ''} ORDER BY attempted_at DESC, sequence DESC LIMIT ?`;
  if (!(query.ruleId || query.url) || query.outcome) return { sql: newest(), values: [...values, wanted] };
  return {
    sql: `SELECT sequence FROM (${DELIVERY_OUTCOMES.map((outcome) => `SELECT * FROM (${newest(outcome)}) AS ${outcome}`).join(' UNION ALL ')}) AS merged
      ORDER BY attempted_at DESC, sequence DESC LIMIT ?`,
    values: [...DELIVERY_OUTCOMES.flatMap(() => [...values, wanted]), wanted],
  };
}

const HOUR_MS = 3_600_000;

/** The hour an attempt was made in (its `hour` column): where the hour-by-hour walk of a broad prefix finds it. */
export const hourOf = (attemptedAt: number): number => Math.floor(attemptedAt / HOUR_MS);

/**
 * From how many matches (the query's count, which stops there) an event-id prefix's page is found hour by hour, newest first, instead of
 * by sorting every match's key. A one-digit prefix matches hundreds of thousands of attempts (evt-qa-1 at five
 * million: 370,000 keys sorted, 85 ms), while an hour holds a few thousand of them and an hour without any costs one
 * index probe (3 ms for the same page). Below it, the sort is the cheaper: a handful of keys, where a walk probes
 * every hour the history holds.
 */
export const PREFIX_WALK_FROM = COUNT_LIMIT;

/**
 * The hours a walk reads for a page, newest first: from the newest attempt the page may show (the history's newest,
 * or the query's `until`, or the cursor's) down to the oldest (the history's oldest, or `since`); undefined when the
 * history is empty.
 */
export function hoursToWalk(query: HistoryQuery, after: { attemptedAt: number } | undefined, held: { oldestAt: number | null; newestAt: number | null }): { from: number; to: number } | undefined {
  if (held.oldestAt === null || held.newestAt === null) return undefined;
  const newest = Math.min(held.newestAt, query.until ?? Infinity, after?.attemptedAt ?? Infinity);
  const oldest = Math.max(held.oldestAt, query.since ?? -Infinity);
  return { from: hourOf(newest), to: hourOf(oldest) };
}

// U+10FFFF sorts after every character that may follow a prefix, so [prefix, prefix + it) is the prefix's range.
const PREFIX_END = '\u{10FFFF}';

/** A query's filters as SQL conditions with `?` placeholders, and their values in order (the backends' shared WHERE). */
export function conditions(query: HistoryQuery): { where: string; values: Array<string | number> } {
  const clauses: string[] = [];
  const values: Array<string | number> = [];
  const add = (clause: string, ...given: Array<string | number>) => {
    clauses.push(clause);
    values.push(...given);
  };
  if (query.ruleId) add('rule_id = ?', query.ruleId);
  if (query.outcome) add('outcome = ?', query.outcome);
  if (query.url) add('url = ?', query.url);
  if (query.eventType) add('event_type = ?', query.eventType);
  if (query.eventId) add('event_id = ?', query.eventId);
  if (query.eventIdPrefix) add('event_id >= ? AND event_id < ?', query.eventIdPrefix, query.eventIdPrefix + PREFIX_END);
  if (query.deliveryId) add('delivery_id = ?', query.deliveryId);
  if (query.statusClass) add('status_class = ?', Number(query.statusClass[0]));
  if (query.since !== undefined) add('attempted_at >= ?', query.since);
  if (query.until !== undefined) add('attempted_at <= ?', query.until);
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', values };
}

/**
 * A query's conditions with the cursor's bound added (the attempts older than where the previous page stopped), and
 * their values: what a page's keys are read with.
 */
export function paged(where: string, values: ReadonlyArray<string | number>, after: { attemptedAt: number; sequence: number } | undefined): { where: string; values: Array<string | number> } {
  if (!after) return { where, values: [...values] };
  return { where: `${where ? `${where} AND` : 'WHERE'} (attempted_at, sequence) < (?, ?)`, values: [...values, after.attemptedAt, after.sequence] };
}

/** A page's cursor: the sort key (attemptedAt, then the store's own sequence) of the last attempt it showed. */
export const cursor = {
  encode: (attemptedAt: number, sequence: number): string => Buffer.from(`${attemptedAt}.${sequence}`).toString('base64url'),
  decode(text: string): { attemptedAt: number; sequence: number } {
    const match = /^(\d+)\.(\d+)$/.exec(Buffer.from(text, 'base64url').toString());
    if (!match) throw new HistoryQueryError('cursor', 'is not one this console gave: use the `next` of a previous page');
    return { attemptedAt: Number(match[1]), sequence: Number(match[2]) };
  },
};

/** A query the history cannot answer, naming the parameter. */
export class HistoryQueryError extends Error {
  readonly field: string;

  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'HistoryQueryError';
    this.field = field;
  }
}
