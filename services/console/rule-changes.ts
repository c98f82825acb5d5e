/**
 * What each operator action does to a rule, as pure functions shared by the rules CLI and the console, so both write
 * exactly the same rule for the same action. Publishing is the caller's (RuleWriter); nothing here has side effects
 * beyond generating a secret.
 */
import { randomUUID } from 'node:crypto';
import { contracts, type EventRule, type WorkflowEvent, type WorkflowEventInput } from '../../schemas/index.ts';
import { generateSecret, type RuleDraft, type RulePut } from './rule-input.ts';

export interface ResolvedPut {
  draft: RuleDraft;
  /** Set when a secret was generated: shown to the operator once, never again. */
  generatedSecret?: string;
}

/**
 * A put as operators mean it: a new rule starts disabled (unless it says otherwise) with a generated secret; an
 * update keeps the rule's secrets and its enabled state (with the reason it was disabled) unless the put sets them.
 */
export function resolvePut(put: RulePut, existing: EventRule | undefined): ResolvedPut {
  const enabled = put.enabled ?? existing?.enabled ?? false;
  const disabledReason = put.enabled === undefined ? existing?.disabledReason ?? null : put.disabledReason ?? null;
  if (put.secrets) return { draft: { ...put, enabled, disabledReason, secrets: put.secrets } };
  if (existing) return { draft: { ...put, enabled, disabledReason, secrets: existing.secrets } };
  const generatedSecret = generateSecret();
  return { draft: { ...put, enabled, disabledReason, secrets: [{ secret: generatedSecret, notAfter: null }] }, generatedSecret };
}

export function withEnabled(rule: EventRule, enabled: boolean): RuleDraft {
  return { ...rule, enabled, disabledReason: enabled ? null : 'disabled by an operator' };
}

/** A new secret that signs from now on; the old ones keep signing for the overlap (so receivers can switch), expired ones go. */
export function withRotatedSecret(rule: EventRule, fresh: string, overlapMs: number, now = Date.now()): RuleDraft {
  const kept = rule.secrets.filter(({ notAfter }) => notAfter === null || notAfter > now).map(({ secret, notAfter }) => ({ secret, notAfter: notAfter ?? now + overlapMs }));
  return { ...rule, secrets: [...kept, { secret: fresh, notAfter: null }] };
}

/** The Harness seed's Test button: a sample event this rule selects (its first event type, inside its scope). */
export function sampleEvent(rule: EventRule, now = Date.now()): WorkflowEvent {
  const type = rule.eventTypes?.[0] ?? 'workflow_started';
  const scoped = rule.scope.ids?.[0] ?? 'sample';
  const sample: WorkflowEventInput = {
    eventId: `test-${randomUUID()}`,
    type,
    occurredAt: now,
    application: { id: rule.application, name: null },
    workflow: rule.scope.kind === 'pipelines' && type.startsWith('pipeline_') ? null : { id: rule.scope.kind === 'workflows' ? scoped : 'sample-workflow', name: 'Sample workflow' },
    pipeline: rule.scope.kind === 'pipelines' || type.startsWith('pipeline_') ? { id: rule.scope.kind === 'pipelines' ? scoped : 'sample-pipeline', name: 'Sample pipeline' } : null,
    workflowExecutionId: `test-run-${randomUUID().slice(0, 8)}`,
    task: type.startsWith('task_') ? { id: 'sample-task', name: 'Sample task', runId: `test-taskrun-${randomUUID().slice(0, 8)}` } : null,
    status: type.endsWith('failed') ? 'FAILED' : type.endsWith('completed') ? 'SUCCESS' : 'RUNNING',
  };
  return contracts.workflowEvent.type.clone(sample, { wrapUnions: false }) as WorkflowEvent;
}
