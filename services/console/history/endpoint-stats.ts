/**
 * The endpoint view's figures, kept as the history grows rather than computed from weeks of attempts at each look:
 * per target URL, the attempts made and delivered and a latency histogram per minute (for 5 min), per five minutes
 * (1 h), per hour (24 h) and per day (7 d), and since when it has been failing. Pure: the store adds the batches up
 * and keeps the results.
 */
import type { DeliveryLog } from '../../../schemas/index.ts';

export const MINUTE = 60_000;
const FIVE_MINUTES = 5 * MINUTE;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/**
 * The windows the view shows, each added up from whole buckets of one span, the current one included: "1 h" is the
 * last 55 to 60 minutes, "24 h" the last 23 to 24 hours, "7 d" the last 6 to 7 UTC days. About fifty rows per
 * endpoint, whatever the traffic: the hour from five-minute buckets rather than sixty minute ones, which were two
 * thirds of the rows the view read at each look.
 */
export const ENDPOINT_WINDOWS = { '5m': { span: MINUTE, buckets: 5 }, '1h': { span: FIVE_MINUTES, buckets: 12 }, '24h': { span: HOUR, buckets: 24 }, '7d': { span: DAY, buckets: 7 } } as const;
export type EndpointWindow = keyof typeof ENDPOINT_WINDOWS;
/** How long buckets of each span are kept: as long as the longest window that reads them, and one bucket more. */
export const BUCKET_KEPT_MS: Record<number, number> = { [MINUTE]: 6 * MINUTE, [FIVE_MINUTES]: 65 * MINUTE, [HOUR]: 25 * HOUR, [DAY]: 8 * DAY };
const SPANS = [MINUTE, FIVE_MINUTES, HOUR, DAY] as const;

/**
 * Latencies counted in buckets that grow by 10 % from 1 ms to about 84 s (an attempt times out well before), so a
 * percentile is exact to within a bucket's width whatever the spread. Fixed-size, so a store keeps one as bytes and
 * adding two up is a loop over 120 counts: the endpoint view adds thousands at each look.
 */
export type Histogram = Uint32Array;
const GROWTH = 1.1;
const BUCKETS = 120;
const bucketOf = (ms: number): number => (ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms) / Math.log(GROWTH))));
const upperBound = (bucket: number): number => GROWTH ** bucket;

export const emptyHistogram = (): Histogram => new Uint32Array(BUCKETS);

export function mergeHistograms(into: Histogram, from: Histogram): Histogram {
  for (let bucket = 0; bucket < BUCKETS; bucket += 1) into[bucket]! += from[bucket]!;
  return into;
}

/** A histogram as a store keeps it, and back. */
export const histogramBytes = (histogram: Histogram): Uint8Array => new Uint8Array(histogram.buffer, histogram.byteOffset, histogram.byteLength);
/** A view on `bytes` where they allow one (no copy: the endpoint view reads thousands), else a copy. */
export const histogramOf = (bytes: Uint8Array): Histogram => {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength === BUCKETS * 4) return new Uint32Array(bytes.buffer, bytes.byteOffset, BUCKETS);
  const histogram = emptyHistogram();
  new Uint8Array(histogram.buffer).set(bytes.subarray(0, histogram.byteLength));
  return histogram;
};

/** The latency at percentile `p` (0–1), interpolated within its bucket; null without latencies. */
export function percentileOf(histogram: Histogram, p: number): number | null {
  const total = histogram.reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  const rank = p * total;
  let below = 0;
  for (let bucket = 0; bucket < BUCKETS; bucket += 1) {
    const count = histogram[bucket]!;
    if (count > 0 && below + count >= rank) {
      const lower = bucket === 0 ? 0 : upperBound(bucket - 1);
      return lower + (upperBound(bucket) - lower) * Math.min(1, Math.max(0, (rank - below) / count));
    }
    below += count;
  }
  return null;
}

/** One endpoint's attempts in one bucket of time. */
export interface Bucket {
  url: string;
  span: number;
  start: number;
  /** Attempts made (a request went out); deferrals and skips are not attempts at the endpoint. */
  sent: number;
  delivered: number;
  latencies: Histogram;
}

/** What the history knows of an endpoint beyond its buckets. */
export interface EndpointState {
  url: string;
  lastSentAt: number | null;
  lastSuccessAt: number | null;
  lastErrorAt: number | null;
  lastError: string | null;
  /** The first failed attempt after its last success; null while the endpoint is not failing. */
  failingSince: number | null;
  /** The newest deferral because its circuit breaker was open. */
  breakerOpenAt: number | null;
}

/** A bucket's identity: its endpoint, span and start. */
export const bucketKey = (url: string, span: number, start: number) => `${span} ${start} ${url}`;

/**
 * A batch of attempts as bucket increments (to add to what is stored) and endpoint changes (to apply to it). Buckets
 * no window reads any more at `now` are left out: they would be pruned, and a history catching up on days of attempts
 * would otherwise write minute buckets only to delete them.
 */
export function rollUp(entries: Iterable<DeliveryLog>, now: number): { buckets: Bucket[]; touched: Map<string, DeliveryLog[]> } {
  const keptSince = SPANS.map((span) => now - BUCKET_KEPT_MS[span]!);
  const buckets = new Map<string, Bucket>();
  const touched = new Map<string, DeliveryLog[]>();
  for (const entry of entries) {
    if (entry.url === null) continue;
    const sent = entry.request !== null;
    if (sent || entry.deferral === 'breaker_open') {
      const list = touched.get(entry.url);
      if (list) list.push(entry);
      else touched.set(entry.url, [entry]);
    }
    if (!sent) continue;
    for (let index = 0; index < SPANS.length; index += 1) {
      const span = SPANS[index]!;
      const start = Math.floor(entry.attemptedAt / span) * span;
      if (start < keptSince[index]!) continue;
      const key = bucketKey(entry.url, span, start);
      let bucket = buckets.get(key);
      if (!bucket) buckets.set(key, (bucket = { url: entry.url, span, start, sent: 0, delivered: 0, latencies: emptyHistogram() }));
      bucket.sent += 1;
      if (entry.outcome === 'delivered') bucket.delivered += 1;
      if (entry.latencyMs !== null) bucket.latencies[bucketOf(entry.latencyMs)]! += 1;
    }
  }
  return { buckets: [...buckets.values()], touched };
}

export const addBuckets = (stored: Bucket | undefined, increment: Bucket): Bucket =>
  stored ? { ...stored, sent: stored.sent + increment.sent, delivered: stored.delivered + increment.delivered, latencies: mergeHistograms(stored.latencies.slice(), increment.latencies) } : increment;

const later = (a: number | null, b: number) => (a === null || b > a ? b : a);

/**
 * `state` after `entries` (attempts at its URL, in any order: the delivery log's partitions interleave): a success
 * ends a failure that began before it, and a failure after the last success starts or continues one.
 */
export function applyAttempts(state: EndpointState | undefined, url: string, entries: Iterable<DeliveryLog>): EndpointState {
  const next: EndpointState = state ? { ...state } : { url, lastSentAt: null, lastSuccessAt: null, lastErrorAt: null, lastError: null, failingSince: null, breakerOpenAt: null };
  for (const entry of entries) {
    const at = entry.attemptedAt;
    if (entry.request === null) {
      if (entry.deferral === 'breaker_open') next.breakerOpenAt = later(next.breakerOpenAt, at);
      continue;
    }
    next.lastSentAt = later(next.lastSentAt, at);
    if (entry.outcome === 'delivered') {
      next.lastSuccessAt = later(next.lastSuccessAt, at);
      if (next.failingSince !== null && at >= next.failingSince) next.failingSince = null;
    } else {
      if (next.lastErrorAt === null || at >= next.lastErrorAt) {
        next.lastErrorAt = at;
        next.lastError = entry.error ?? (entry.httpStatus !== null ? `HTTP ${entry.httpStatus}` : null);
      }
      if (next.lastSuccessAt === null || at > next.lastSuccessAt) next.failingSince = next.failingSince === null ? at : Math.min(next.failingSince, at);
    }
  }
  return next;
}

export interface WindowStats {
  sent: number;
  delivered: number;
  /** delivered / sent; null when nothing was sent. */
  successRate: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
}

/** The first bucket start a window reads at `now` (the current bucket is its last). */
export const windowStart = (window: EndpointWindow, now: number): number => {
  const { span, buckets } = ENDPOINT_WINDOWS[window];
  return (Math.floor(now / span) - buckets + 1) * span;
};

export const NO_ATTEMPTS: WindowStats = { sent: 0, delivered: 0, successRate: null, p50Ms: null, p95Ms: null };

/** An endpoint as the history knows it: its state and each window's figures. */
export type EndpointFigures = EndpointState & { windows: Record<EndpointWindow, WindowStats> };

/** Per span, the first bucket start its longest window reads at `now`: what a store reads for endpointFigures. */
export function bucketsToRead(now: number): Array<{ span: number; since: number }> {
  const since = new Map<number, number>();
  for (const window of Object.keys(ENDPOINT_WINDOWS) as EndpointWindow[]) {
    const { span } = ENDPOINT_WINDOWS[window];
    since.set(span, Math.min(since.get(span) ?? Infinity, windowStart(window, now)));
  }
  return [...since].map(([span, start]) => ({ span, since: start }));
}

/**
 * Every endpoint's figures at `now`, from their states and the buckets bucketsToRead(now) names: one pass that adds
 * each bucket into every window reading it (the view's thousands of buckets, read at each look).
 */
export function endpointFigures(states: Iterable<EndpointState>, buckets: Iterable<Bucket>, now: number): EndpointFigures[] {
  const windows = (Object.keys(ENDPOINT_WINDOWS) as EndpointWindow[]).map((name) => ({ name, span: ENDPOINT_WINDOWS[name].span, start: windowStart(name, now), sums: new Map<string, Sum>() }));
  for (const bucket of buckets) {
    for (const window of windows) {
      if (bucket.span !== window.span || bucket.start < window.start) continue;
      let sum = window.sums.get(bucket.url);
      if (!sum) window.sums.set(bucket.url, (sum = { sent: 0, delivered: 0, latencies: emptyHistogram() }));
      sum.sent += bucket.sent;
      sum.delivered += bucket.delivered;
      mergeHistograms(sum.latencies, bucket.latencies);
    }
  }
  return [...states].map((state) => ({
    ...state,
    windows: Object.fromEntries(windows.map(({ name, sums }) => {
      const sum = sums.get(state.url);
      return [name, sum ? statsOf(sum) : NO_ATTEMPTS];
    })) as Record<EndpointWindow, WindowStats>,
  }));
}

interface Sum {
  sent: number;
  delivered: number;
  latencies: Histogram;
}

const statsOf = ({ sent, delivered, latencies }: Sum): WindowStats => ({
  sent, delivered, successRate: sent ? delivered / sent : null, p50Ms: percentileOf(latencies, 0.5), p95Ms: percentileOf(latencies, 0.95),
});
