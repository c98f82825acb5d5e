/**
 * Since when each rule's endpoint has failed without a single 2xx: the policy disables a rule failing for too long
 * (DISPATCHER_DISABLE_AFTER, days). A clock kept in memory only would restart at every deploy — in a fleet that
 * deploys daily it would never reach its limit — so each change of it (the first failure after a success, the first
 * success after failures) is written to the compacted endpoint-health topic with the delivery's other records, and a
 * dispatcher that starts, or takes over a rule's partitions, reads it from there.
 */
import { contracts, type EndpointHealth, type EventRule } from '../../schemas/index.ts';
import { KafkaTable, type TableOptions } from '../common/table.ts';

export class EndpointHealthTable extends KafkaTable<EndpointHealth> {
  constructor(options: Omit<TableOptions<EndpointHealth>, 'name' | 'contract' | 'check' | 'idOf'>) {
    super({ ...options, name: 'endpoint-health', contract: contracts.endpointHealth, check: (value) => ({ ok: true, value }), idOf: (value) => value.ruleId });
  }
}

/** What to write to the endpoint-health topic: a rule's endpoint started failing (a value), or recovered (a tombstone). */
export type HealthChange = { ruleId: string; value: EndpointHealth | null };

type Rule = Pick<EventRule, 'id' | 'url' | 'updatedAt'>;

export class RuleHealth {
  /** What this dispatcher saw itself: since when failing, or null for succeeding; it outranks the table. */
  readonly #seen = new Map<string, number | null>();
  readonly #saved: Pick<EndpointHealthTable, 'get'> | undefined;
  readonly #pool: string;

  constructor(saved?: Pick<EndpointHealthTable, 'get'>, pool = '') {
    this.#saved = saved;
    this.#pool = pool;
  }

  failingSince(rule: Rule): number | undefined {
    const seen = this.#seen.get(rule.id);
    if (seen !== undefined) return seen ?? undefined;
    const saved = this.#saved?.get(rule.id);
    // A clock started before the rule last changed (edited, re-enabled) or for another URL is not this version's.
    return saved && saved.url === rule.url && saved.failingSince >= rule.updatedAt ? saved.failingSince : undefined;
  }

  /** Notes an attempt's verdict; returns the change to persist, if the clock started or stopped. */
  report(rule: Rule, health: 'success' | 'failure' | 'none', now = Date.now()): HealthChange | undefined {
    if (health === 'none') return undefined;
    const since = this.failingSince(rule);
    if (health === 'success') {
      // Until the table reads back the tombstone, its entry must not count; without an entry there is nothing to outrank.
      if (this.#saved?.get(rule.id)) this.#seen.set(rule.id, null);
      else this.#seen.delete(rule.id);
      return since === undefined ? undefined : { ruleId: rule.id, value: null };
    }
    if (since !== undefined) {
      this.#seen.set(rule.id, since);
      return undefined;
    }
    this.#seen.set(rule.id, now);
    return { ruleId: rule.id, value: { ruleId: rule.id, url: rule.url, failingSince: now, pool: this.#pool } };
  }

  /** A rule deleted, disabled or changed starts over (its saved clock predates the change, so it no longer counts). */
  forget(ruleId: string): void {
    this.#seen.delete(ruleId);
  }
}
