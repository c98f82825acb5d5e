/**
 * The JSON a rule's endpoint receives, in the rule's format:
 *  - `standard`: the Standard Webhooks shape {type, timestamp, data};
 *  - `harness_v1`: the Harness Event Rules payload (id, eventType workflow_start/workflow_end/…, data, version "v1");
 *  - `sharering`: the ShareRing LINK payload (event_type workflow_run.completed/task_run.started/…, run_id, task_id,
 *    status, timestamp) — execution metadata only, never end-user data.
 * A rule with includeUserData=false gets no `triggeredBy` person in any format.
 */
import type { EntityRef, EventRule, EventType, WorkflowEvent } from '../../schemas/index.ts';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json | undefined };

const [subjectOf, verbOf] = [(type: EventType) => type.split('_')[0]!, (type: EventType) => type.split('_')[1]!];

const iso = (ms: number) => new Date(ms).toISOString();
const ref = (entity: EntityRef): Json => (entity.name === null ? { id: entity.id } : { name: entity.name, id: entity.id });

function standard(event: WorkflowEvent, includeUserData: boolean): Json {
  const { triggeredBy, ...rest } = event;
  return {
    type: `${subjectOf(event.type)}.${verbOf(event.type)}`,
    timestamp: iso(event.occurredAt),
    data: { ...(rest as unknown as { [key: string]: Json }), ...(includeUserData && triggeredBy ? { triggeredBy: { ...triggeredBy } } : {}) },
  };
}

/** Harness names an end `_end` whatever the outcome (the status says which) and uses present-tense verbs. */
const harnessVerbs: Record<string, string> = { started: 'start', completed: 'end', failed: 'end', paused: 'pause', continued: 'continue', cancelled: 'end' };

function harness(event: WorkflowEvent, includeUserData: boolean): Json {
  const data: { [key: string]: Json | undefined } = {
    pipeline: event.pipeline ? ref(event.pipeline) : undefined,
    application: ref(event.application),
    workflow: event.workflow ? ref(event.workflow) : undefined,
    task: event.task ? { id: event.task.id, ...(event.task.name === null ? {} : { name: event.task.name }), runId: event.task.runId } : undefined,
    environments: event.environments.map(ref),
    workflowExecution: event.workflowExecutionId === null ? undefined : { id: event.workflowExecutionId },
    pipelineExecution: event.pipelineExecutionId === null ? undefined : { id: event.pipelineExecutionId },
    startedAt: event.startedAt ?? undefined,
    completedAt: event.completedAt ?? undefined,
    infraDefinitions: event.infraDefinitions.map(ref),
    services: event.services.map(ref),
    triggeredBy: includeUserData && event.triggeredBy ? { name: event.triggeredBy.name, uuid: event.triggeredBy.uuid, email: event.triggeredBy.email } : undefined,
    status: harnessVerbs[verbOf(event.type)] === 'end' ? (event.status ?? undefined) : undefined,
  };
  return { id: event.eventId, eventType: `${subjectOf(event.type)}_${harnessVerbs[verbOf(event.type)]}`, data, version: 'v1' };
}

function sharering(event: WorkflowEvent): Json {
  return {
    event_type: `${subjectOf(event.type)}_run.${verbOf(event.type)}`,
    event_id: event.eventId,
    run_id: event.workflowExecutionId ?? event.pipelineExecutionId,
    ...(event.task ? { task_id: event.task.runId } : {}),
    status: event.status,
    timestamp: iso(event.occurredAt),
  };
}

/** The request body for `event` under `rule` (JSON text; undefined fields are left out). */
export function renderPayload(event: WorkflowEvent, rule: Pick<EventRule, 'payloadFormat' | 'includeUserData'>): string {
  switch (rule.payloadFormat) {
    case 'standard':
      return JSON.stringify(standard(event, rule.includeUserData));
    case 'harness_v1':
      return JSON.stringify(harness(event, rule.includeUserData));
    case 'sharering':
      return JSON.stringify(sharering(event));
  }
}
