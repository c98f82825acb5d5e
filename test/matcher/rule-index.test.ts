import { describe, expect, it } from 'vitest';
import { contracts, validate, type EventRule, type WorkflowEvent, type WorkflowEventInput } from '../../schemas/index.ts';
import { checkRule } from '../../services/common/rules.ts';
import { matchRule, RuleIndex, type MatchRule } from '../../services/matcher/rule-index.ts';
import { harnessApp, harnessEvent, harnessPipeline, harnessTypes, harnessWorkflow, shareringApp, shareringEvent, shareringTypes, shareringWorkflow } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';

const wholeRule = (input: ReturnType<typeof rule>): EventRule => {
  const checked = checkRule({ ...input, updatedAt: 1 });
  if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
  return checked.rule;
};
/** The rule as the matcher's table keeps it. */
const asRule = (input: ReturnType<typeof rule>, version = { partition: 0, offset: 1 }): MatchRule => matchRule(wholeRule(input), version);
const asEvent = (input: WorkflowEventInput): WorkflowEvent => (validate(contracts.workflowEvent, input) as { value: WorkflowEvent }).value;

function indexOf(...rules: MatchRule[]): RuleIndex {
  const index = new RuleIndex();
  for (const current of rules) index.apply({ id: current.id, previous: undefined, current });
  return index;
}
const matchIds = (index: RuleIndex, event: WorkflowEvent) => index.match(event).map((r) => r.id).sort();

// Every event type of both seeds, in their own applications.
const harness = harnessTypes.map((type) => asEvent(harnessEvent(type)));
const otherWorkflow = asEvent(harnessEvent('workflow_started', { workflow: { id: 'other-workflow' }, pipeline: { id: 'other-pipeline' } }));
const sharering = shareringTypes.map((type) => asEvent(shareringEvent(type)));

describe('rule matching (both seeds: application, enabled, scope, event types)', () => {
  const rules = {
    everything: asRule(rule('everything', harnessApp.id)),
    disabled: asRule(rule('disabled', harnessApp.id, { enabled: false })),
    otherApp: asRule(rule('other-app', 'another-application')),
    listedWorkflow: asRule(rule('listed-workflow', harnessApp.id, { scope: { kind: 'workflows', ids: [harnessWorkflow.id] } })),
    anyWorkflow: asRule(rule('any-workflow', harnessApp.id, { scope: { kind: 'workflows', ids: null } })),
    listedPipeline: asRule(rule('listed-pipeline', harnessApp.id, { scope: { kind: 'pipelines', ids: [harnessPipeline.id] } })),
    anyPipeline: asRule(rule('any-pipeline', harnessApp.id, { scope: { kind: 'pipelines', ids: null } })),
    startAndEnd: asRule(rule('start-and-end', harnessApp.id, { eventTypes: ['workflow_started', 'workflow_completed'] })),
    pipelineEnd: asRule(rule('pipeline-end', harnessApp.id, { scope: { kind: 'pipelines', ids: [harnessPipeline.id] }, eventTypes: ['pipeline_completed'] })),
    tasks: asRule(rule('tasks', shareringApp.id, { eventTypes: ['task_started', 'task_completed', 'task_cancelled'] })),
    runFailed: asRule(rule('run-failed', shareringApp.id, { scope: { kind: 'workflows', ids: [shareringWorkflow.id] }, eventTypes: ['workflow_failed'] })),
  };
  const index = indexOf(...Object.values(rules));

  it('Harness: send me everything / workflows / pipelines, all events or selected ones', () => {
    const byType = Object.fromEntries(harness.map((event) => [event.type, matchIds(index, event)]));
    const workflowScoped = ['any-pipeline', 'any-workflow', 'everything', 'listed-pipeline', 'listed-workflow'];
    expect(byType).toEqual({
      workflow_started: [...workflowScoped, 'start-and-end'].sort(),
      workflow_completed: [...workflowScoped, 'start-and-end'].sort(),
      workflow_paused: workflowScoped,
      workflow_continued: workflowScoped,
      // Pipeline events carry no workflow: workflow-scoped rules never see them.
      pipeline_started: ['any-pipeline', 'everything', 'listed-pipeline'],
      pipeline_completed: ['any-pipeline', 'everything', 'listed-pipeline', 'pipeline-end'],
      pipeline_paused: ['any-pipeline', 'everything', 'listed-pipeline'],
      pipeline_continued: ['any-pipeline', 'everything', 'listed-pipeline'],
    });
    expect(matchIds(index, otherWorkflow)).toEqual(['any-pipeline', 'any-workflow', 'everything', 'start-and-end']);
  });

  it('ShareRing: workflow-run and task-run subscriptions', () => {
    expect(Object.fromEntries(sharering.map((event) => [event.type, matchIds(index, event)]))).toEqual({
      workflow_started: [],
      workflow_completed: [],
      workflow_failed: ['run-failed'],
      task_started: ['tasks'],
      task_completed: ['tasks'],
      task_cancelled: ['tasks'],
    });
  });

  it('follows enable, disable, update and delete', () => {
    const live = indexOf();
    const event = harness[0]!;
    const change = (previous: MatchRule | undefined, current: MatchRule | undefined) => live.apply({ id: 'r', previous, current });
    const disabled = asRule(rule('r', harnessApp.id, { enabled: false }));
    const enabled = asRule(rule('r', harnessApp.id));
    const narrowed = asRule(rule('r', harnessApp.id, { eventTypes: ['pipeline_started'] }));
    const moved = asRule(rule('r', shareringApp.id));
    change(undefined, disabled);
    expect(matchIds(live, event)).toEqual([]);
    change(disabled, enabled);
    expect(matchIds(live, event)).toEqual(['r']);
    change(enabled, narrowed);
    expect(matchIds(live, event)).toEqual([]);
    expect(matchIds(live, harness[4]!)).toEqual(['r']);
    change(narrowed, moved);
    expect(matchIds(live, harness[4]!)).toEqual([]);
    expect(matchIds(live, sharering[0]!)).toEqual(['r']);
    change(moved, undefined);
    expect(matchIds(live, sharering[0]!)).toEqual([]);
    expect(live.size).toBe(0);
  });
});

describe('the compact form the matcher keeps (matchRule)', () => {
  it('keeps what matching, routing (pool, command key) and the no-pool log record read, the version and updatedAt (conditional writes); no secret or header', () => {
    const whole = wholeRule(rule('r', harnessApp.id, { headers: { authorization: 'Bearer t0ken' }, delegateSelectors: ['eu', '${workflow.id}'], scope: { kind: 'workflows', ids: ['w'] }, eventTypes: ['workflow_started'] }));
    const kept = matchRule(whole, { partition: 2, offset: 41 });
    expect(kept).toEqual({
      id: 'r', application: harnessApp.id, name: 'rule r', url: whole.url, enabled: true, disabledReason: null,
      buckets: `${harnessApp.id}\0workflows\0w\0workflow_started`, delegateSelectors: ['eu', '${workflow.id}'], endpoint: new URL(whole.url).origin, partition: 2, offset: 41,
      updatedAt: whole.updatedAt,
    });
    expect(JSON.stringify(kept)).not.toMatch(/whsec_|t0ken/);
  });

  it('one bucket per listed target and event type; none while disabled', () => {
    const many = asRule(rule('many', harnessApp.id, { scope: { kind: 'pipelines', ids: ['p1', 'p2'] }, eventTypes: ['pipeline_started', 'pipeline_completed'] }));
    expect(many.buckets).toHaveLength(4);
    expect(asRule(rule('off', harnessApp.id, { enabled: false })).buckets).toEqual([]);
  });

  it('a workflow or event type listed twice still matches once', () => {
    const index = indexOf(asRule(rule('twice', harnessApp.id, { scope: { kind: 'workflows', ids: [harnessWorkflow.id, harnessWorkflow.id] }, eventTypes: ['workflow_started', 'workflow_started'] })));
    expect(index.match(harness[0]!).map((r) => r.id)).toEqual(['twice']);
  });

  it('follows rules sharing a bucket as they are disabled, moved and deleted, one at a time', () => {
    const live = indexOf();
    const event = harness[0]!;
    const [a, b, c] = ['a', 'b', 'c'].map((id) => asRule(rule(id, harnessApp.id))) as [MatchRule, MatchRule, MatchRule];
    for (const current of [a, b, c]) live.apply({ id: current.id, previous: undefined, current });
    expect(matchIds(live, event)).toEqual(['a', 'b', 'c']);
    const bOff = asRule(rule('b', harnessApp.id, { enabled: false }));
    live.apply({ id: 'b', previous: b, current: bOff });
    expect(matchIds(live, event)).toEqual(['a', 'c']);
    const aMoved = asRule(rule('a', shareringApp.id));
    live.apply({ id: 'a', previous: a, current: aMoved });
    expect(matchIds(live, event)).toEqual(['c']);
    expect(matchIds(live, sharering[0]!)).toEqual(['a']);
    live.apply({ id: 'b', previous: bOff, current: b });
    expect(matchIds(live, event)).toEqual(['b', 'c']);
    live.apply({ id: 'c', previous: c, current: undefined });
    live.apply({ id: 'b', previous: b, current: undefined });
    expect(matchIds(live, event)).toEqual([]);
    expect(matchIds(live, sharering[0]!)).toEqual(['a']);
    expect(live.size).toBe(1);
  });
});
