/**
 * The shapes `npm run bench` sends through the pipeline, shared with the floor's `work` mode so both measure the same
 * rule and the same event.
 */
import { randomUUID } from 'node:crypto';
import type { EventRuleInput, WorkflowEventInput } from '../schemas/index.ts';

export function benchRule(id: string, application: string, url: string, secret: string, scope: EventRuleInput['scope'] = { kind: 'everything', ids: null }): Omit<EventRuleInput, 'updatedAt'> {
  return { id, application, name: id, enabled: true, scope, eventTypes: null, url, secrets: [{ secret, notAfter: null }] };
}

/** Event `index` of a run: a completed task of workflow `workflowId`, stamped now (the receiver measures latency by it). */
export function benchEvent(index: number, application: string, workflowId: string): WorkflowEventInput {
  return {
    eventId: `e2e-${index}-${randomUUID().slice(0, 8)}`, type: 'task_completed', occurredAt: Date.now(), application: { id: application },
    workflow: { id: workflowId }, workflowExecutionId: `run-${index % 1000}`, task: { id: 'task', runId: `tr-${index}` }, status: 'SUCCESS',
  };
}
