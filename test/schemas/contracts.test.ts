import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderTypes, typesFile } from '../../schemas/generate-types.ts';
import { contracts, timestampIssues, toBinary, validate } from '../../schemas/index.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';

describe('contracts', () => {
  it('schemas/types.ts is exactly what the .avsc files generate (run `npm run schemas:types` after a schema change)', () => {
    expect(readFileSync(typesFile, 'utf8')).toBe(renderTypes());
  });

  it('fills schema defaults for fields a producer leaves out', () => {
    const result = validate(contracts.workflowEvent, { eventId: 'e1', type: 'task_started', occurredAt: 1, application: { id: 'app' } });
    expect(result).toMatchObject({ ok: true, value: { pipeline: null, task: null, environments: [], application: { id: 'app', name: null } } });
  });

  it('names every offending field and why', () => {
    const result = validate(contracts.workflowEvent, {
      ...harnessEvent('workflow_started'),
      eventId: undefined,
      type: 'workflow_exploded',
      occurredAt: 'yesterday',
      environments: [{ id: 'env-1' }, { name: 'no id' }],
      colour: 'blue',
    });
    expect(result.ok).toBe(false);
    const issues = result.ok ? [] : result.issues;
    expect(issues).toEqual(expect.arrayContaining([
      { field: 'eventId', reason: 'is required' },
      { field: 'type', reason: expect.stringMatching(/^must be one of unknown, workflow_started, .*task_cancelled \(got "workflow_exploded"\)$/) },
      { field: 'occurredAt', reason: 'must be an integer (long) (got "yesterday")' },
      { field: 'environments.1.id', reason: 'is required' },
      { field: 'colour', reason: expect.stringMatching(/^unknown field/) },
    ]));
    expect(issues).toHaveLength(5);
  });

  it('registers self-contained schemas: the command embeds the whole event schema', () => {
    const event = (contracts.deliveryCommand.schema as { fields: Array<{ name: string; type: unknown }> }).fields.find((field) => field.name === 'event');
    expect(event?.type).toMatchObject({ type: 'record', name: 'workflowhooks.WorkflowEvent' });
  });

  it('finds a timestamp out of range wherever it sits: nested records, arrays of records, optional fields', () => {
    const far = 9e15;
    const rule = validate(contracts.eventRule, {
      id: 'r', application: 'a', name: 'n', scope: { kind: 'everything' }, url: 'https://example.com/', updatedAt: 1,
      secrets: [{ secret: 's', notAfter: null }, { secret: 's', notAfter: 1 }],
    });
    if (!rule.ok) throw new Error(JSON.stringify(rule.issues));
    rule.value.secrets[1]!.notAfter = far;
    expect(timestampIssues(contracts.eventRule, rule.value)).toEqual([{ field: 'secrets.1.notAfter', reason: expect.stringContaining('date range') }]);
    const command = validate(contracts.deliveryCommand, {
      deliveryId: 'd', ruleId: 'r', attempt: 1, notBefore: 1, createdAt: 1,
      event: { eventId: 'e', type: 'workflow_started', occurredAt: 1, application: { id: 'a' }, startedAt: 1 },
    });
    if (!command.ok) throw new Error(JSON.stringify(command.issues));
    command.value.event.startedAt = -far;
    expect(timestampIssues(contracts.deliveryCommand, command.value).map((issue) => issue.field)).toEqual(['event.startedAt']);
  });

  it('encodes once into a reused buffer the same bytes as avsc, after a header, at any size (the buffer grows past 64 kB)', () => {
    const header = Buffer.from([0, 0, 0, 0, 42]);
    for (const name of ['wf', 'x'.repeat(2000), 'y'.repeat(200_000), 'z'.repeat(10)]) {
      const checked = validate(contracts.workflowEvent, { ...harnessEvent('workflow_started'), workflow: { id: 'wf', name } });
      if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
      const event = checked.value;
      const binary = toBinary(contracts.workflowEvent, event, header);
      expect(binary).toEqual(Buffer.concat([header, contracts.workflowEvent.type.toBuffer(event)]));
      expect(toBinary(contracts.workflowEvent, event)).toEqual(contracts.workflowEvent.type.toBuffer(event));
      // Its own bytes: encoding the next record does not change this one.
      const copy = Buffer.from(binary);
      toBinary(contracts.workflowEvent, { ...event, eventId: 'another' }, header);
      expect(binary).toEqual(copy);
    }
  });
});
