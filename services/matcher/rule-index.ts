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
import type { EventRule, WorkflowEvent } from '../../schemas/index.ts';
import type { RuleChange } from '../common/rules-table.ts';

/**
 * What the matcher keeps of a rule: what matching reads (application, enabled, scope, event types), what routing and
 * the 'no pool' log record read (id, delegate selectors, name, URL), and why it is disabled (status pages). Secrets,
 * headers and payload settings are the dispatcher's: with a million rules they would be most of the matcher's memory.
 */
export type MatchRule = Readonly<Pick<EventRule, 'id' | 'application' | 'name' | 'url' | 'enabled' | 'disabledReason' | 'scope' | 'eventTypes' | 'delegateSelectors'>>;

const NONE: readonly string[] = Object.freeze([]);

/**
 * A rule's MatchRule. Lists are copied to their exact length (a decoder's arrays grow by pushing and keep spare room)
 * and an empty selector list is shared.
 */
export function matchRule(rule: EventRule): MatchRule {
  const { id, application, name, url, enabled, disabledReason, scope, eventTypes, delegateSelectors } = rule;
  return {
    id,
    application,
    name,
    url,
    enabled,
    disabledReason,
    scope: { kind: scope.kind, ids: scope.ids && scope.ids.slice() },
    eventTypes: eventTypes && eventTypes.slice(),
    delegateSelectors: delegateSelectors.length === 0 ? (NONE as string[]) : delegateSelectors.slice(),
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
  const { kind, ids } = rule.scope;
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
