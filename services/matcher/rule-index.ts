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
import type { EventRule, EventType, RuleScope, WorkflowEvent } from '../../schemas/index.ts';
import type { RuleChange } from '../common/rules-table.ts';
import type { EntryVersion } from '../common/table.ts';

/**
 * What the matcher keeps of a rule: what matching reads (application, enabled, scope, event types), what routing and
 * the 'no pool' log record read (id, delegate selectors, name, URL), where this version sits on the topic (commands
 * carry it) and why it is disabled (status pages). Secrets, headers and payload settings are the dispatcher's: with a
 * million rules they would be most of the matcher's memory. One flat object per rule (scope and version inlined):
 * every object per rule costs 40 bytes or more, a million times.
 */
export interface MatchRule extends Readonly<EntryVersion> {
  readonly id: string;
  readonly application: string;
  readonly name: string;
  readonly url: string;
  readonly enabled: boolean;
  readonly disabledReason: string | null;
  readonly scopeKind: RuleScope['kind'];
  readonly scopeIds: readonly string[] | null;
  readonly eventTypes: readonly EventType[] | null;
  readonly delegateSelectors: readonly string[];
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * The MatchRule of a rule at `version`. Lists are copied to their exact length (a decoder's arrays grow by pushing
 * and keep spare room) and an empty selector list is shared.
 */
export function matchRule(rule: EventRule, { partition, offset }: EntryVersion): MatchRule {
  const { id, application, name, url, enabled, disabledReason, scope, eventTypes, delegateSelectors } = rule;
  return {
    id,
    application,
    name,
    url,
    enabled,
    disabledReason,
    scopeKind: scope.kind,
    scopeIds: scope.ids && scope.ids.slice(),
    eventTypes: eventTypes && eventTypes.slice(),
    delegateSelectors: delegateSelectors.length === 0 ? NONE : delegateSelectors.slice(),
    partition,
    offset,
  };
}

const ANY = '*';
const SEP = '\u0000';

const key = (application: string, scope: string, id: string, type: string) => `${application}${SEP}${scope}${SEP}${id}${SEP}${type}`;

/** Each distinct value once (lists hold one or a few values: no Set for those). */
function distinct<V>(values: readonly V[]): readonly V[] {
  return values.length < 2 ? values : [...new Set(values)];
}

function keysOf(rule: MatchRule): string[] {
  const { scopeKind: kind, scopeIds: ids } = rule;
  const targets = kind === 'everything' || ids === null ? [ANY] : distinct(ids);
  const types = rule.eventTypes === null ? [ANY] : distinct(rule.eventTypes);
  const keys: string[] = [];
  for (const target of targets) for (const type of types) keys.push(key(rule.application, kind, target, type));
  return keys;
}

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
    const collect = (scope: string, id: string) => {
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
    for (const bucketKey of keysOf(rule)) {
      const bucket = this.#buckets.get(bucketKey);
      if (bucket === undefined) this.#buckets.set(bucketKey, rule);
      else if (Array.isArray(bucket)) bucket.push(rule);
      else this.#buckets.set(bucketKey, [bucket as MatchRule, rule]);
    }
    this.#size += 1;
  }

  #remove(rule: MatchRule): void {
    for (const bucketKey of keysOf(rule)) {
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
