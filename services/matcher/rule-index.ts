/**
 * Rules indexed by what an event can be looked up by, so finding the rules of an event costs the same with ten rules
 * or a hundred thousand: at most ten map lookups plus the matches themselves. One flat map from
 * (application, scope, workflow or pipeline id, event type) to the rules there keeps memory per rule small.
 * Semantics (both seeds):
 *  - a rule sees only its application's events, and only while enabled;
 *  - scope `everything`: every event; `workflows`: events of the listed workflows (ids null: of any workflow);
 *    `pipelines`: events of the listed pipelines (ids null: of any pipeline);
 *  - event types: the listed ones (null: all).
 */
import type { EventRule, WorkflowEvent } from '../../schemas/index.ts';
import type { RuleChange } from '../common/rules-table.ts';

const ANY = '*';
const SEP = '\u0000';

const key = (application: string, scope: string, id: string, type: string) => `${application}${SEP}${scope}${SEP}${id}${SEP}${type}`;

function keysOf(rule: EventRule): string[] {
  const { kind, ids } = rule.scope;
  const targets = kind === 'everything' || ids === null ? [ANY] : [...new Set(ids)];
  const types = rule.eventTypes === null ? [ANY] : [...new Set(rule.eventTypes)];
  return targets.flatMap((target) => types.map((type) => key(rule.application, kind, target, type)));
}

export class RuleIndex {
  readonly #buckets = new Map<string, EventRule[]>();
  /** The version of each rule that is in the index, by id. */
  readonly #indexed = new Map<string, EventRule>();

  /** Rules in the index (enabled ones only: a disabled rule can never match). */
  get size(): number {
    return this.#indexed.size;
  }

  /** Keeps the index in step with the rules table. */
  apply({ id, current }: RuleChange): void {
    const indexed = this.#indexed.get(id);
    if (indexed) this.#remove(indexed);
    if (current?.enabled) this.#add(current);
  }

  match(event: WorkflowEvent): EventRule[] {
    const matches: EventRule[] = [];
    const app = event.application.id;
    const collect = (scope: string, id: string) => {
      for (const type of [event.type, ANY]) {
        const bucket = this.#buckets.get(key(app, scope, id, type));
        if (bucket) matches.push(...bucket);
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

  #add(rule: EventRule): void {
    for (const bucketKey of keysOf(rule)) {
      const bucket = this.#buckets.get(bucketKey);
      if (bucket) bucket.push(rule);
      else this.#buckets.set(bucketKey, [rule]);
    }
    this.#indexed.set(rule.id, rule);
  }

  #remove(rule: EventRule): void {
    this.#indexed.delete(rule.id);
    for (const bucketKey of keysOf(rule)) {
      const bucket = this.#buckets.get(bucketKey)!;
      bucket.splice(bucket.indexOf(rule), 1);
      if (bucket.length === 0) this.#buckets.delete(bucketKey);
    }
  }
}
