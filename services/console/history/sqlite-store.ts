/**
 * The history on `node:sqlite`, the console's embedded default: one file in its data directory, in WAL mode, so the
 * feed's writes never block the page's reads. Attempts are stored as their Avro encoding (the delivery-log contract's
 * own, about a third of the JSON) beside the columns the queries filter and sort by.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { contracts, toBinary, type DeliveryCommand, type DeliveryLog } from '../../../schemas/index.ts';
import { addBuckets, applyAttempts, BUCKET_KEPT_MS, histogramBytes, histogramOf, rollUp, type EndpointFigures, type EndpointState } from './endpoint-stats.ts';
import { RecentBuckets } from './recent-buckets.ts';
import { ATTEMPT_INDEXES, conditions, COUNT_LIMIT, cursor, hourOf, hoursToWalk, LAYOUT, LAYOUT_UPGRADES, newestKeys, paged, PREFIX_WALK_FROM, type AttemptSummary, type DeliveryState, type HistoryHolds, type HistoryPage, type HistoryQuery, type HistoryStore, type Segment, type TopicPosition } from './store.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS attempts (
    sequence INTEGER PRIMARY KEY,
    attempted_at INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    rule_name TEXT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    url TEXT,
    outcome TEXT NOT NULL,
    status_class INTEGER,
    latency_ms REAL,
    entry BLOB NOT NULL
  );
  ${ATTEMPT_INDEXES}
  CREATE TABLE IF NOT EXISTS positions (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset TEXT NOT NULL, PRIMARY KEY (topic, partition));
  -- Each delivery's first command, Avro-encoded: what a resend sends again.
  CREATE TABLE IF NOT EXISTS commands (delivery_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, command BLOB NOT NULL);
  CREATE INDEX IF NOT EXISTS commands_by_time ON commands (created_at);
  CREATE TABLE IF NOT EXISTS endpoint_buckets (
    span INTEGER NOT NULL,
    start INTEGER NOT NULL,
    url TEXT NOT NULL,
    sent INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    latencies BLOB NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (span, start, url)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS endpoints (url TEXT PRIMARY KEY, state TEXT NOT NULL);
  -- The attempts held, kept with every insert and delete (count(*) over millions of rows is a scan), and the version
  -- of the last write of endpoint buckets.
  CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT OR IGNORE INTO totals VALUES ('attempts', 0), ('bucket_version', 0);
`;
const type = contracts.deliveryLog.type;
const commandType = contracts.deliveryCommand.type;
export class SqliteHistoryStore implements HistoryStore {
  readonly #file: string;
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #position: StatementSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #now: () => number;
  readonly #recentBuckets = new RecentBuckets();
  #layoutChanged = false;
  readonly parallelWrites = 1;

  /**
   * Opens (and creates, with its directory) the history at `file`, for this process only: a second console on the
   * same file would store every attempt again, so it is refused. `now`: the clock that decides which endpoint buckets
   * are still worth writing (tests set it).
   */
  constructor(file: string, { now = Date.now }: { now?: () => number } = {}) {
    this.#now = now;
    this.#file = file;
    mkdirSync(dirname(file), { recursive: true });
    this.#db = new DatabaseSync(file);
    try {
      // Exclusive: the lock is taken by the first write below and kept until close.
      // auto_vacuum before the first table: it lets retention give deleted pages back to the file system.
      // Checkpoints every 256 MB of WAL instead of 4 MB: each copies the pages changed since the last one into the file,
      // and the nine indexes change the same pages again and again, so rarer checkpoints copy each far fewer times
      // (storing a million attempts: 13,500 → 20,700 a second; the longest commit, one that checkpoints, 290 ms).
      this.#db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 65536;');
      this.#migrate();
    } catch (error) {
      this.#db.close();
      if ((error as { errcode?: number }).errcode !== 5) throw error; // SQLITE_BUSY
      throw new Error(`${file} is in use by another console: give each console its own CONSOLE_DATA_DIR`, { cause: error });
    }
    this.#insert = this.#db.prepare(`INSERT INTO attempts (attempted_at, hour, delivery_id, attempt, rule_id, rule_name, event_id, event_type, url, outcome, status_class, latency_ms, entry)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#position = this.#db.prepare('INSERT INTO positions (topic, partition, next_offset) VALUES (?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset');
  }

  #migrate(): void {
    this.#inTransaction(() => {
      let { user_version: layout } = this.#db.prepare('PRAGMA user_version').get() as { user_version: number };
      const tables = this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
      for (; tables.length > 0 && LAYOUT_UPGRADES[layout] !== undefined; layout += 1) this.#db.exec(LAYOUT_UPGRADES[layout]!);
      if (layout !== LAYOUT && tables.length > 0) {
        this.#layoutChanged = true;
        for (const { name } of tables) this.#db.exec(`DROP TABLE "${name}"`);
      }
      this.#db.exec(SCHEMA);
      this.#db.exec(`PRAGMA user_version = ${LAYOUT}`);
    });
  }

  async opened(): Promise<{ layoutChanged: boolean }> {
    return { layoutChanged: this.#layoutChanged };
  }

  /** The file is this console's alone (the lock taken at open): it always feeds it. */
  async lead(): Promise<boolean> {
    return true;
  }

  /** A statement prepared once per distinct SQL text (a query's filters make a handful of shapes). */
  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async positions(): Promise<TopicPosition[]> {
    const rows = this.#statement('SELECT topic, partition, next_offset FROM positions').all() as Array<{ topic: string; partition: number; next_offset: string }>;
    return rows.map((row) => ({ topic: row.topic, partition: row.partition, next: row.next_offset }));
  }

  /** Runs `write` and moves the segments' positions in one transaction. */
  #transaction(segments: Array<Segment<unknown>>, write: () => void): void {
    this.#inTransaction(() => {
      write();
      for (const { position } of segments) this.#position.run(position.topic, position.partition, position.next);
    });
  }

  #inTransaction<T>(work: () => T): T {
    this.#db.exec('BEGIN');
    try {
      const result = work();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  async append(segments: Array<Segment<DeliveryLog>>): Promise<void> {
    const attempts = segments.flatMap((segment) => segment.records);
    this.#transaction(segments, () => {
      for (const entry of attempts) {
        this.#insert.run(entry.attemptedAt, hourOf(entry.attemptedAt), entry.deliveryId, entry.attempt, entry.ruleId, entry.ruleName, entry.eventId, entry.eventType, entry.url, entry.outcome,
          entry.httpStatus === null ? null : Math.floor(entry.httpStatus / 100), entry.latencyMs, toBinary(contracts.deliveryLog, entry));
      }
      this.#rollUp(attempts);
      this.#count(attempts.length);
    });
  }

  #count(change: number): void {
    this.#statement("UPDATE totals SET value = value + ? WHERE name = 'attempts'").run(change);
  }

  #attempts(): number {
    return (this.#statement("SELECT value FROM totals WHERE name = 'attempts'").get() as { value: number }).value;
  }

  async appendCommands(segments: Array<Segment<DeliveryCommand>>): Promise<void> {
    const insert = this.#statement('INSERT OR IGNORE INTO commands (delivery_id, created_at, command) VALUES (?, ?, ?)');
    this.#transaction(segments, () => {
      for (const { records } of segments) for (const command of records) insert.run(command.deliveryId, command.createdAt, toBinary(contracts.deliveryCommand, command));
    });
  }

  async command(deliveryId: string): Promise<DeliveryCommand | undefined> {
    const row = this.#statement('SELECT command FROM commands WHERE delivery_id = ?').get(deliveryId) as { command: Uint8Array } | undefined;
    return row ? (commandType.fromBuffer(Buffer.from(row.command)) as DeliveryCommand) : undefined;
  }

  async query(query: HistoryQuery): Promise<HistoryPage> {
    const { where, values } = conditions(query);
    const limit = query.limit ?? 200;
    const after = query.cursor ? cursor.decode(query.cursor) : undefined;
    const page = paged(where, values, after);
    const count = where ? (this.#statement(`SELECT count(*) AS count FROM (SELECT 1 FROM attempts ${where} LIMIT ?)`).get(...values, COUNT_LIMIT) as { count: number }).count : this.#attempts();
    const walk = query.eventIdPrefix && count >= PREFIX_WALK_FROM ? hoursToWalk(query, after, this.#bounds()) : undefined;
    // The page's keys first (from an index alone, so a sort handles keys, not bodies), then its attempts.
    const keys = walk ? { sql: 'SELECT value FROM json_each(?)', values: [JSON.stringify(this.#walkHours(page.where, page.values, walk, limit + 1))] } : newestKeys(query, page.where, page.values, limit + 1);
    const rows = this.#statement(`SELECT sequence, attempted_at, entry FROM attempts WHERE sequence IN (${keys.sql}) ORDER BY attempted_at DESC, sequence DESC`)
      .all(...keys.values) as Array<{ sequence: number; attempted_at: number; entry: Uint8Array }>;
    const shown = rows.slice(0, limit);
    const last = shown.at(-1);
    return {
      entries: shown.map((row) => type.fromBuffer(Buffer.from(row.entry)) as DeliveryLog),
      count,
      countCapped: where !== '' && count >= COUNT_LIMIT,
      next: rows.length > limit && last ? cursor.encode(last.attempted_at, last.sequence) : null,
    };
  }

  /** The newest `wanted` keys `where` matches, an hour at a time from the newest hour of `hours` down (PREFIX_WALK_FROM). */
  #walkHours(where: string, values: Array<string | number>, hours: { from: number; to: number }, wanted: number): number[] {
    const inHour = this.#statement(`SELECT sequence FROM attempts ${where} AND hour = ? ORDER BY attempted_at DESC, sequence DESC LIMIT ?`);
    inHour.setReturnArrays(true);
    const keys: number[] = [];
    for (let hour = hours.from; hour >= hours.to && keys.length < wanted; hour -= 1) {
      for (const [sequence] of inHour.all(...values, hour, wanted - keys.length) as unknown as Array<[number]>) keys.push(sequence);
    }
    return keys;
  }

  /** The times of the oldest and the newest attempt held, each read from one end of the time index. */
  #bounds(): { oldestAt: number | null; newestAt: number | null } {
    const value = (sql: string) => (this.#statement(sql).get() as { value: number | null }).value;
    return { oldestAt: value('SELECT min(attempted_at) AS value FROM attempts'), newestAt: value('SELECT max(attempted_at) AS value FROM attempts') };
  }

  async deliveries(query: HistoryQuery, limit: number): Promise<DeliveryState[]> {
    const { where, values } = conditions(query);
    // SQLite gives the other columns of a max() group from the row holding the max: the newest record's.
    const rows = this.#statement(`SELECT delivery_id, rule_id, max(sequence) AS newest, outcome, (SELECT max(attempt) FROM attempts AS same WHERE same.delivery_id = attempts.delivery_id) AS last_attempt
      FROM attempts WHERE delivery_id IN (SELECT delivery_id FROM attempts ${where} GROUP BY delivery_id ORDER BY max(sequence) DESC LIMIT ?) GROUP BY delivery_id ORDER BY newest DESC`)
      .all(...values, limit) as Array<{ delivery_id: string; rule_id: string; outcome: DeliveryState['outcome']; last_attempt: number }>;
    return rows.map((row) => ({ deliveryId: row.delivery_id, ruleId: row.rule_id, lastAttempt: row.last_attempt, outcome: row.outcome }));
  }

  /** Adds a batch to its endpoints' buckets and states (inside append's transaction). */
  #rollUp(entries: DeliveryLog[]): void {
    const { buckets, touched } = rollUp(entries, this.#now());
    const readBucket = this.#statement('SELECT sent, delivered, latencies FROM endpoint_buckets WHERE span = ? AND start = ? AND url = ?');
    const writeBucket = this.#statement('INSERT OR REPLACE INTO endpoint_buckets (span, start, url, sent, delivered, latencies, version) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const version = buckets.length ? this.#nextBucketVersion() : 0;
    for (const increment of buckets) {
      const row = readBucket.get(increment.span, increment.start, increment.url) as { sent: number; delivered: number; latencies: Uint8Array } | undefined;
      const bucket = addBuckets(row && { ...increment, sent: row.sent, delivered: row.delivered, latencies: histogramOf(row.latencies) }, increment);
      writeBucket.run(bucket.span, bucket.start, bucket.url, bucket.sent, bucket.delivered, histogramBytes(bucket.latencies), version);
    }
    const readState = this.#statement('SELECT state FROM endpoints WHERE url = ?');
    const writeState = this.#statement('INSERT OR REPLACE INTO endpoints (url, state) VALUES (?, ?)');
    for (const [url, changes] of touched) {
      const row = readState.get(url) as { state: string } | undefined;
      writeState.run(url, JSON.stringify(applyAttempts(row && (JSON.parse(row.state) as EndpointState), url, changes)));
    }
  }

  #nextBucketVersion(): number {
    return (this.#statement("UPDATE totals SET value = value + 1 WHERE name = 'bucket_version' RETURNING value").get() as { value: number }).value;
  }

  async endpoints(now: number): Promise<EndpointFigures[]> {
    const states = (this.#statement('SELECT state FROM endpoints ORDER BY url').all() as Array<{ state: string }>).map((row) => JSON.parse(row.state) as EndpointState);
    // Rows as arrays, made into buckets of one shape: node:sqlite's row objects (null prototype, one per row) are
    // slow to read, and a first look reads thousands.
    const read = this.#statement('SELECT url, span, start, sent, delivered, latencies, version FROM endpoint_buckets WHERE version > ?');
    read.setReturnArrays(true);
    const changed = (read.all(this.#recentBuckets.changedSince) as unknown as Array<[string, number, number, number, number, Uint8Array, number]>)
      .map(([url, span, start, sent, delivered, latencies, version]) => ({ url, span, start, sent, delivered, latencies: histogramOf(latencies), version }));
    return this.#recentBuckets.figures(states, changed, now);
  }

  async pruneBuckets(now: number): Promise<void> {
    const remove = this.#statement('DELETE FROM endpoint_buckets WHERE span = ? AND start < ?');
    for (const [span, keptMs] of Object.entries(BUCKET_KEPT_MS)) remove.run(Number(span), now - keptMs);
  }

  async find(deliveryId: string, attempt: number): Promise<DeliveryLog | undefined> {
    const row = this.#statement('SELECT entry FROM attempts WHERE delivery_id = ? AND attempt = ? ORDER BY sequence DESC LIMIT 1').get(deliveryId, attempt) as { entry: Uint8Array } | undefined;
    return row ? (type.fromBuffer(Buffer.from(row.entry)) as DeliveryLog) : undefined;
  }

  async summaries(since: number): Promise<AttemptSummary[]> {
    const rows = this.#statement(`SELECT rule_id, rule_name, url, outcome, latency_ms, attempted_at FROM attempts WHERE attempted_at >= ? ORDER BY attempted_at, sequence`).all(since) as Array<{
      rule_id: string; rule_name: string | null; url: string | null; outcome: AttemptSummary['outcome']; latency_ms: number | null; attempted_at: number;
    }>;
    return rows.map((row) => ({ ruleId: row.rule_id, ruleName: row.rule_name, url: row.url, outcome: row.outcome, latencyMs: row.latency_ms, attemptedAt: row.attempted_at }));
  }

  async holds(): Promise<HistoryHolds> {
    const row = { attempts: this.#attempts(), ...this.#bounds() };
    let bytes = 0;
    for (const suffix of ['', '-wal']) {
      try {
        bytes += statSync(this.#file + suffix).size;
      } catch {
        // No WAL file between checkpoints.
      }
    }
    return { ...row, bytes, usedBytes: this.#usedBytes() };
  }

  #usedBytes(): number {
    const pragma = (name: string) => Object.values(this.#statement(`PRAGMA ${name}`).get() as Record<string, number>)[0]!;
    return (pragma('page_count') - pragma('freelist_count')) * pragma('page_size');
  }

  async prune(before: number, maxBytes: number, rows: number): Promise<number> {
    // One step, one transaction: the count moves with the rows.
    const deleted = this.#inTransaction(() => this.#pruneStep(before, maxBytes, rows));
    if (deleted > 0) this.#db.exec('PRAGMA incremental_vacuum');
    return deleted;
  }

  #pruneStep(before: number, maxBytes: number, rows: number): number {
    const oldestAttempts = 'DELETE FROM attempts WHERE sequence IN (SELECT sequence FROM attempts ORDER BY attempted_at, sequence LIMIT ?)';
    let { changes } = this.#statement(`DELETE FROM attempts WHERE sequence IN (SELECT sequence FROM attempts WHERE attempted_at < ? ORDER BY attempted_at, sequence LIMIT ?)`).run(before, rows);
    const over = this.#usedBytes() - maxBytes;
    if (Number(changes) === 0 && over > 0) {
      // As many of the oldest as the excess takes at the average attempt's size, so a step deletes no more than that.
      const average = (over + maxBytes) / Math.max(1, this.#attempts());
      ({ changes } = this.#statement(oldestAttempts).run(Math.min(rows, Math.ceil(over / average))));
    }
    this.#count(-Number(changes));
    // A command goes with the last attempts of its delivery: kept while an attempt from its time is.
    const oldest = this.#bounds().oldestAt ?? Number.MAX_SAFE_INTEGER;
    const commands = this.#statement('DELETE FROM commands WHERE delivery_id IN (SELECT delivery_id FROM commands WHERE created_at < ? ORDER BY created_at LIMIT ?)').run(Math.min(before, oldest), rows).changes;
    return Number(changes) + Number(commands);
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
