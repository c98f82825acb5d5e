/**
 * Dispatcher pools — Harness's delegates with selectors. Each dispatcher announces its pool and tags on the compacted
 * dispatcher-pools topic; the matcher reads them as a table and sends a rule's commands to a pool whose tags include
 * every one of the rule's delegate selectors (`${...}` expressions resolved from the event first).
 */
import { contracts, type DispatcherPool, type ValidationIssue, type WorkflowEvent } from '../../schemas/index.ts';
import { KafkaTable, type TableOptions } from './table.ts';
import { DEFAULT_POOL, type TopicNames } from './topics.ts';

export const POOL_NAME = /^[a-z0-9-]+$/;

/** The consumer group a pool's dispatchers of this install read with unless DISPATCHER_GROUP_ID says otherwise. */
export function poolGroupId(names: Pick<TopicNames, 'group'>, pool: string): string {
  return names.group(pool === DEFAULT_POOL ? 'dispatcher' : `dispatcher.${pool}`);
}

export function checkPool(pool: DispatcherPool): { ok: true; value: DispatcherPool } | { ok: false; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  if (!POOL_NAME.test(pool.pool)) issues.push({ field: 'pool', reason: 'must be lower-case letters, digits and dashes' });
  pool.tags.forEach((tag, index) => { if (!tag.trim()) issues.push({ field: `tags.${index}`, reason: 'must not be empty' }); });
  return issues.length ? { ok: false, issues } : { ok: true, value: pool };
}

export class PoolsTable extends KafkaTable<DispatcherPool> {
  constructor(options: Omit<TableOptions<DispatcherPool>, 'name' | 'contract' | 'check' | 'idOf'>) {
    super({ ...options, name: 'pools', contract: contracts.dispatcherPool, check: checkPool, idOf: (pool) => pool.pool });
  }
}

/** The value at a dotted path of the event (`workflow.name`, `environments[0].id`), as a string, if there is one. */
function resolvePath(event: WorkflowEvent, path: string): string | undefined {
  let value: unknown = event;
  for (const part of path.replace(/\[(\d+)\]/g, '.$1').split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** A rule's selectors with `${path}` expressions replaced by the event's values. */
export function resolveSelectors(selectors: readonly string[], event: WorkflowEvent): { ok: true; tags: string[] } | { ok: false; error: string } {
  const tags: string[] = [];
  for (const selector of selectors) {
    let unresolved: string | undefined;
    const tag = selector.replace(/\$\{([^}]+)\}/g, (_, path: string) => {
      const value = resolvePath(event, path.trim());
      if (value === undefined) unresolved = path.trim();
      return value ?? '';
    });
    if (unresolved !== undefined) return { ok: false, error: `delegate selector "${selector}": \${${unresolved}} has no value in this event` };
    tags.push(tag);
  }
  return { ok: true, tags };
}

/** The pool for (rule, event): the default pool without selectors, else the first pool (by name) with every tag. */
export function choosePool(rule: { readonly delegateSelectors: readonly string[] }, event: WorkflowEvent, pools: Iterable<Pick<DispatcherPool, 'pool' | 'tags'>>): { ok: true; pool: string } | { ok: false; error: string } {
  if (rule.delegateSelectors.length === 0) return { ok: true, pool: DEFAULT_POOL };
  const resolved = resolveSelectors(rule.delegateSelectors, event);
  if (!resolved.ok) return resolved;
  const candidates = [...pools].filter((pool) => resolved.tags.every((tag) => pool.tags.includes(tag))).map((pool) => pool.pool).sort();
  if (candidates[0]) return { ok: true, pool: candidates[0] };
  return { ok: false, error: `no dispatcher pool has all of the tags [${resolved.tags.join(', ')}] (the rule's delegate selectors)` };
}
