/**
 * Rules indexed by what an event can be looked up by, so finding the rules of an event costs the same with ten rules
 * or a million: at most ten map lookups plus the matches themselves. One flat map from
 * (application, scope, workflow or pipeline id, event type) to the rules there keeps memory per rule small.
 * Semantics (both seeds):
 *  - a rule sees only its application's events, and only while enabled;
 *  - scope `everything`: every event; `workflows`: events of the listed workflows (ids null: of any workflow);
 *    `pipelines`: events of the listed pipelines (ids null: of any pipeline);
 *  - event types: the listed ones (null: all).
 */
import { endpointOf } from '../common/deliveries.ts';
import type { EventRule, RuleScope, WorkflowEvent } from '../../schemas/index.ts';
import type { RuleChange } from '../common/rules-table.ts';
import type { EntryVersion } from '../common/table.ts';

/**
 * What the matcher keeps of a rule: where matching finds it (its buckets, from application, scope and event types),
 * what routing and the 'no pool' log record read (id, delegate selectors, name, URL), where this version sits on the
 * topic (commands carry it), and the rest of what a status page shows. Secrets, headers and payload settings are the
 * dispatcher's: with a million rules they would be most of the matcher's memory. One flat object per rule, and
 * nothing per rule that only rebuilds something kept already: each object or string costs 24 to 60 bytes, a million
 * times.
 */
export interface MatchRule extends Readonly<EntryVersion> {
  readonly id: string;
  readonly application: string;
  readonly name: string;
  readonly url: string;
  readonly enabled: boolean;
  readonly disabledReason: string | null;
  /**
   * The index buckets its scope and event types select (none while disabled). Most rules have exactly one (their
   * workflow or pipeline, all or one event type): that one is kept as the string itself, the index's map key.
   */
  readonly buckets: string | readonly string[];
  readonly delegateSelectors: readonly string[];
  /** Its URL's origin: what its commands are keyed by (see commandKey()). */
  readonly endpoint: string;
  /** The version conditional rule writes are judged by (a number inline in the object: no allocation). */
  readonly updatedAt: number;
}

const NONE: readonly string[] = Object.freeze([]);
/** Each application id and endpoint once: an application (an endpoint) has many rules, each decoded with its own copy. */
const applications = new Map<string, string>();
const endpoints = new Map<string, string>();

const ANY = '*';
const SEP = '\u0000';

const key = (application: string, scope: RuleScope['kind'], id: string, type: string) => `${application}${SEP}${scope}${SEP}${id}${SEP}${type}`;

/** Each distinct value once (lists hold one or a few values: no Set for those). */
function distinct<V>(values: readonly V[]): readonly V[] {
  return values.length < 2 ? values : [...new Set(values)];
}

function bucketsOf({ application, scope: { kind, ids }, eventTypes }: EventRule): string | string[] {
  const targets = kind === 'everything' || ids === null ? [ANY] : distinct(ids);
  const types = eventTypes === null ? [ANY] : distinct(eventTypes);
  const keys: string[] = [];
  for (const target of targets) for (const type of types) keys.push(key(application, kind, target, type));
  return keys.length === 1 ? keys[0]! : keys;
}

/** The MatchRule of a rule at `version`. */
export function matchRule(rule: EventRule, { partition, offset }: EntryVersion): MatchRule {
  const { id, name, url, enabled, disabledReason, delegateSelectors, updatedAt } = rule;
  let application = applications.get(rule.application);
  if (application === undefined) applications.set(rule.application, (application = rule.application));
  const origin = endpointOf(url);
  let endpoint = endpoints.get(origin);
  if (endpoint === undefined) endpoints.set(origin, (endpoint = origin));
  return {
    id,
    application,
    name,
    url,
    enabled,
    disabledReason,
    buckets: enabled ? bucketsOf(rule) : NONE,
    delegateSelectors: delegateSelectors.length === 0 ? NONE : delegateSelectors,
    endpoint,
    partition,
    offset,
    updatedAt,
  };
}

const each = (buckets: MatchRule['buckets']): readonly string[] => (typeof buckets === 'string' ? [buckets] : buckets);

export class RuleIndex {
  /** A bucket with one rule holds it as is: most buckets (a rule's own workflow or pipeline) have one, and an array each would double their cost. */
  readonly #buckets = new Map<string, MatchRule | MatchRule[]>();
  #size = 0;

  /** Rules in the index (enabled ones only: a disabled rule can never match). */
  get size(): number {
    return this.#size;
  }

  /** Keeps the index in step with the rules table: `previous` is what an earlier change indexed. */
  apply({ previous, current }: RuleChange<MatchRule>): void {
    if (previous?.enabled) this.#remove(previous);
    if (current?.enabled) this.#add(current);
  }

  match(event: WorkflowEvent): MatchRule[] {
    const matches: MatchRule[] = [];
    const app = event.application.id;
    const collect = (scope: RuleScope['kind'], id: string) => {
      for (const type of [event.type, ANY]) {
        const bucket = this.#buckets.get(key(app, scope, id, type));
        if (bucket === undefined) continue;
        if (Array.isArray(bucket)) matches.push(...bucket);
        else matches.push(bucket as MatchRule);
      }
    };
    collect('everything', ANY);
    if (event.workflow) {
      collect('workflows', ANY);
      collect('workflows', event.workflow.id);
    }
    if (event.pipeline) {
      collect('pipelines', ANY);
      collect('pipelines', event.pipeline.id);
    }
    return matches;
  }

  #add(rule: MatchRule): void {
    for (const bucketKey of each(rule.buckets)) {
      const bucket = this.#buckets.get(bucketKey);
      if (bucket === undefined) this.#buckets.set(bucketKey, rule);
      else if (Array.isArray(bucket)) bucket.push(rule);
      else this.#buckets.set(bucketKey, [bucket as MatchRule, rule]);
    }
    this.#size += 1;
  }

  #remove(rule: MatchRule): void {
    for (const bucketKey of each(rule.buckets)) {
      const bucket = this.#buckets.get(bucketKey)!;
      if (!Array.isArray(bucket)) {
        this.#buckets.delete(bucketKey);
        continue;
      }
      bucket.splice(bucket.indexOf(rule), 1);
      if (bucket.length === 1) this.#buckets.set(bucketKey, bucket[0]!);
    }
    this.#size -= 1;
  }
}
