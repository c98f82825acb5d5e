/**
 * Endpoint state across a pool (issue 24, item 8), on a real broker: per-endpoint limits hold for the pool, not once
 * per dispatcher, and the clock behind "disable a rule failing for too long" survives a restart.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { contracts, type WorkflowEvent } from '../../schemas/index.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { metricValue, testCluster, testLogger, valid, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';
import { readLog, startDispatcher, startReceiver, type Receiver } from './fixtures.ts';

const cluster = testCluster('pool-state', { RETRY_SCHEDULE: Array.from({ length: 12 }, () => 1000), TOPIC_PARTITIONS: 4 });
let io: Awaited<ReturnType<typeof writers>>;
let matcher: Matcher;
const running: Dispatcher[] = [];
const receivers: Receiver[] = [];

const settings = { maxInFlightPerEndpoint: 2, maxWaitingPerEndpoint: 100, disableAfterMs: 8000, maxAgeMs: 120_000 };
const event = (application: string): WorkflowEvent =>
  valid(contracts.workflowEvent, harnessEvent('workflow_started', { application: { id: application } }));

async function dispatcher(): Promise<Dispatcher> {
  const started = await startDispatcher(cluster, settings);
  running.push(started);
  return started;
}

async function receiver(): Promise<Receiver> {
  const created = await startReceiver();
  receivers.push(created);
  return created;
}

beforeAll(async () => {
  await prepareCluster(cluster, testLogger);
  io = await writers(cluster);
  matcher = await startMatcher(cluster);
});
afterAll(async () => {
  await Promise.all(running.map((started) => started.stop()));
  await matcher?.stop();
  await io?.close();
  await Promise.all(receivers.map((created) => created.close()));
});

describe('endpoint state across a pool', () => {
  it('item 8: an endpoint\'s concurrency cap holds for the pool: two dispatchers never send it more than the cap at once', async () => {
    const [first, second] = [await dispatcher(), await dispatcher()];
    onTestFinished(async () => void (await Promise.all(running.splice(0).map((started) => started.stop()))));
    // Both members hold partitions once the group has rebalanced to two.
    await waitFor('the second member\'s join', async () => (await metricValue(first.metrics, 'dispatcher_rebalances_total')) >= 1 && second.notReadyReason() === undefined, 30_000);
    const endpoint = await receiver();
    let inFlight = 0;
    let most = 0;
    endpoint.respond = () => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => (inFlight -= 1), 250);
      return { status: 200, delayMs: 250 };
    };
    await io.rules.put(rule('capped', 'capped-app', { url: endpoint.url }));
    await waitFor('the rule in the matcher', () => matcher.rules.get('capped') !== undefined);
    await io.events.publish(Array.from({ length: 24 }, () => event('capped-app')));

    await waitFor('24 deliveries', () => endpoint.received.length >= 24, 30_000);
    // Keyed by delivery id, each dispatcher sent its share two at a time: four at once.
    expect(most).toBeLessThanOrEqual(settings.maxInFlightPerEndpoint);
  });

  it('item 8: the failing-since clock survives a restart: a rule failing across one is disabled on time, from its first failure', async () => {
    const endpoint = await receiver();
    endpoint.respond = () => 500;
    const original = await dispatcher();
    await io.rules.put(rule('failing', 'failing-app', { url: endpoint.url }));
    await waitFor('the rule in the matcher', () => matcher.rules.get('failing') !== undefined);
    const sent = event('failing-app');
    await io.events.publish(sent);
    const failedFirst = (entry: { eventId: string; outcome: string }) => entry.eventId === sent.eventId && entry.outcome === 'retrying';
    const firstFailure = (await readLog(cluster, (entries) => entries.some(failedFirst))).find(failedFirst);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await original.stop();
    running.splice(running.indexOf(original), 1);
    const restartedAt = Date.now();
    await dispatcher();

    await waitFor('the rule disabled', () => matcher.rules.get('failing')?.enabled === false, 30_000);
    const reason = matcher.rules.get('failing')!.disabledReason!;
    const since = Date.parse(/since (\S+) \(limit/.exec(reason)![1]!);
    // Restarted, the clock would have begun again after the restart.
    expect(since).toBeLessThan(restartedAt);
    expect(Math.abs(since - firstFailure!.attemptedAt)).toBeLessThan(1000);
  });
});
