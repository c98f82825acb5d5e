/**
 * Whether a rule, as saved, can be delivered at all — judged when it is saved, so the operator hears it then, naming
 * the setting, rather than at the first Test or from a dead letter: its delegate selectors fit an announced pool, and
 * that pool's SSRF guard lets it dial the rule's URL. A warning, never a refusal: pools come and go, and a rule may be
 * saved before the pool that will deliver it is started.
 */
import type { DispatcherPool, EventRule, WorkflowEvent } from '../../schemas/index.ts';
import { choosePool } from './pools.ts';
import { BlockedAddressError, createAddressGuard } from './ssrf.ts';

/** A name that does not resolve in time here says nothing: it may resolve where the pool runs. */
const RESOLVE_TIMEOUT_MS = 2000;

/** Why `rule` will not be delivered as pools stand now, if it will not; `sample` is an event it selects. */
export async function unreachableWarnings(rule: Pick<EventRule, 'url' | 'delegateSelectors'>, sample: WorkflowEvent, pools: Iterable<Pick<DispatcherPool, 'pool' | 'tags' | 'allowNetworks'>>): Promise<string[]> {
  // Selectors with `${…}` choose a pool per event: no one pool to judge.
  if (rule.delegateSelectors.some((selector) => selector.includes('${'))) return [];
  const announced = [...pools];
  const route = choosePool(rule, sample, announced);
  if (!route.ok) return [`${route.error}: no pool will deliver it until dispatchers with those tags run (DISPATCHER_TAGS), or change the rule's delegate selectors`];
  const allow = announced.find((pool) => pool.pool === route.pool)?.allowNetworks;
  if (!allow) return []; // the pool has not announced what it may dial (not started yet, or an older dispatcher)
  const refusal = await guardRefusal(allow, new URL(rule.url).hostname);
  if (!refusal) return [];
  return [`pool "${route.pool}" may not dial this URL (${refusal}, not a public address): allow it in DISPATCHER_ALLOW_NETWORKS of that pool's dispatchers, or send the rule through a pool that does (delegate selectors)`];
}

async function guardRefusal(allow: readonly string[], hostname: string): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), RESOLVE_TIMEOUT_MS); });
  try {
    await Promise.race([createAddressGuard({ allow }).resolve(hostname), timedOut]);
    return undefined;
  } catch (error) {
    return error instanceof BlockedAddressError ? error.detail : undefined;
  } finally {
    clearTimeout(timer);
  }
}
