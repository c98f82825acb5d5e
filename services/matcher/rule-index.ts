/**
 * Rules indexed by what an event can be looked up by — application, then workflow or pipeline id, then event type —
 * so finding the rules of an event costs the same with ten rules or a hundred thousand: a handful of map lookups plus
 * the matches themselves. Semantics (both seeds):
 *  - a rule sees only its application's events, and only while enabled;
 *  - scope `everything`: every event; `workflows`: events of the listed workflows (ids null: of any workflow);
 *    `pipelines`: events of the listed pipelines (ids null: of any pipeline);
 *  - event types: the listed ones (null: all).
 */
import type { EventRule, EventType, WorkflowEvent } from '../../schemas/index.ts';
import type { RuleChange } from '../common/rules-table.ts';

const ALL = '*';

/** rule ids by event type (or ALL) — the innermost level of the index. */
class ByType {
  readonly #sets = new Map<string, Set<EventRule>>();

  add(rule: EventRule): void {
    for (const type of rule.eventTypes ?? [ALL]) {
      let set = this.#sets.get(type);
      if (!set) this.#sets.set(type, (set = new Set()));
      set.add(rule);
    }
  }

  remove(rule: EventRule): boolean {
    for (const type of rule.eventTypes ?? [ALL]) {
      const set = this.#sets.get(type);
      set?.delete(rule);
      if (set?.size === 0) this.#sets.delete(type);
    }
    return this.#sets.size === 0;
  }

  collect(type: EventType, into: EventRule[]): void {
    for (const key of [type, ALL]) for (const rule of this.#sets.get(key) ?? []) into.push(rule);
  }
}

/** Everything one application's rules are indexed by. */
class ApplicationRules {
  readonly everything = new ByType();
  readonly anyWorkflow = new ByType();
  readonly anyPipeline = new ByType();
  readonly byWorkflow = new Map<string, ByType>();
  readonly byPipeline = new Map<string, ByType>();
  size = 0;

  /** The buckets a rule lives in (one per listed id, or the single "any" bucket). */
  *buckets(rule: EventRule, create: boolean): Generator<{ bucket: ByType; drop?: () => void }> {
    const { kind, ids } = rule.scope;
    if (kind === 'everything') return yield { bucket: this.everything };
    if (ids === null) return yield { bucket: kind === 'workflows' ? this.anyWorkflow : this.anyPipeline };
    const map = kind === 'workflows' ? this.byWorkflow : this.byPipeline;
    for (const id of new Set(ids)) {
      let bucket = map.get(id);
      if (!bucket && create) map.set(id, (bucket = new ByType()));
      if (bucket) yield { bucket, drop: () => map.delete(id) };
    }
  }
}

export class RuleIndex {
  readonly #applications = new Map<string, ApplicationRules>();
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
    const app = this.#applications.get(event.application.id);
    if (!app) return [];
    const matches: EventRule[] = [];
    app.everything.collect(event.type, matches);
    if (event.workflow) {
      app.anyWorkflow.collect(event.type, matches);
      app.byWorkflow.get(event.workflow.id)?.collect(event.type, matches);
    }
    if (event.pipeline) {
      app.anyPipeline.collect(event.type, matches);
      app.byPipeline.get(event.pipeline.id)?.collect(event.type, matches);
    }
    return matches;
  }

  #add(rule: EventRule): void {
    let app = this.#applications.get(rule.application);
    if (!app) this.#applications.set(rule.application, (app = new ApplicationRules()));
    for (const { bucket } of app.buckets(rule, true)) bucket.add(rule);
    app.size += 1;
    this.#indexed.set(rule.id, rule);
  }

  #remove(rule: EventRule): void {
    this.#indexed.delete(rule.id);
    const app = this.#applications.get(rule.application)!;
    for (const { bucket, drop } of app.buckets(rule, false)) if (bucket.remove(rule)) drop?.();
    if (--app.size === 0) this.#applications.delete(rule.application);
  }
}
