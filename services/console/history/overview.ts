/**
 * The overview's figures from a stretch of the history: deliveries per second, outcomes, and success rate and latency
 * per rule and endpoint. Pure: the store gives the attempts, this adds them up.
 */
import type { DeliveryOutcome } from '../../../schemas/index.ts';
import type { AttemptSummary } from './store.ts';

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

export interface Overview {
  /** One bucket per second of the window, oldest first. */
  perSecond: Array<{ at: number; delivered: number; notDelivered: number }>;
  byTarget: TargetStats[];
  outcomes: Partial<Record<DeliveryOutcome, number>>;
}

const percentile = (sorted: number[], p: number): number | null => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null);

/** The first millisecond `overview(…, now, windowSeconds)` counts. */
export const overviewStart = (now: number, windowSeconds: number): number => (Math.floor(now / 1000) - windowSeconds + 1) * 1000;

export function overview(attempts: Iterable<AttemptSummary>, now: number, windowSeconds: number): Overview {
  const start = overviewStart(now, windowSeconds) / 1000;
  const perSecond = Array.from({ length: windowSeconds }, (_, index) => ({ at: (start + index) * 1000, delivered: 0, notDelivered: 0 }));
  const targets = new Map<string, { stats: TargetStats; latencies: number[] }>();
  const outcomes: Overview['outcomes'] = {};
  for (const attempt of attempts) {
    const bucket = perSecond[Math.floor(attempt.attemptedAt / 1000) - start];
    if (!bucket) continue;
    bucket[attempt.outcome === 'delivered' ? 'delivered' : 'notDelivered'] += 1;
    outcomes[attempt.outcome] = (outcomes[attempt.outcome] ?? 0) + 1;
    const key = `${attempt.ruleId} ${attempt.url}`;
    let target = targets.get(key);
    if (!target) {
      target = { stats: { ruleId: attempt.ruleId, ruleName: attempt.ruleName, url: attempt.url, attempts: 0, delivered: 0, successRate: 0, p50Ms: null, p95Ms: null }, latencies: [] };
      targets.set(key, target);
    }
    target.stats.attempts += 1;
    if (attempt.outcome === 'delivered') target.stats.delivered += 1;
    if (attempt.latencyMs !== null) target.latencies.push(attempt.latencyMs);
  }
  const byTarget = [...targets.values()].map(({ stats, latencies }) => {
    latencies.sort((a, b) => a - b);
    return { ...stats, successRate: stats.delivered / stats.attempts, p50Ms: percentile(latencies, 0.5), p95Ms: percentile(latencies, 0.95) };
  });
  return { perSecond, byTarget: byTarget.sort((a, b) => b.attempts - a.attempts), outcomes };
}
