/**
 * The endpoint view: each target URL the history knows or a rule names, its figures from the history beside the
 * rules that use it. Pure: the history and the rules table give the parts.
 */
import type { EventRule } from '../../schemas/index.ts';
import { loggableUrl } from '../common/rules.ts';
import { ENDPOINT_WINDOWS, NO_ATTEMPTS, type EndpointFigures, type EndpointWindow } from './history/endpoint-stats.ts';

export interface EndpointRow extends EndpointFigures {
  rules: Array<Pick<EventRule, 'id' | 'name' | 'application' | 'enabled' | 'disabledReason'>>;
  /** As the delivery log last showed it; null before any attempt. */
  breaker: 'open' | 'closed' | null;
}

const idle = (url: string): EndpointFigures => ({
  url, lastSentAt: null, lastSuccessAt: null, lastErrorAt: null, lastError: null, failingSince: null, breakerOpenAt: null,
  windows: Object.fromEntries(Object.keys(ENDPOINT_WINDOWS).map((window) => [window, NO_ATTEMPTS])) as Record<EndpointWindow, typeof NO_ATTEMPTS>,
});

/** Failing endpoints first (longest first), then by URL. */
export function endpointView(figures: Iterable<EndpointFigures>, rules: Iterable<EventRule>): EndpointRow[] {
  const rows = new Map<string, EndpointRow>();
  for (const figure of figures) rows.set(figure.url, { ...figure, rules: [], breaker: breakerState(figure) });
  for (const rule of rules) {
    const url = loggableUrl(rule.url);
    let row = rows.get(url);
    if (!row) rows.set(url, (row = { ...idle(url), rules: [], breaker: null }));
    row.rules.push({ id: rule.id, name: rule.name, application: rule.application, enabled: rule.enabled, disabledReason: rule.disabledReason });
  }
  return [...rows.values()].sort((a, b) => (a.failingSince ?? Infinity) - (b.failingSince ?? Infinity) || a.url.localeCompare(b.url));
}

/** Open while the newest word of the endpoint is a deferral because its breaker was open. */
function breakerState({ breakerOpenAt, lastSentAt }: EndpointFigures): EndpointRow['breaker'] {
  if (breakerOpenAt !== null && (lastSentAt === null || breakerOpenAt > lastSentAt)) return 'open';
  return lastSentAt === null ? null : 'closed';
}
