import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, type DeliveryLog } from '../../schemas/index.ts';
import { createKafka, createProducer, kafkaConnection } from '../../services/common/kafka.ts';
import { registryConnection, SchemaRegistryClient } from '../../services/common/registry.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { applyAttempts, emptyHistogram, endpointFigures, histogramBytes, histogramOf, mergeHistograms, percentileOf, rollUp } from '../../services/console/history/endpoint-stats.ts';
import { RecentBuckets } from '../../services/console/history/recent-buckets.ts';
import { HistoryFeed, writesOf } from '../../services/console/history/feed.ts';
import { HistoryRetention } from '../../services/console/history/retention.ts';
import { newDeliveryCommand } from '../../services/common/deliveries.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { PostgresHistoryStore } from '../../services/console/history/postgres-store.ts';
import { SqliteHistoryStore } from '../../services/console/history/sqlite-store.ts';
import { COUNT_LIMIT, cursor, HistoryQueryError, type HistoryStore } from '../../services/console/history/store.ts';
import { freePort } from '../../stack/ports.ts';
import { startPostgres, type Postgres } from '../../stack/postgres.ts';
import { clusterEnv, testCluster, testLogger, valid, waitFor } from '../helpers.ts';

const T0 = Date.UTC(2026, 11, 1);
const position = (topic: string, partition: number, next: string) => ({ topic, partition, next });

function attempt(index: number, overrides: Partial<DeliveryLog> = {}): DeliveryLog {
  return valid(contracts.deliveryLog, {
    deliveryId: `msg_${String(index).padStart(6, '0')}`, attempt: 1, ruleId: `rule-${index % 3}`, ruleName: `Rule ${index % 3}`, application: 'app',
    eventId: `evt-${index % 2 ? 'qa' : 'prod'}-${index}`, eventType: 'workflow_started', url: `http://127.0.0.1:9/hook-${index % 2}`,
    outcome: index % 5 === 0 ? 'failed' : 'delivered', httpStatus: index % 5 === 0 ? 503 : 200, error: null, latencyMs: index, attemptedAt: T0 + index * 1000,
    nextAttemptAt: null, pool: 'default', traceId: null,
    request: { headers: { 'content-type': 'application/json' }, body: `{"n":${index}}`, bodyTruncated: false, bodyBytes: 8, bodySha256: null },
    response: null, ...overrides,
  });
}

// Each backend answers the same tests: the embedded file, and PostgreSQL (Debian's, started for this file).
let postgres: Promise<Postgres> | undefined;
afterAll(async () => (await postgres)?.stop());
const backends = [
  // Their clock at T0, where the attempts are: buckets no window would read at the real time are not written.
  { backend: 'SQLite', open: async () => new SqliteHistoryStore(join(await mkdtemp(join(tmpdir(), 'history-')), 'history.sqlite'), { now: () => T0 }) },
  { backend: 'PostgreSQL', open: async () => new PostgresHistoryStore(await (await (postgres ??= startPostgres())).database(), { now: () => T0 }) },
];

describe.each(backends)('history store ($backend)', ({ open }) => {
  let store: HistoryStore;

  beforeAll(async () => {
    store = await open();
    // Two partitions' records in one write, each with its position.
    await store.append([
      { records: Array.from({ length: 125 }, (_, index) => attempt(index)), position: position('log', 0, '125') },
      { records: Array.from({ length: 125 }, (_, index) => attempt(index + 125)), position: position('log', 1, '125') },
    ]);
    return () => store.close();
  });

  it('answers every filter from the whole history, newest first, with a count and cursor pages over all of it', async () => {
    const first = await store.query({ limit: 100 });
    expect(first.count).toBe(250);
    expect(first.entries.map((entry) => entry.attemptedAt)).toEqual(Array.from({ length: 100 }, (_, index) => T0 + (249 - index) * 1000));
    const second = await store.query({ limit: 100, cursor: first.next! });
    const third = await store.query({ limit: 100, cursor: second.next! });
    expect([second.entries.length, third.entries.length, third.next]).toEqual([100, 50, null]);
    expect(new Set([...first.entries, ...second.entries, ...third.entries].map((entry) => entry.deliveryId)).size).toBe(250);
    // The entry comes back whole, as the topic carried it.
    expect(third.entries.at(-1)).toEqual(attempt(0));

    expect((await store.query({ eventIdPrefix: 'evt-qa' })).count).toBe(125);
    expect((await store.query({ eventIdPrefix: 'evt-qa-1' })).entries.map((entry) => entry.eventId).every((id) => id.startsWith('evt-qa-1'))).toBe(true);
    expect((await store.query({ eventId: 'evt-qa-1' })).entries.map((entry) => entry.eventId)).toEqual(['evt-qa-1']);
    expect((await store.query({ deliveryId: 'msg_000042' })).entries.map((entry) => entry.eventId)).toEqual(['evt-prod-42']);
    expect((await store.query({ statusClass: '5xx' })).count).toBe(50);
    expect((await store.query({ statusClass: '2xx', outcome: 'failed' })).count).toBe(0);
    expect((await store.query({ ruleId: 'rule-1', url: 'http://127.0.0.1:9/hook-1' })).count).toBe(42);
    // A rule's or an endpoint's attempts, failed and delivered, newest first over pages (one range per outcome, merged).
    const newestOf = (keep: (index: number) => boolean) => Array.from({ length: 250 }, (_, index) => 249 - index).filter(keep).map((index) => attempt(index).deliveryId);
    for (const [filter, keep] of [[{ ruleId: 'rule-1' }, (index: number) => index % 3 === 1], [{ url: 'http://127.0.0.1:9/hook-1' }, (index: number) => index % 2 === 1]] as const) {
      const firstPage = await store.query({ ...filter, limit: 50 });
      const secondPage = await store.query({ ...filter, limit: 100, cursor: firstPage.next! });
      expect([...firstPage.entries, ...secondPage.entries].map((entry) => entry.deliveryId)).toEqual(newestOf(keep));
      expect(secondPage.next).toBeNull();
    }
    expect((await store.query({ since: T0 + 10_000, until: T0 + 19_000 })).count).toBe(10);
    expect((await store.query({ eventType: 'task_failed' })).count).toBe(0);
    await expect(store.query({ cursor: 'not-a-cursor' })).rejects.toThrow(HistoryQueryError);
  });

  it('finds an attempt, keeps positions with its attempts, and says what it holds', async () => {
    expect((await store.find('msg_000007', 1))?.eventId).toBe('evt-qa-7');
    expect(await store.find('msg_000007', 2)).toBeUndefined();
    expect(await store.positions()).toEqual([position('log', 0, '125'), position('log', 1, '125')]);
    expect(await store.holds()).toMatchObject({ attempts: 250, oldestAt: T0, newestAt: T0 + 249_000, bytes: expect.any(Number) });
    expect((await store.summaries(T0 + 248_000)).map((summary) => summary.latencyMs)).toEqual([248, 249]);
  });

  it('keeps each delivery\'s first command (what a resend sends) and tells each delivery\'s newest state, for Recover', async () => {
    const event = valid(contracts.workflowEvent, harnessEvent('workflow_started'));
    const first = newDeliveryCommand(event, 'rule-1', T0);
    await store.appendCommands([{ records: [first, { ...first, attempt: 2 }], position: position('commands', 0, '2') }]);
    expect(await store.command(first.deliveryId)).toEqual(first);
    expect(await store.command('msg_unknown')).toBeUndefined();
    expect(await store.positions()).toContainEqual(position('commands', 0, '2'));
    // msg_000005 failed (index % 5 == 0), then a second attempt was delivered: its newest record decides.
    await store.append([{ records: [attempt(5, { attempt: 2, outcome: 'delivered', httpStatus: 200, attemptedAt: T0 + 300_000 })], position: position('log', 0, '126') }]);
    const failed = await store.deliveries({ ruleId: 'rule-1', outcome: 'failed' }, 1000);
    expect(failed.map((delivery) => delivery.deliveryId)).toContain('msg_000010');
    expect(failed.find((delivery) => delivery.deliveryId === 'msg_000010')).toEqual({ deliveryId: 'msg_000010', ruleId: 'rule-1', lastAttempt: 1, outcome: 'failed' });
    expect((await store.deliveries({ deliveryId: 'msg_000005' }, 10))).toEqual([{ deliveryId: 'msg_000005', ruleId: 'rule-2', lastAttempt: 2, outcome: 'delivered' }]);
    expect(await store.deliveries({ ruleId: 'rule-1' }, 3)).toHaveLength(3);
  });

  it('a prefix matching tens of thousands of events pages newest first, hour by hour across the gaps between them', async () => {
    const many = 20_500;
    // One every two seconds, over eleven hours and more, with two hours of none after the first 12,000.
    const at = (index: number) => T0 + 1_000_000 + index * 2000 + (index >= 12_000 ? 2 * 3_600_000 : 0);
    const ids = (from: number, length: number) => Array.from({ length }, (_, index) => `evt-many-${from - index}`);
    await store.append([{ records: Array.from({ length: many }, (_, index) => attempt(1000 + index, { eventId: `evt-many-${index}`, request: null, attemptedAt: at(index) })), position: position('log', 2, String(many)) }]);
    const first = await store.query({ eventIdPrefix: 'evt-many-', limit: 100 });
    // Counted to COUNT_LIMIT, past which the page says "more than"; the whole history's count stays exact.
    expect(first).toMatchObject({ count: COUNT_LIMIT, countCapped: true });
    const { attempts: held } = await store.holds();
    expect(held).toBeGreaterThan(COUNT_LIMIT);
    expect(await store.query({ limit: 1 })).toMatchObject({ count: held, countCapped: false });
    expect(first.entries.map((entry) => entry.eventId)).toEqual(ids(many - 1, 100));
    const second = await store.query({ eventIdPrefix: 'evt-many-', limit: 100, cursor: first.next! });
    expect(second.entries.map((entry) => entry.eventId)).toEqual(ids(many - 101, 100));
    // A page over the empty hours, and the next one from its cursor.
    const across = await store.query({ eventIdPrefix: 'evt-many-', limit: 100, until: at(12_049) });
    expect(across.entries.map((entry) => entry.eventId)).toEqual(ids(12_049, 100));
    expect((await store.query({ eventIdPrefix: 'evt-many-', limit: 100, until: at(12_049), cursor: across.next! })).entries.map((entry) => entry.eventId)).toEqual(ids(11_949, 100));
    // The walk stops at `since`: the last page holds what is left above it, and says it is the last.
    const last = await store.query({ eventIdPrefix: 'evt-many-', limit: 100, since: at(10_000), cursor: cursor.encode(at(10_030), 0) });
    expect([last.entries.map((entry) => entry.eventId), last.next]).toEqual([ids(10_029, 30), null]);
    // A rarer prefix among them, its few keys sorted.
    expect((await store.query({ eventIdPrefix: 'evt-many-1999', limit: 100 })).entries.map((entry) => entry.eventId)).toEqual([...Array.from({ length: 10 }, (_, index) => `evt-many-1999${9 - index}`), 'evt-many-1999']);
  });
});

describe('history store shared by consoles (PostgreSQL)', () => {
  it('leaves out of a write the partitions another feeder stored that far already, and stores the others with it', async () => {
    const store = new PostgresHistoryStore(await (await (postgres ??= startPostgres())).database());
    try {
      await store.append([{ records: [attempt(1), attempt(2)], position: position('log', 0, '2') }]);
      // A feeder that held the lock before this one stored partition 0 to 2; this write read it again, and partition 1.
      await store.append([{ records: [attempt(1), attempt(2)], position: position('log', 0, '2') }, { records: [attempt(3)], position: position('log', 1, '1') }]);
      expect((await store.query({})).entries.map((entry) => entry.deliveryId).sort()).toEqual(['msg_000001', 'msg_000002', 'msg_000003']);
      expect(await store.positions()).toEqual(expect.arrayContaining([position('log', 0, '2'), position('log', 1, '1')]));
    } finally {
      await store.close();
    }
  });
});

describe('history store shared by consoles (PostgreSQL): the endpoint view', () => {
  it('a console that does not feed the history sees the buckets the feeder writes after its first look', async () => {
    const url = await (await (postgres ??= startPostgres())).database();
    const feeder = new PostgresHistoryStore(url, { now: () => T0 });
    const reader = new PostgresHistoryStore(url, { now: () => T0 });
    try {
      const hook = 'http://127.0.0.1:9/hook-1';
      await feeder.append([{ records: [attempt(1), attempt(3, { outcome: 'failed', httpStatus: 503 })], position: position('log', 0, '2') }]);
      expect((await reader.endpoints(T0 + 60_000)).find((row) => row.url === hook)!.windows['5m']).toMatchObject({ sent: 2, delivered: 1 });
      await feeder.append([{ records: [attempt(5, { outcome: 'failed', httpStatus: 503 }), attempt(7)], position: position('log', 0, '4') }]);
      expect((await reader.endpoints(T0 + 60_000)).find((row) => row.url === hook)!.windows['5m']).toMatchObject({ sent: 4, delivered: 2, successRate: 0.5 });
      expect(await reader.endpoints(T0 + 60_000)).toEqual(await feeder.endpoints(T0 + 60_000));
    } finally {
      await reader.close();
      await feeder.close();
    }
  });
});

describe('history store written by two writes at once (PostgreSQL)', () => {
  it('adds both writes\' attempts to buckets neither found: none is lost to the other', async () => {
    const store = new PostgresHistoryStore(await (await (postgres ??= startPostgres())).database(), { now: () => T0 + 10 * 60_000 });
    try {
      expect(store.parallelWrites).toBe(2);
      const hook = 'http://127.0.0.1:9/shared';
      // Each round's attempts fall in a minute no bucket holds yet, and both writes add to its bucket at once.
      for (let minute = 0; minute < 5; minute += 1) {
        const batch = (partition: number) => ({
          records: Array.from({ length: 200 }, (_, index) => attempt(minute * 1000 + partition * 200 + index, { url: hook, attemptedAt: T0 + minute * 60_000 + index })),
          position: position('log', partition, String((minute + 1) * 200)),
        });
        await Promise.all([store.append([batch(0)]), store.append([batch(1)])]);
      }
      const [shared] = await store.endpoints(T0 + 10 * 60_000);
      expect(shared!.windows['1h']).toMatchObject({ sent: 2000 });
      expect((await store.holds()).attempts).toBe(2000);
    } finally {
      await store.close();
    }
  });
});

describe('history store shared by consoles (PostgreSQL): statistics', () => {
  it('analyses the attempts table as it grows, not only when autovacuum comes round (at most once a minute)', async () => {
    const url = await (await (postgres ??= startPostgres())).database();
    const store = new PostgresHistoryStore(url, { now: () => T0 });
    const client = new pg.Client({ connectionString: url });
    try {
      for (let start = 0; start < 12_000; start += 4000) {
        await store.append([{ records: Array.from({ length: 4000 }, (_, index) => attempt(start + index)), position: position('log', 0, String(start + 4000)) }]);
      }
      await client.connect();
      const analysed = async () => (await client.query<{ last_analyze: Date | null }>("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'attempts'")).rows[0]!.last_analyze;
      await waitFor('the table analysed', async () => (await analysed()) !== null, 10_000);
      const { rows } = await client.query<{ tuples: number }>("SELECT reltuples AS tuples FROM pg_class WHERE oid = 'attempts'::regclass");
      expect(rows[0]!.tuples).toBeGreaterThanOrEqual(10_000);
    } finally {
      await client.end();
      await store.close();
    }
  });
});

describe('history store on one file (SQLite)', () => {
  it('refuses a second console on the same file, naming the setting', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'history-')), 'history.sqlite');
    const first = new SqliteHistoryStore(file);
    try {
      expect(() => new SqliteHistoryStore(file)).toThrow(/in use by another console: give each console its own CONSOLE_DATA_DIR/);
    } finally {
      await first.close();
    }
  });
});

describe('endpoint figures', () => {
  const hook = 'http://127.0.0.1:9/flaky';
  const at = (seconds: number) => T0 + seconds * 1000;
  const sent = (index: number, seconds: number, outcome: DeliveryLog['outcome'], httpStatus: number | null) =>
    attempt(index, { url: hook, outcome, httpStatus, error: httpStatus === 200 ? null : `HTTP ${httpStatus}`, attemptedAt: at(seconds), latencyMs: 10 * index });
  const deferred = (index: number, seconds: number) => attempt(index, { url: hook, outcome: 'retrying', httpStatus: null, deferral: 'breaker_open', error: 'circuit breaker open for the endpoint', attemptedAt: at(seconds), request: null, latencyMs: null });

  it('percentiles from the latency histogram are within a bucket (10 %) of the exact ones', () => {
    const { buckets } = rollUp(Array.from({ length: 1000 }, (_, index) => attempt(index, { latencyMs: index + 1, attemptedAt: T0, url: hook })), T0);
    const histogram = mergeHistograms(emptyHistogram(), buckets.find((bucket) => bucket.span === 60_000)!.latencies);
    expect(percentileOf(histogram, 0.5)! / 500).toBeGreaterThan(0.9);
    expect(percentileOf(histogram, 0.5)! / 500).toBeLessThan(1.1);
    expect(percentileOf(histogram, 0.95)! / 950).toBeGreaterThan(0.9);
    expect(percentileOf(histogram, 0.95)! / 950).toBeLessThan(1.1);
    expect(percentileOf(emptyHistogram(), 0.5)).toBeNull();
    // Kept as bytes and read back, the same.
    expect(histogramOf(histogramBytes(histogram))).toEqual(histogram);
  });

  it('leaves out the buckets no window reads any more: a history catching up on a week writes no minute buckets of days ago', () => {
    const now = T0 + 7 * 24 * 3_600_000;
    const spans = (attemptedAt: number) => rollUp([attempt(1, { url: hook, attemptedAt })], now).buckets.map((bucket) => bucket.span).sort((a, b) => a - b);
    expect(spans(now - 60_000)).toEqual([60_000, 300_000, 3_600_000, 86_400_000]);
    expect(spans(now - 30 * 60_000)).toEqual([300_000, 3_600_000, 86_400_000]);
    expect(spans(now - 2 * 3_600_000)).toEqual([3_600_000, 86_400_000]);
    expect(spans(now - 2 * 24 * 3_600_000)).toEqual([86_400_000]);
    expect(spans(now - 9 * 24 * 3_600_000)).toEqual([]);
  });

  it('held between looks, the buckets give the figures of reading them all; a look takes the rows changed since the last', () => {
    const now = at(600);
    const versioned = (entries: DeliveryLog[], version: number) => rollUp(entries, now).buckets.map((bucket) => ({ ...bucket, version }));
    const states = [applyAttempts(undefined, hook, [])];
    const recent = new RecentBuckets();
    expect(recent.changedSince).toBe(-1);
    const first = versioned([sent(1, 0, 'delivered', 200), sent(2, 300, 'failed', 503)], 1);
    expect(recent.figures(states, first, now)).toEqual(endpointFigures(states, first, now));
    expect(recent.changedSince).toBe(1);
    // The same buckets again at version 2, with a third attempt added, replace those held.
    const second = versioned([sent(1, 0, 'delivered', 200), sent(2, 300, 'failed', 503), sent(3, 590, 'delivered', 200)], 2);
    const figures = recent.figures(states, second, now);
    expect(figures).toEqual(endpointFigures(states, second, now));
    expect(figures[0]!.windows['1h']).toMatchObject({ sent: 3, delivered: 2 });
    // A look whose read began before version 2 was written lands after it: its older rows change nothing.
    expect(recent.figures(states, first, now)).toEqual(figures);
    expect(recent.figures(states, [], now)).toEqual(figures);
    // A week on, no window reads any of them: none is held.
    expect(recent.figures(states, [], at(8 * 24 * 3600))[0]!.windows['7d']).toMatchObject({ sent: 0 });
  });

  it('holds no more buckets than its limit: past it each look reads every row, and the figures are the same', () => {
    const now = at(60);
    // Four buckets (a minute, five minutes, an hour, a day), every one read by a window at `now`.
    const all = rollUp([sent(1, 0, 'delivered', 200), sent(2, 30, 'failed', 503)], now).buckets.map((bucket) => ({ ...bucket, version: 1 }));
    expect(all).toHaveLength(4);
    const recent = new RecentBuckets({ limit: all.length - 1 });
    const states = [applyAttempts(undefined, hook, [])];
    expect(recent.figures(states, all, now)).toEqual(endpointFigures(states, all, now));
    expect(recent.changedSince).toBe(-1);
    expect(new RecentBuckets({ limit: all.length }).figures(states, all, now)).toEqual(endpointFigures(states, all, now));
  });

  it.each(backends)('counts attempts made (not deferrals) per window, and keeps failing since, last success, last error and the breaker across batches in any order ($backend)', async ({ open }) => {
    const store = await open();
    try {
      // Later batch first: the delivery log's partitions interleave.
      await store.append([{ records: [sent(3, 120, 'failed', 503), deferred(4, 130)], position: position('log', 1, '2') }]);
      await store.append([{ records: [sent(1, 0, 'delivered', 200), sent(2, 60, 'retrying', 500)], position: position('log', 0, '2') }]);
      await store.append([{ records: [attempt(11, { url: 'http://127.0.0.1:9/other', attemptedAt: at(90) })], position: position('log', 2, '1') }]);
      const [flaky, other] = await store.endpoints(at(150));
      expect(flaky).toMatchObject({ url: hook, lastSuccessAt: at(0), failingSince: at(60), lastErrorAt: at(120), lastError: 'HTTP 503', breakerOpenAt: at(130), lastSentAt: at(120) });
      expect(flaky!.windows['5m']).toMatchObject({ sent: 3, delivered: 1, successRate: 1 / 3 });
      expect(flaky!.windows['7d']).toMatchObject({ sent: 3, delivered: 1 });
      expect(flaky!.windows['5m'].p50Ms).toBeGreaterThan(18);
      expect(flaky!.windows['5m'].p50Ms).toBeLessThan(22);
      expect(other).toMatchObject({ url: 'http://127.0.0.1:9/other', failingSince: null, windows: { '1h': { sent: 1, delivered: 1, successRate: 1 } } });
      // Ten minutes on, the 5-minute window is empty and the hour's still counts them.
      const [later] = await store.endpoints(at(750));
      expect(later!.windows['5m']).toMatchObject({ sent: 0, successRate: null });
      expect(later!.windows['1h']).toMatchObject({ sent: 3 });
      // A success after the failures ends them.
      await store.append([{ records: [sent(5, 140, 'delivered', 200)], position: position('log', 0, '3') }]);
      expect((await store.endpoints(at(150)))[0]).toMatchObject({ failingSince: null, lastSuccessAt: at(140), lastErrorAt: at(120) });
      // Buckets no window reads any more are pruned; the endpoint's state stays.
      await store.pruneBuckets(at(8 * 24 * 3600));
      expect((await store.endpoints(at(8 * 24 * 3600)))[0]).toMatchObject({ lastSuccessAt: at(140), windows: { '7d': { sent: 0 } } });
    } finally {
      await store.close();
    }
  });

  it('a history file of an older layout is emptied and read again from the topic, not misread', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'history-layout-')), 'history.sqlite');
    const old = new DatabaseSync(file);
    old.exec('CREATE TABLE attempts (sequence INTEGER PRIMARY KEY, entry BLOB); CREATE TABLE positions (partition INTEGER PRIMARY KEY, next_offset TEXT NOT NULL); INSERT INTO positions VALUES (0, \'900\')');
    old.close();
    const store = new SqliteHistoryStore(file);
    try {
      expect(await store.opened()).toEqual({ layoutChanged: true });
      expect(await store.positions()).toEqual([]);
      await store.append([{ records: [attempt(1)], position: position('log', 0, '1') }]);
      expect((await store.holds()).attempts).toBe(1);
    } finally {
      await store.close();
    }
    const reopened = new SqliteHistoryStore(file);
    expect(await reopened.opened()).toEqual({ layoutChanged: false });
    await reopened.close();
  });
});

describe('history layout upgrades', () => {
  // A layout-6 history as that layout left it: bucket rows without versions.
  const downgrade = {
    SQLite: async (file: string) => {
      const db = new DatabaseSync(file);
      db.exec("ALTER TABLE endpoint_buckets DROP COLUMN version; DELETE FROM totals WHERE name = 'bucket_version'; PRAGMA user_version = 6");
      db.close();
    },
    PostgreSQL: async (url: string) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query("ALTER TABLE endpoint_buckets DROP COLUMN version; DELETE FROM totals WHERE name = 'bucket_version'; UPDATE history_layout SET version = 6");
      await client.end();
    },
  };
  const places = {
    SQLite: async () => join(await mkdtemp(join(tmpdir(), 'history-upgrade-')), 'history.sqlite'),
    PostgreSQL: async () => (await (postgres ??= startPostgres())).database(),
  };
  const stores = {
    SQLite: (where: string) => new SqliteHistoryStore(where, { now: () => T0 }),
    PostgreSQL: (where: string) => new PostgresHistoryStore(where, { now: () => T0 }),
  };

  it.each(['SQLite', 'PostgreSQL'] as const)('a layout-6 history is upgraded in place, keeping its attempts, positions and endpoint figures (%s)', async (backend) => {
    const where = await places[backend]();
    const old = stores[backend](where);
    await old.append([{ records: Array.from({ length: 10 }, (_, index) => attempt(index)), position: position('log', 0, '10') }]);
    const before = await old.endpoints(T0 + 60_000);
    await old.close();
    await downgrade[backend](where);
    const store = stores[backend](where);
    try {
      expect(await store.opened()).toEqual({ layoutChanged: false });
      expect((await store.holds()).attempts).toBe(10);
      expect(await store.positions()).toEqual([position('log', 0, '10')]);
      expect(await store.endpoints(T0 + 60_000)).toEqual(before);
      await store.append([{ records: [attempt(10)], position: position('log', 0, '11') }]);
      expect((await store.endpoints(T0 + 60_000)).find((row) => row.url === 'http://127.0.0.1:9/hook-0')!.windows['5m'].sent).toBe(6);
    } finally {
      await store.close();
    }
  });
});

describe.each(backends)('history retention ($backend)', ({ backend, open }) => {
  const fill = (store: HistoryStore, count: number, body = '') => store.append([{
    records: Array.from({ length: count }, (_, index) => attempt(index, { request: { headers: {}, body, bodyTruncated: false, bodyBytes: body.length, bodySha256: null } })),
    position: position('log', 0, String(count)),
  }]);

  it('deletes attempts past the age in steps, letting the event loop turn between them', async () => {
    const store = await open();
    await fill(store, 20_000);
    // A command goes with its time's attempts.
    const event = valid(contracts.workflowEvent, harnessEvent('workflow_started'));
    const [old, kept] = [newDeliveryCommand(event, 'old', T0), newDeliveryCommand(event, 'kept', T0 + 19_500_000)];
    await store.appendCommands([{ records: [old, kept], position: position('commands', 0, '2') }]);
    const retention = new HistoryRetention(store, { maxAgeMs: 1000_000, maxBytes: 10 * 1024 ** 3 }, testLogger, { now: () => T0 + 20_000_000 });
    // node:sqlite is synchronous: the feed's writes and the page's queries get their turn only when the event loop
    // turns, which it must do between the steps.
    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 0);
    expect(await retention.run()).toBe(19_001);
    clearInterval(ticker);
    expect([await store.command(old.deliveryId), await store.command(kept.deliveryId)]).toEqual([undefined, kept]);
    expect(turns).toBeGreaterThanOrEqual(backend === 'SQLite' ? 5 : 1);
    expect(await store.holds()).toMatchObject({ attempts: 1000, oldestAt: T0 + 19_000_000, newestAt: T0 + 19_999_000 });
    expect(await retention.run()).toBe(0);
    await store.close();
  });

  it('deletes the oldest attempts past the size, whatever their age', async () => {
    const store = await open();
    await fill(store, 3000, 'x'.repeat(4000));
    const before = await store.holds();
    expect(before.usedBytes).toBeGreaterThan(12 * 1024 ** 2);
    const retention = new HistoryRetention(store, { maxAgeMs: 365 * 86_400_000, maxBytes: 4 * 1024 ** 2 }, testLogger, { now: () => T0 });
    expect(await retention.run()).toBeGreaterThan(2000);
    const after = await store.holds();
    expect(after.usedBytes).toBeLessThanOrEqual(4 * 1024 ** 2);
    expect(after).toMatchObject({ newestAt: before.newestAt, attempts: expect.any(Number) });
    expect(after.attempts).toBeGreaterThan(0);
    await store.close();
  });

  it.runIf(backend === 'SQLite')('gives the freed space back to the file system', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'history-retention-')), 'history.sqlite');
    const store = new SqliteHistoryStore(file);
    await fill(store, 3000, 'x'.repeat(4000));
    const before = await store.holds();
    await new HistoryRetention(store, { maxAgeMs: 365 * 86_400_000, maxBytes: 4 * 1024 ** 2 }, testLogger, { now: () => T0 }).run();
    await store.close();
    // Closed, the log is checkpointed into the file: the pages freed went back to the file system.
    const reopened = new SqliteHistoryStore(file);
    expect((await reopened.holds()).bytes).toBeLessThan(before.bytes / 2);
    await reopened.close();
  });
});

describe('history feed: writes at once', () => {
  const read = (records: number) => ({ segment: { records: Array.from({ length: records }), position: position('log', 0, '1') } });

  it('deals the partitions free to write into as many writes as lanes are free, as even as whole partitions allow', () => {
    const free: Array<[string, ReturnType<typeof read>]> = [['log:0', read(100)], ['log:1', read(3000)], ['log:2', read(900)], ['log:3', read(1000)]];
    const keys = (writes: ReturnType<typeof writesOf>) => writes.map((write) => write.map(([key]) => key).sort());
    expect(keys(writesOf(free, 1))).toEqual([['log:0', 'log:1', 'log:2', 'log:3']]);
    expect(keys(writesOf(free, 2))).toEqual([['log:1'], ['log:0', 'log:2', 'log:3']]);
    expect(keys(writesOf(free, 3))).toEqual([['log:1'], ['log:3'], ['log:0', 'log:2']]);
    expect(writesOf(free.slice(0, 1), 2)).toHaveLength(1);
    expect(writesOf(free, 0)).toEqual([]);
    expect(writesOf([], 2)).toEqual([]);
  });
});

describe('history fed from the delivery-log topic', () => {
  const cluster = testCluster('history');
  const names = topicNames(cluster.TOPIC_PREFIX);
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'history-test', logger: testLogger });
  const registry = new SchemaRegistryClient(registryConnection(cluster));
  type Batch = { partition: number; fetchedFrom: string; next: string; attempts: number };

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
  });

  /** A console process; its debug lines say where the fetch of each stored batch began, and whether it feeds. */
  function startConsole(batches: Batch[], env: NodeJS.ProcessEnv, said: string[] = []): ChildProcess {
    const child = spawn(process.execPath, [new URL('../../services/console/main.ts', import.meta.url).pathname], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: clusterEnv(cluster, { CONSOLE_HTTP_PORT: '0', CONSOLE_TOKEN: 'x'.repeat(40), LOG_LEVEL: 'debug', LOG_FORMAT: 'json', ...env }),
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const record = JSON.parse(line) as { msg?: string; topic?: string; partition: number; fetchedFrom: string; next: string; records: number };
      said.push(record.msg ?? '');
      if (record.topic !== names.deliveryLog) return;
      if (record.msg === 'history stored a batch') batches.push({ ...record, attempts: record.records });
      if (record.msg === 'history skipped a batch it already stored') batches.push({ ...record, attempts: 0 });
    });
    return child;
  }
  const exited = (child: ChildProcess) => new Promise((resolve) => child.once('exit', resolve));
  const last = (batches: Batch[], partition: number) => batches.filter((batch) => batch.partition === partition).at(-1)?.next;

  /** `count` more attempts on the delivery log, numbered from `from`; the log's end offsets after them. */
  async function logAttempts(from: number, count: number): Promise<Map<number, string>> {
    const codec = await registry.codec(`${names.deliveryLog}-value`, contracts.deliveryLog);
    const producer = createProducer(kafka);
    await producer.connect();
    const body = 'x'.repeat(2000);
    for (let start = from; start < from + count; start += 1000) {
      await producer.send({ topic: names.deliveryLog, messages: Array.from({ length: 1000 }, (_, index) => {
        const entry = attempt(start + index, { request: { headers: {}, body, bodyTruncated: false, bodyBytes: body.length, bodySha256: null } });
        return { key: entry.deliveryId, value: codec.encode(entry) };
      }) });
    }
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const ends = new Map((await admin.fetchTopicOffsets(names.deliveryLog)).map(({ partition, offset }) => [partition, offset]));
    await admin.disconnect();
    return ends;
  }

  /** Every attempt's delivery id, walking the whole history page by page. */
  async function storedIds(store: HistoryStore): Promise<{ count: number; ids: Set<string> }> {
    const ids = new Set<string>();
    let count = 0;
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const page = await store.query({ limit: 1000, ...(cursor ? { cursor } : {}) });
      count = page.count;
      for (const entry of page.entries) ids.add(entry.deliveryId);
      cursor = page.next;
    }
    return { count, ids };
  }

  it('after kill -9 resumes where it stopped: no gap, no duplicate row, and no re-read from the beginning', { timeout: 120_000 }, async () => {
    const total = 12_000;
    const ends = await logAttempts(0, total);
    const env = { CONSOLE_DATA_DIR: await mkdtemp(join(tmpdir(), 'history-feed-')) };

    const before: Batch[] = [];
    const first = startConsole(before, env);
    await waitFor('the first batches stored', () => before.length >= 2, 60_000);
    first.kill('SIGKILL');
    await exited(first);
    expect(before.reduce((sum, batch) => sum + batch.attempts, 0)).toBeLessThan(total);

    const after: Batch[] = [];
    const second = startConsole(after, env);
    await waitFor('the rest stored', () => [...ends].every(([partition, end]) => (last(after, partition) ?? last(before, partition)) === end), 60_000);
    second.kill('SIGTERM');
    await exited(second);
    // Each partition went on from no earlier than the position its last logged batch before the kill committed (a
    // batch committed just before the kill may not have had its line written).
    for (const partition of new Set(before.map((batch) => batch.partition))) {
      const resumed = after.find((batch) => batch.partition === partition);
      if (resumed) expect(BigInt(resumed.fetchedFrom)).toBeGreaterThanOrEqual(BigInt(last(before, partition)!));
    }

    const store = new SqliteHistoryStore(join(env.CONSOLE_DATA_DIR, 'history.sqlite'));
    try {
      const { count, ids } = await storedIds(store);
      expect([count, ids.size]).toEqual([total, total]);
    } finally {
      await store.close();
    }
  });

  it('two consoles share one PostgreSQL history: one feeds it, the other serves it, and takes over after kill -9 with no gap and no duplicate', { timeout: 120_000 }, async () => {
    const url = await (await (postgres ??= startPostgres())).database();
    const logged = (await logAttempts(12_000, 6000));
    const env = { CONSOLE_HISTORY_URL: url };
    const fed: Batch[] = [];
    const served: Batch[] = [];
    const standbySaid: string[] = [];
    const feeder = startConsole(fed, env);
    await waitFor('the feeder storing', () => fed.length >= 2, 60_000);
    const standby = startConsole(served, env, standbySaid);
    await waitFor('the standby up', () => standbySaid.includes('another console feeds the shared delivery history: this one serves it, and takes over if that one stops'), 60_000);
    expect(served).toEqual([]);
    feeder.kill('SIGKILL');
    await exited(feeder);
    // The feeder's session died with it, and its lock: the standby takes over from the stored positions.
    await waitFor('the rest stored by the standby', () => [...logged].every(([partition, end]) => (last(served, partition) ?? last(fed, partition)) === end), 60_000);
    standby.kill('SIGTERM');
    await exited(standby);
    const store = new PostgresHistoryStore(url);
    try {
      const { count, ids } = await storedIds(store);
      expect([count, ids.size]).toEqual([18_000, 18_000]);
    } finally {
      await store.close();
    }
  });

  /** A topic of its own with `partitions` partitions, holding `entries`; its name. */
  async function topicHolding(name: string, partitions: number, entries: DeliveryLog[]): Promise<string> {
    const topic = `${cluster.TOPIC_PREFIX}${name}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
    await admin.disconnect();
    const codec = await registry.codec(`${topic}-value`, contracts.deliveryLog);
    const producer = createProducer(kafka);
    await producer.connect();
    for (let start = 0; start < entries.length; start += 1000) {
      await producer.send({ topic, messages: entries.slice(start, start + 1000).map((entry) => ({ key: entry.deliveryId, value: codec.encode(entry) })) });
    }
    await producer.disconnect();
    return topic;
  }

  /** `store` with some of its members answered by `overrides`. */
  const storeWith = (store: HistoryStore, overrides: Partial<HistoryStore>): HistoryStore => new Proxy(store, {
    get: (target, name) => {
      if (Object.hasOwn(overrides, name)) return overrides[name as keyof HistoryStore];
      const value: unknown = Reflect.get(target, name);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });

  it('tries a failed write again, and stops the feed (console not ready) when writes keep failing, with nothing stored twice or lost', { timeout: 60_000 }, async () => {
    const topic = await topicHolding('feed-retry', 1, [attempt(1), attempt(2), attempt(3)]);
    const store = new SqliteHistoryStore(join(await mkdtemp(join(tmpdir(), 'history-retry-')), 'history.sqlite'));
    let refusals = 1;
    const flaky = storeWith(store, { append: (segments) => (refusals-- > 0 ? Promise.reject(new Error('disk busy')) : store.append(segments)) });
    const feed = new HistoryFeed({ kafka, registry, store: flaky, groupPrefix: cluster.TOPIC_PREFIX, logger: testLogger, topic, writeRetryDelaysMs: [100, 200] });
    await feed.start();
    await waitFor('the attempts stored after one refusal', async () => (await store.query({})).count === 3, 20_000);
    expect(feed.failure).toBeUndefined();
    expect(await store.positions()).toEqual([position(topic, 0, '3')]);
    await feed.stop();

    const other = new SqliteHistoryStore(join(await mkdtemp(join(tmpdir(), 'history-broken-')), 'history.sqlite'));
    const failing = new HistoryFeed({ kafka, registry, store: storeWith(other, { append: () => Promise.reject(new Error('disk full')) }), groupPrefix: cluster.TOPIC_PREFIX, logger: testLogger, topic, writeRetryDelaysMs: [100, 200] });
    await failing.start();
    await waitFor('the feed given up after its tries', () => failing.failure !== undefined, 20_000);
    expect(failing.failure?.message).toBe('disk full');
    expect(await other.positions()).toEqual([]);
    await failing.stop();
    await Promise.all([store.close(), other.close()]);
  });

  it('writes as many batches at once as the store takes, never one partition in two of them, each record once', { timeout: 60_000 }, async () => {
    const total = 8000;
    const topic = await topicHolding('feed-lanes', 4, Array.from({ length: total }, (_, index) => attempt(index)));
    const store = new SqliteHistoryStore(join(await mkdtemp(join(tmpdir(), 'history-lanes-')), 'history.sqlite'));
    const writing = new Set<number>();
    let writes = 0;
    let mostWrites = 0;
    let overlaps = 0;
    // Taking two writes at once, each held for 50 ms: the feed has the next batches in hand meanwhile.
    const slow = storeWith(store, {
      parallelWrites: 2,
      async append(segments) {
        const partitions = segments.map(({ position: { partition } }) => partition);
        if (partitions.some((partition) => writing.has(partition))) overlaps += 1;
        for (const partition of partitions) writing.add(partition);
        mostWrites = Math.max(mostWrites, (writes += 1));
        try {
          await new Promise((resolve) => setTimeout(resolve, 50));
          await store.append(segments);
        } finally {
          writes -= 1;
          for (const partition of partitions) writing.delete(partition);
        }
      },
    });
    const feed = new HistoryFeed({ kafka, registry, store: slow, groupPrefix: cluster.TOPIC_PREFIX, logger: testLogger, topic });
    try {
      await feed.start();
      await waitFor('every attempt stored', async () => (await store.holds()).attempts >= total, 30_000);
      const page = await store.query({ limit: total });
      expect(page.count).toBe(total);
      expect(new Set(page.entries.map((entry) => entry.deliveryId)).size).toBe(total);
      expect(overlaps).toBe(0);
      expect(mostWrites).toBe(2);
    } finally {
      await feed.stop();
      await store.close();
    }
  });

  it('a PostgreSQL history that cannot be reached is a clear error naming the setting, never its password', async () => {
    const port = await freePort();
    const store = new PostgresHistoryStore(`postgres://webhooks:hunter2-secret@127.0.0.1:${port}/history`);
    const error = await store.opened().then(() => undefined, (failure: Error) => failure);
    expect(error?.message).toMatch(new RegExp(`^CONSOLE_HISTORY_URL: cannot reach PostgreSQL at postgres://webhooks@127\\.0\\.0\\.1:${port}/history: `));
    expect(error?.message).not.toContain('hunter2');
    await store.close();
  });
});
