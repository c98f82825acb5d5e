import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessApp, harnessEvent, shareringApp, shareringEvent } from '../fixtures/seed-events.ts';
import { newSecret, rule } from '../fixtures/rules.ts';
import { testCluster, waitFor } from '../helpers.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import { readLog } from './fixtures.ts';

const cluster = testCluster('dispatch', { RETRY_SCHEDULE: [1000, 2000] });
let io: Pipeline['io'];
let matcher: Matcher;
let pipeline: Pipeline;
const receiver = () => pipeline.receiver();

beforeAll(async () => {
  pipeline = await startPipeline(cluster);
  ({ io, matcher } = pipeline);
});
afterAll(() => pipeline?.stop());

describe('dispatcher: signed deliveries to real HTTP receivers on loopback', () => {
  it('signs so that the standardwebhooks library verifies every request, also during a secret rotation', async () => {
    const target = await receiver();
    const [oldSecret, newSecretValue] = [newSecret(), newSecret()];
    await io.rules.put(rule('signed', 'sign-app', {
      url: target.url,
      headers: { 'x-team': 'payments' },
      secrets: [{ secret: oldSecret, notAfter: Date.now() + 3_600_000 }, { secret: newSecretValue, notAfter: null }, { secret: newSecret(), notAfter: Date.now() - 1000 }],
    }));
    await waitFor('rule in both tables', () => matcher.rules.get('signed') !== undefined);
    const event = harnessEvent('workflow_started', { application: { id: 'sign-app' } });
    await io.events.publish(event);
    await waitFor('delivery', () => target.received.length === 1);

    const [request] = target.received;
    const headers = request!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2); // the expired secret no longer signs
    for (const secret of [oldSecret, newSecretValue]) expect(new Webhook(secret).verify(request!.body, headers)).toMatchObject({ type: 'workflow.started' });
    expect(() => new Webhook(newSecret()).verify(request!.body, headers)).toThrow();
    expect(headers).toMatchObject({ 'content-type': 'application/json', 'user-agent': 'workflow-webhooks-test', 'x-team': 'payments' });
    expect(headers['webhook-id']).toMatch(/^msg_/);

    const [log] = await readLog(cluster, (entries) => entries.some((entry) => entry.ruleId === 'signed'));
    expect(log).toMatchObject({ deliveryId: headers['webhook-id'], attempt: 1, ruleId: 'signed', ruleName: 'rule signed', eventId: event.eventId, eventType: 'workflow_started', url: target.url, outcome: 'delivered', httpStatus: 200, error: null });
    expect(log!.latencyMs).toBeGreaterThan(0);
  });

  it('renders each seed format, and drops the person who triggered the run when user data is off', async () => {
    const [standard, harnessTarget, shareringTarget] = [await receiver(), await receiver(), await receiver()];
    await io.rules.put(
      rule('fmt-standard', harnessApp.id, { url: standard.url, includeUserData: false, eventTypes: ['workflow_completed'] }),
      rule('fmt-harness', harnessApp.id, { url: harnessTarget.url, payloadFormat: 'harness_v1', eventTypes: ['workflow_started', 'workflow_completed'] }),
      rule('fmt-sharering', shareringApp.id, { url: shareringTarget.url, payloadFormat: 'sharering', eventTypes: ['task_completed'] }),
    );
    await waitFor('rules', () => matcher.rules.get('fmt-sharering') !== undefined);
    const started = harnessEvent('workflow_started');
    const completed = harnessEvent('workflow_completed');
    const task = shareringEvent('task_completed');
    await io.events.publish([started, completed, task]);
    await waitFor('deliveries', () => standard.received.length === 1 && harnessTarget.received.length === 2 && shareringTarget.received.length === 1);

    const standardBody = JSON.parse(standard.received[0]!.body);
    expect(standardBody).toMatchObject({ type: 'workflow.completed', timestamp: new Date(completed.occurredAt).toISOString(), data: { eventId: completed.eventId, status: 'FAILED' } });
    expect(standardBody.data).not.toHaveProperty('triggeredBy');

    // Exactly the Harness seed's documented shapes (ids from its examples).
    const bodies = harnessTarget.received.map((request) => JSON.parse(request.body)).sort((a, b) => a.eventType.localeCompare(b.eventType));
    expect(bodies[1]).toEqual({
      id: started.eventId,
      eventType: 'workflow_start',
      data: {
        pipeline: { name: 'K8s Prod Pipeline', id: 'T4XKvdmXRM-zjyfyMHBlxg' },
        application: { name: 'Harness Sample App', id: 'V9DxliUiS_SVzmNPkkR5Ow' },
        workflow: { name: 'To-Do List K8s Rolling', id: 'smcCVuvCT4SCyayxG85U8w' },
        environments: [{ id: '5Rx44pB4RC-eAt2SB10l_A' }],
        workflowExecution: { id: 'Ji0GRNDvSKCaiNmrLT8Fmg' },
        pipelineExecution: { id: 'j_V2nAroRbCdy8tmiy6eoA' },
        startedAt: 1644938260133,
        infraDefinitions: [{ id: 'MfxXXKPdRjysPEE_KZCaHA' }],
        services: [{ id: '2U9X2Z3YTBmQOvUMaWDy-Q' }],
        triggeredBy: { name: 'Admin', uuid: 'lv0euRhKRCyiXWzS7pOg6g', email: 'admin@harness.io' },
      },
      version: 'v1',
    });
    expect(bodies[0]).toMatchObject({ id: completed.eventId, eventType: 'workflow_end', version: 'v1', data: { completedAt: 1644938268018, status: 'FAILED', startedAt: 1644938260133 } });

    expect(JSON.parse(shareringTarget.received[0]!.body)).toEqual({
      event_type: 'task_run.completed',
      event_id: task.eventId,
      run_id: 'run-7f3a',
      task_id: 'taskrun-19c2',
      status: 'SUCCESS',
      timestamp: new Date(task.occurredAt).toISOString(),
    });
  });

  it('retries at the configured delays, and only then, with the same webhook-id', async () => {
    const flaky = await receiver();
    flaky.respond = (index) => (index < 2 ? 500 : 204);
    await io.rules.put(rule('flaky', 'flaky-app', { url: flaky.url }));
    await waitFor('rule', () => matcher.rules.get('flaky') !== undefined);
    await io.events.publish(shareringEvent('workflow_failed', { application: { id: 'flaky-app' } }));
    await waitFor('third attempt', () => flaky.received.length === 3, 20_000);

    const [first, second, third] = flaky.received.map((request) => request.at);
    expect(second! - first!).toBeGreaterThanOrEqual(1000);
    expect(second! - first!).toBeLessThan(1000 * 1.1 + 1500);
    expect(third! - second!).toBeGreaterThanOrEqual(2000);
    expect(third! - second!).toBeLessThan(2000 * 1.1 + 1500);
    expect(new Set(flaky.received.map((request) => request.headers['webhook-id'])).size).toBe(1);

    const log = (await readLog(cluster, (entries) => entries.filter((entry) => entry.ruleId === 'flaky').length === 3)).filter((entry) => entry.ruleId === 'flaky');
    expect(log.map((entry) => [entry.attempt, entry.outcome, entry.httpStatus])).toEqual([[1, 'retrying', 500], [2, 'retrying', 500], [3, 'delivered', 204]]);
    expect(log[0]!.nextAttemptAt! - log[0]!.attemptedAt).toBeGreaterThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(flaky.received).toHaveLength(3);
  });

  it('paces a rule with a rate limit', async () => {
    const paced = await receiver();
    await io.rules.put(rule('paced', 'paced-app', { url: paced.url, rateLimitPerSecond: 10 }));
    await waitFor('rule', () => matcher.rules.get('paced') !== undefined);
    await io.events.publish(Array.from({ length: 8 }, () => harnessEvent('task_started', { application: { id: 'paced-app' } })));
    await waitFor('all paced deliveries', () => paced.received.length === 8);
    const times = paced.received.map((request) => request.at);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(7 * 100 - 20);
  });

  it('disables the rule when the endpoint answers 410 Gone', async () => {
    const gone = await receiver();
    gone.respond = () => 410;
    await io.rules.put(rule('gone', 'gone-app', { url: gone.url }));
    await waitFor('rule', () => matcher.rules.get('gone') !== undefined);
    await io.events.publish(harnessEvent('pipeline_started', { application: { id: 'gone-app' } }));
    await waitFor('rule disabled', () => matcher.rules.get('gone')?.enabled === false);
    expect(matcher.rules.get('gone')?.disabledReason).toMatch(/^the endpoint answered 410 Gone at /);
    const [log] = (await readLog(cluster, (entries) => entries.some((entry) => entry.ruleId === 'gone'))).filter((entry) => entry.ruleId === 'gone');
    expect(log).toMatchObject({ outcome: 'failed', httpStatus: 410, error: '410 Gone: the rule was disabled' });
    await io.events.publish(harnessEvent('pipeline_completed', { application: { id: 'gone-app' } }));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(gone.received).toHaveLength(1);
  });

  it('dead-letters after the schedule is exhausted', async () => {
    const broken = await receiver();
    broken.respond = () => 503;
    await io.rules.put(rule('broken', 'broken-app', { url: broken.url }));
    await waitFor('rule', () => matcher.rules.get('broken') !== undefined);
    await io.events.publish(harnessEvent('workflow_paused', { application: { id: 'broken-app' } }));
    const log = (await readLog(cluster, (entries) => entries.some((entry) => entry.ruleId === 'broken' && entry.outcome === 'dead_lettered'), 20_000)).filter((entry) => entry.ruleId === 'broken');
    expect(log.map((entry) => [entry.attempt, entry.outcome])).toEqual([[1, 'retrying'], [2, 'retrying'], [3, 'dead_lettered']]);
    expect(broken.received).toHaveLength(3);
  });
});
