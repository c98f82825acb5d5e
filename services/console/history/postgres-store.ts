/**
 * The history on PostgreSQL (CONSOLE_HISTORY_URL), so several console replicas share one: each serves its pages from
 * it, and one at a time feeds it — the one holding the database's advisory lock; when it stops, another takes over
 * from the stored positions. The same tables as the SQLite backend; attempts and commands stored as their Avro
 * encoding beside the columns the queries filter and sort by.
 */
import pg from 'pg';
import { contracts, toBinary, type DeliveryCommand, type DeliveryLog } from '../../../schemas/index.ts';
import { addBuckets, applyAttempts, BUCKET_KEPT_MS, histogramBytes, histogramOf, rollUp, type Bucket, type EndpointFigures, type EndpointState } from './endpoint-stats.ts';
import { RecentBuckets } from './recent-buckets.ts';
import { ATTEMPT_INDEXES, conditions, COUNT_LIMIT, cursor, hourOf, hoursToWalk, LAYOUT, LAYOUT_UPGRADES, newestKeys, paged, PREFIX_WALK_FROM, type AttemptSummary, type DeliveryState, type HistoryHolds, type HistoryPage, type HistoryQuery, type HistoryStore, type Segment, type TopicPosition } from './store.ts';

// event_id in the C collation: byte order, so a prefix is an index range.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS attempts (
    sequence BIGSERIAL PRIMARY KEY,
    attempted_at BIGINT NOT NULL,
    hour INTEGER NOT NULL,
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    rule_name TEXT,
    event_id TEXT COLLATE "C" NOT NULL,
    event_type TEXT NOT NULL,
    url TEXT,
    outcome TEXT NOT NULL,
    status_class SMALLINT,
    latency_ms DOUBLE PRECISION,
    entry BYTEA NOT NULL
  );
  ${ATTEMPT_INDEXES}
  CREATE TABLE IF NOT EXISTS positions (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (topic, partition));
  CREATE TABLE IF NOT EXISTS commands (delivery_id TEXT PRIMARY KEY, created_at BIGINT NOT NULL, command BYTEA NOT NULL);
  CREATE INDEX IF NOT EXISTS commands_by_time ON commands (created_at);
  -- Vacuumed and analysed as it grows, not at 20 % more rows: the counts and the pages' keys then come from the
  -- indexes alone (an index-only scan needs the visibility map vacuum keeps), and the planner knows its sizes.
  ALTER TABLE attempts SET (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01);
  CREATE TABLE IF NOT EXISTS endpoint_buckets (span BIGINT NOT NULL, start BIGINT NOT NULL, url TEXT NOT NULL, sent INTEGER NOT NULL, delivered INTEGER NOT NULL, latencies BYTEA NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (span, start, url));
  CREATE TABLE IF NOT EXISTS endpoints (url TEXT PRIMARY KEY, state JSONB NOT NULL);
  -- What the size bound counts (PostgreSQL keeps deleted rows' space for reuse rather than giving it back), and the
  -- version of the last write of endpoint buckets.
  CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
  INSERT INTO totals VALUES ('bytes', 0), ('attempts', 0), ('bucket_version', 0) ON CONFLICT DO NOTHING;
`;
const TABLES = ['attempts', 'positions', 'commands', 'endpoint_buckets', 'endpoints', 'totals', 'history_layout'];
/** The attempts table is vacuumed and analysed as it doubles from this size on, or every MAX_ROWS_TO_VACUUM rows (see #vacuumAsItGrows). */
const MIN_ROWS_TO_VACUUM = 10_000;
const MAX_ROWS_TO_VACUUM = 500_000;
/**
 * Attempts per INSERT. A full one is a statement prepared once per connection (a 13,000-parameter statement parsed
 * and planned at each write was a tenth of the cost: storing a million in-process, 22,416 and 21,144 attempts/s
 * before, 24,036 and 23,452 after); the rest of a write goes as text.
 */
const INSERT_ROWS = 1000;
const ATTEMPT_COLUMNS = ['attempted_at', 'hour', 'delivery_id', 'attempt', 'rule_id', 'rule_name', 'event_id', 'event_type', 'url', 'outcome', 'status_class', 'latency_ms', 'entry'];
const insertAttempts = (rows: number): string => {
  const tuples = Array.from({ length: rows }, (_, row) => `(${ATTEMPT_COLUMNS.map((_, column) => `$${row * ATTEMPT_COLUMNS.length + column + 1}`).join(', ')})`);
  return `INSERT INTO attempts (${ATTEMPT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`;
};
const FULL_INSERT = insertAttempts(INSERT_ROWS);
/** What a row costs beyond its encoded record: its columns, its index entries, the page's share. */
const ROW_OVERHEAD_BYTES = 320;
/** Held by the console that feeds the history; any other value would do, as long as every console uses this one. */
const FEED_LOCK = 0x77686b68; // "whkh"
/** Held by a write from its roll-up of the endpoints' figures to its commit; FEED_LOCK + 1 is the migration's. */
const ROLL_UP_LOCK = FEED_LOCK + 2;
const type = contracts.deliveryLog.type;
const commandType = contracts.deliveryCommand.type;

/** SQL written with `?` placeholders (the backends' shared SQL) in PostgreSQL's numbered ones. */
function numbered(sql: string): string {
  let index = 0;
  return sql.replace(/\?/g, () => `$${(index += 1)}`);
}

/** A query's conditions in PostgreSQL's numbered placeholders, its values first in `values`. */
function filters(query: HistoryQuery): { where: string; values: unknown[] } {
  const { where, values } = conditions(query);
  return { where: numbered(where), values: [...values] };
}

type StoredBucket = Omit<Bucket, 'latencies'> & { latencies: Buffer };
const bucketOf = (row: StoredBucket): Bucket => ({ ...row, latencies: histogramOf(row.latencies) });

/** The URL without its password, for messages. */
export const safeUrl = (url: string): string => {
  const parsed = URL.parse(url);
  if (!parsed) return 'an unparsable URL';
  parsed.password = '';
  return parsed.toString();
};

export class PostgresHistoryStore implements HistoryStore {
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly #ready: Promise<void>;
  readonly #now: () => number;
  readonly #recentBuckets = new RecentBuckets();
  /**
   * Two writes at once, each on a connection of its own: the server then indexes one's attempts while it commits the
   * other's, on both cores (storing 600,000 attempts in-process, alternated: 12,975 and 14,412 a second one at a time,
   * 25,281 and 21,095 two at a time).
   */
  readonly parallelWrites = 2;
  #vacuumedRows = 0;
  #rowsSinceVacuum = 0;
  #vacuuming: Promise<unknown> | undefined;
  #lockHolder: pg.PoolClient | undefined;
  #layoutChanged = false;

  /**
   * Connects (lazily: the first call says if the database cannot be reached) and creates the tables it needs. `now`:
   * the clock that decides which endpoint buckets are still worth writing (tests set it).
   */
  constructor(url: string, { now = Date.now }: { now?: () => number } = {}) {
    this.#now = now;
    this.#url = url;
    // BIGINT columns come back as strings by default: every one here is a millisecond time or an offset, well inside 2^53.
    // Eight connections: the feeder keeps one for its lock, its two feeds write two batches each at once, and retention
    // writes while pages read.
    this.#pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 5000, types: { getTypeParser: (oid, format) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format)) as never } });
    this.#pool.on('error', () => undefined); // an idle client's error; the next query reconnects and reports its own
    this.#ready = this.#migrate();
    this.#ready.catch(() => undefined);
  }

  async #migrate(): Promise<void> {
    await this.#inTransaction(async (client) => {
      // One console migrates at a time.
      await client.query('SELECT pg_advisory_xact_lock($1)', [FEED_LOCK + 1]);
      await client.query('CREATE TABLE IF NOT EXISTS history_layout (version INTEGER NOT NULL)');
      const { rows } = await client.query<{ version: number }>('SELECT version FROM history_layout');
      let layout = rows[0]?.version;
      for (; layout !== undefined && LAYOUT_UPGRADES[layout] !== undefined; layout += 1) await client.query(LAYOUT_UPGRADES[layout]!);
      if (layout !== LAYOUT) {
        const { rows: existing } = await client.query<{ count: number }>("SELECT count(*)::int AS count FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'attempts'");
        if (existing[0]!.count > 0 || rows.length > 0) this.#layoutChanged = true;
        for (const table of TABLES.filter((name) => name !== 'history_layout')) await client.query(`DROP TABLE IF EXISTS ${table}`);
      }
      await client.query('DELETE FROM history_layout');
      await client.query('INSERT INTO history_layout VALUES ($1)', [LAYOUT]);
      await client.query(SCHEMA);
      // What the planner's statistics know of: the attempts table at its last analysis (-1 never analysed).
      const { rows: known } = await client.query<{ tuples: number }>("SELECT reltuples::bigint AS tuples FROM pg_class WHERE oid = 'attempts'::regclass");
      this.#vacuumedRows = Math.max(0, known[0]!.tuples);
    });
  }

  /**
   * Vacuums and analyses the attempts table each time it has doubled since it last did (from 10,000 rows on), and
   * every 500,000 rows past that. Autovacuum looks at a table once a minute at most, and a history filling from the
   * topic grows by a million rows meanwhile: without statistics the planner took one delivery id for 16,000 matches
   * and read the time index backwards for them (500 ms where the delivery index answers in 0.1), and without a
   * visibility map every count and page reads the table's rows where the index alone would do. Vacuuming an
   * insert-only table costs the pages added since the last time, so doing it in steps costs no more than at the end,
   * where a load of millions left autovacuum minutes behind and the pages slower meanwhile.
   */
  #vacuumAsItGrows(added: number): void {
    this.#rowsSinceVacuum += added;
    if (this.#vacuuming || this.#rowsSinceVacuum < Math.max(MIN_ROWS_TO_VACUUM, Math.min(MAX_ROWS_TO_VACUUM, this.#vacuumedRows))) return;
    const rows = this.#vacuumedRows + this.#rowsSinceVacuum;
    this.#rowsSinceVacuum = 0;
    // On a connection of its own, so the feed's writes and the pages' queries never wait for one behind it, and
    // skipped if autovacuum (or another console) holds the table for the same work.
    this.#vacuuming = this.#aside('VACUUM (ANALYZE, SKIP_LOCKED) attempts').then(
      () => (this.#vacuumedRows = rows),
      () => undefined, // autovacuum will get to it; the next step tries again
    ).finally(() => (this.#vacuuming = undefined));
  }

  /** `sql` on a connection of its own, outside the pool, closed after. */
  async #aside(sql: string): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** `work` in a transaction of its own client: committed when it returns, rolled back when it throws or says so. */
  async #inTransaction<T>(work: (client: pg.PoolClient, rollBack: () => void) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw new Error(`CONSOLE_HISTORY_URL: cannot reach PostgreSQL at ${safeUrl(this.#url)}: ${(error as Error).message}`, { cause: error });
    }
    let rolledBack = false;
    try {
      await client.query('BEGIN');
      const result = await work(client, () => (rolledBack = true));
      await client.query(rolledBack ? 'ROLLBACK' : 'COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async opened(): Promise<{ layoutChanged: boolean }> {
    await this.#ready;
    return { layoutChanged: this.#layoutChanged };
  }

  async #query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
    await this.#ready;
    return (await this.#pool.query<R>(sql, values)).rows;
  }

  /**
   * `write` of the segments and the positions they bring in one transaction, leaving out a segment another feeder
   * stored already (one that held the lock before this one); nothing at all if every one was.
   */
  async #transaction<T>(segments: Array<Segment<T>>, write: (client: pg.PoolClient, records: T[]) => Promise<void>): Promise<void> {
    await this.#ready;
    await this.#inTransaction(async (client, rollBack) => {
      const positions = segments.map(({ position }) => position);
      const { rows } = await client.query<{ topic: string; partition: number; next_offset: number }>(`SELECT p.topic, p.partition, p.next_offset FROM positions AS p
        JOIN unnest($1::text[], $2::int[]) AS k (topic, partition) USING (topic, partition) FOR UPDATE OF p`, [positions.map(({ topic }) => topic), positions.map(({ partition }) => partition)]);
      const stored = new Map(rows.map((row) => [`${row.topic}:${row.partition}`, Number(row.next_offset)]));
      const fresh = segments.filter(({ position }) => !((stored.get(`${position.topic}:${position.partition}`) ?? -1) >= Number(position.next)));
      if (fresh.length === 0) return rollBack();
      await write(client, fresh.flatMap(({ records }) => records));
      await client.query(`INSERT INTO positions SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
        ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
      [fresh.map(({ position }) => position.topic), fresh.map(({ position }) => position.partition), fresh.map(({ position }) => position.next)]);
    });
  }

  async lead(): Promise<boolean> {
    if (this.#lockHolder) return true;
    await this.#ready;
    const client = await this.#pool.connect();
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [FEED_LOCK]);
    if (!rows[0]!.locked) {
      client.release();
      return false;
    }
    // The lock lives as long as this session: kept out of the pool until close.
    this.#lockHolder = client;
    return true;
  }

  async positions(): Promise<TopicPosition[]> {
    const rows = await this.#query<{ topic: string; partition: number; next_offset: number }>('SELECT topic, partition, next_offset FROM positions');
    return rows.map((row) => ({ topic: row.topic, partition: row.partition, next: String(row.next_offset) }));
  }

  async append(segments: Array<Segment<DeliveryLog>>): Promise<void> {
    let added = 0;
    await this.#transaction(segments, async (client, attempts) => {
      let bytes = 0;
      // In chunks, well inside PostgreSQL's 65,535 parameters per statement.
      for (let start = 0; start < attempts.length; start += INSERT_ROWS) {
        const chunk = attempts.slice(start, start + INSERT_ROWS);
        const values: unknown[] = [];
        for (const entry of chunk) {
          const encoded = toBinary(contracts.deliveryLog, entry);
          bytes += encoded.length + ROW_OVERHEAD_BYTES;
          values.push(entry.attemptedAt, hourOf(entry.attemptedAt), entry.deliveryId, entry.attempt, entry.ruleId, entry.ruleName, entry.eventId, entry.eventType, entry.url, entry.outcome,
            entry.httpStatus === null ? null : Math.floor(entry.httpStatus / 100), entry.latencyMs, encoded);
        }
        await client.query(chunk.length === INSERT_ROWS ? { name: 'insert-attempts', text: FULL_INSERT, values } : { text: insertAttempts(chunk.length), values });
      }
      await this.#rollUp(client, attempts);
      await client.query("UPDATE totals SET value = value + CASE name WHEN 'bytes' THEN $1::bigint ELSE $2::bigint END", [bytes, attempts.length]);
      added = attempts.length;
    });
    this.#vacuumAsItGrows(added);
  }

  /**
   * Adds a batch to its endpoints' buckets and states: one read and one write of each, whatever the batch touches.
   * One write at a time from here to its commit (parallelWrites): each statement of the next then sees what the one
   * before added, where two adding to a bucket neither held yet would both write theirs alone, and one be lost.
   */
  async #rollUp(client: pg.PoolClient, entries: DeliveryLog[]): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ROLL_UP_LOCK]);
    const { buckets, touched } = rollUp(entries, this.#now());
    if (buckets.length) {
      const keys = { span: buckets.map((bucket) => bucket.span), start: buckets.map((bucket) => bucket.start), url: buckets.map((bucket) => bucket.url) };
      const { rows } = await client.query<StoredBucket>(`SELECT b.span, b.start, b.url, b.sent, b.delivered, b.latencies FROM endpoint_buckets AS b
        JOIN unnest($1::bigint[], $2::bigint[], $3::text[]) AS k (span, start, url) USING (span, start, url) FOR UPDATE OF b`, [keys.span, keys.start, keys.url]);
      const stored = new Map(rows.map((row) => [`${row.span} ${row.start} ${row.url}`, bucketOf(row)]));
      const sums = buckets.map((increment) => addBuckets(stored.get(`${increment.span} ${increment.start} ${increment.url}`), increment));
      const [{ version }] = (await client.query<{ version: number }>("UPDATE totals SET value = value + 1 WHERE name = 'bucket_version' RETURNING value AS version")).rows as [{ version: number }];
      await client.query(`INSERT INTO endpoint_buckets SELECT *, $7::bigint FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::int[], $6::bytea[])
        ON CONFLICT (span, start, url) DO UPDATE SET sent = excluded.sent, delivered = excluded.delivered, latencies = excluded.latencies, version = excluded.version`,
      [sums.map((sum) => sum.span), sums.map((sum) => sum.start), sums.map((sum) => sum.url), sums.map((sum) => sum.sent), sums.map((sum) => sum.delivered), sums.map((sum) => Buffer.from(histogramBytes(sum.latencies))), version]);
    }
    if (touched.size) {
      const urls = [...touched.keys()];
      const { rows } = await client.query<{ url: string; state: EndpointState }>('SELECT url, state FROM endpoints WHERE url = ANY($1::text[]) FOR UPDATE', [urls]);
      const stored = new Map(rows.map((row) => [row.url, row.state]));
      const states = urls.map((url) => JSON.stringify(applyAttempts(stored.get(url), url, touched.get(url)!)));
      await client.query('INSERT INTO endpoints SELECT * FROM unnest($1::text[], $2::jsonb[]) ON CONFLICT (url) DO UPDATE SET state = excluded.state', [urls, states]);
    }
  }

  async appendCommands(segments: Array<Segment<DeliveryCommand>>): Promise<void> {
    await this.#transaction(segments, async (client, records) => {
      // In delivery-id order, and counted once at the end: two writes holding one delivery's commands (its retry topic's
      // and its pool's) then wait for each other in one order, never each for the other.
      const commands = records.toSorted((a, b) => (a.deliveryId < b.deliveryId ? -1 : a.deliveryId > b.deliveryId ? 1 : 0));
      let bytes = 0;
      for (let start = 0; start < commands.length; start += 1000) {
        const values: unknown[] = [];
        const rows = commands.slice(start, start + 1000).map((command) => `($${values.push(command.deliveryId)}, $${values.push(command.createdAt)}, $${values.push(toBinary(contracts.deliveryCommand, command))})`);
        const inserted = await client.query<{ bytes: number }>(`INSERT INTO commands VALUES ${rows.join(', ')} ON CONFLICT (delivery_id) DO NOTHING RETURNING octet_length(command) AS bytes`, values);
        bytes += inserted.rows.reduce((sum, row) => sum + row.bytes + ROW_OVERHEAD_BYTES, 0);
      }
      await client.query("UPDATE totals SET value = value + $1 WHERE name = 'bytes'", [bytes]);
    });
  }

  async command(deliveryId: string): Promise<DeliveryCommand | undefined> {
    const [row] = await this.#query<{ command: Buffer }>('SELECT command FROM commands WHERE delivery_id = $1', [deliveryId]);
    return row ? (commandType.fromBuffer(row.command) as DeliveryCommand) : undefined;
  }

  async query(query: HistoryQuery): Promise<HistoryPage> {
    const { where, values } = conditions(query);
    const limit = query.limit ?? 200;
    const after = query.cursor ? cursor.decode(query.cursor) : undefined;
    // Counted on a connection of its own while the page is read, unless the count decides how a prefix's page is read.
    const counting = where ? this.#query<{ count: number }>(numbered(`SELECT count(*)::bigint AS count FROM (SELECT 1 FROM attempts ${where} LIMIT ?) AS matched`), [...values, COUNT_LIMIT])
      : this.#query<{ count: number }>("SELECT value AS count FROM totals WHERE name = 'attempts'");
    const page = paged(where, values, after);
    const walk = query.eventIdPrefix && (await counting)[0]!.count >= PREFIX_WALK_FROM ? hoursToWalk(query, after, await this.#bounds()) : undefined;
    // The page's keys first (an index-only scan, so a sort handles keys, not rows), then its attempts. A prefix
    // matching many walks the hours, newest first: the nested loop reads them in generate_series's order and stops
    // at the limit, so the hours after the page's are never read. A rarer prefix's keys come from the event index
    // whatever the planner guesses: it reckons a prefix's matches spread over time and reads the time index backwards
    // for the first hundred, but ids that follow time put them together, maybe far back (evt-qa-1… at a million
    // attempts: 800,000 newer rows read, 318 ms, where sorting its 37,000 keys takes 8).
    const keys = walk
      ? { sql: `SELECT k.sequence FROM generate_series(?::int, ?::int, -1) AS h (hour)
          CROSS JOIN LATERAL (SELECT sequence FROM attempts ${page.where} AND hour = h.hour ORDER BY attempted_at DESC, sequence DESC LIMIT ?) AS k LIMIT ?`,
        values: [walk.from, walk.to, ...page.values, limit + 1, limit + 1] }
      : query.eventIdPrefix ? { sql: `SELECT sequence FROM attempts ${page.where} ORDER BY (attempted_at + 0) DESC, sequence DESC LIMIT ?`, values: [...page.values, limit + 1] }
        : newestKeys(query, page.where, page.values, limit + 1);
    const [[counted], rows] = await Promise.all([counting, this.#query<{ sequence: number; attempted_at: number; entry: Buffer }>(numbered(`SELECT sequence, attempted_at, entry FROM attempts
      WHERE sequence IN (${keys.sql}) ORDER BY attempted_at DESC, sequence DESC`), keys.values)]);
    const shown = rows.slice(0, limit);
    const last = shown.at(-1);
    return {
      entries: shown.map((row) => type.fromBuffer(row.entry) as DeliveryLog),
      count: counted!.count,
      countCapped: where !== '' && counted!.count >= COUNT_LIMIT,
      next: rows.length > limit && last ? cursor.encode(last.attempted_at, last.sequence) : null,
    };
  }

  async deliveries(query: HistoryQuery, limit: number): Promise<DeliveryState[]> {
    const { where, values } = filters(query);
    const rows = await this.#query<{ delivery_id: string; rule_id: string; outcome: DeliveryState['outcome']; last_attempt: number; sequence: number }>(`
      WITH chosen AS (SELECT delivery_id FROM attempts ${where} GROUP BY delivery_id ORDER BY max(sequence) DESC LIMIT $${values.push(limit)})
      SELECT DISTINCT ON (a.delivery_id) a.delivery_id, a.rule_id, a.outcome, a.sequence, (SELECT max(attempt) FROM attempts AS same WHERE same.delivery_id = a.delivery_id) AS last_attempt
      FROM attempts AS a JOIN chosen USING (delivery_id) ORDER BY a.delivery_id, a.sequence DESC`, values);
    return rows.sort((a, b) => b.sequence - a.sequence).map((row) => ({ deliveryId: row.delivery_id, ruleId: row.rule_id, lastAttempt: row.last_attempt, outcome: row.outcome }));
  }

  async find(deliveryId: string, attempt: number): Promise<DeliveryLog | undefined> {
    const [row] = await this.#query<{ entry: Buffer }>('SELECT entry FROM attempts WHERE delivery_id = $1 AND attempt = $2 ORDER BY sequence DESC LIMIT 1', [deliveryId, attempt]);
    return row ? (type.fromBuffer(row.entry) as DeliveryLog) : undefined;
  }

  async summaries(since: number): Promise<AttemptSummary[]> {
    const rows = await this.#query<{ rule_id: string; rule_name: string | null; url: string | null; outcome: AttemptSummary['outcome']; latency_ms: number | null; attempted_at: number }>(
      'SELECT rule_id, rule_name, url, outcome, latency_ms, attempted_at FROM attempts WHERE attempted_at >= $1 ORDER BY attempted_at, sequence', [since]);
    return rows.map((row) => ({ ruleId: row.rule_id, ruleName: row.rule_name, url: row.url, outcome: row.outcome, latencyMs: row.latency_ms, attemptedAt: row.attempted_at }));
  }

  /** The times of the oldest and the newest attempt held (each one end of the time index). */
  async #bounds(): Promise<{ oldestAt: number | null; newestAt: number | null }> {
    const [row] = await this.#query<{ oldestAt: number | null; newestAt: number | null }>('SELECT min(attempted_at) AS "oldestAt", max(attempted_at) AS "newestAt" FROM attempts');
    return row!;
  }

  async holds(): Promise<HistoryHolds> {
    const [bounds, [sizes]] = await Promise.all([
      this.#bounds(),
      this.#query<{ attempts: number; bytes: number; used: number }>(`SELECT (SELECT value FROM totals WHERE name = 'attempts') AS attempts,
        (SELECT sum(pg_total_relation_size(to_regclass(name)))::bigint FROM unnest($1::text[]) AS name) AS bytes, (SELECT value FROM totals WHERE name = 'bytes') AS used`, [TABLES]),
    ]);
    return { attempts: sizes!.attempts, ...bounds, bytes: sizes!.bytes, usedBytes: sizes!.used };
  }

  async endpoints(now: number): Promise<EndpointFigures[]> {
    // The changed buckets in one statement, so in one snapshot: every write up to the newest version it shows.
    const [states, changed] = await Promise.all([
      this.#query<{ state: EndpointState }>('SELECT state FROM endpoints ORDER BY url'),
      this.#query<StoredBucket & { version: number }>('SELECT url, span, start, sent, delivered, latencies, version FROM endpoint_buckets WHERE version > $1', [this.#recentBuckets.changedSince]),
    ]);
    return this.#recentBuckets.figures(states.map((row) => row.state), changed.map((row) => ({ ...bucketOf(row), version: row.version })), now);
  }

  async prune(before: number, maxBytes: number, rows: number): Promise<number> {
    await this.#ready;
    return this.#inTransaction(async (client) => {
      let deleted = await client.query<{ bytes: number }>('DELETE FROM attempts WHERE sequence IN (SELECT sequence FROM attempts WHERE attempted_at < $1 ORDER BY attempted_at, sequence LIMIT $2) RETURNING octet_length(entry) AS bytes', [before, rows]);
      const [{ used, count }] = (await client.query<{ used: number; count: number }>("SELECT (SELECT value FROM totals WHERE name = 'bytes') AS used, (SELECT value FROM totals WHERE name = 'attempts') AS count")).rows as [{ used: number; count: number }];
      const over = used - maxBytes;
      if (deleted.rowCount === 0 && over > 0) {
        const average = used / Math.max(1, count);
        deleted = await client.query('DELETE FROM attempts WHERE sequence IN (SELECT sequence FROM attempts ORDER BY attempted_at, sequence LIMIT $1) RETURNING octet_length(entry) AS bytes', [Math.min(rows, Math.ceil(over / average))]);
      }
      const oldest = (await client.query<{ oldest: number | null }>('SELECT min(attempted_at) AS oldest FROM attempts')).rows[0]!.oldest ?? Number.MAX_SAFE_INTEGER;
      const commands = await client.query<{ bytes: number }>('DELETE FROM commands WHERE delivery_id IN (SELECT delivery_id FROM commands WHERE created_at < $1 ORDER BY created_at LIMIT $2) RETURNING octet_length(command) AS bytes', [Math.min(before, oldest), rows]);
      const freed = [...deleted.rows, ...commands.rows].reduce((sum, row) => sum + row.bytes + ROW_OVERHEAD_BYTES, 0);
      await client.query("UPDATE totals SET value = greatest(0, value - CASE name WHEN 'bytes' THEN $1::bigint ELSE $2::bigint END)", [freed, deleted.rows.length]);
      return deleted.rows.length + commands.rows.length;
    });
  }

  async pruneBuckets(now: number): Promise<void> {
    for (const [span, keptMs] of Object.entries(BUCKET_KEPT_MS)) await this.#query('DELETE FROM endpoint_buckets WHERE span = $1 AND start < $2', [Number(span), now - keptMs]);
  }

  async close(): Promise<void> {
    await this.#vacuuming;
    this.#lockHolder?.release();
    this.#lockHolder = undefined;
    await this.#pool.end();
  }
}
