import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, validate, type WorkflowEvent } from '../../schemas/index.ts';
import { choosePool } from '../../services/common/pools.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { testCluster, testLogger, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';
import { readLog, startDispatcher, startReceiver, type Receiver } from './fixtures.ts';

const event = (validate(contracts.workflowEvent, harnessEvent('workflow_started', { workflow: { id: 'w1', name: 'eu' } })) as { value: WorkflowEvent }).value;
const pools = [
  { pool: 'us', tags: ['us', 'pci'], updatedAt: 1 },
  { pool: 'eu', tags: ['eu', 'pci'], updatedAt: 1 },
  { pool: 'eu-2', tags: ['eu', 'pci', 'gpu'], updatedAt: 1 },
];

describe('delegate selectors choose a dispatcher pool (Harness seed)', () => {
  it('without selectors: the default pool; with one: any pool having it; with several: a pool having all', () => {
    expect(choosePool({ delegateSelectors: [] }, event, pools)).toEqual({ ok: true, pool: 'default' });
    expect(choosePool({ delegateSelectors: ['us'] }, event, pools)).toEqual({ ok: true, pool: 'us' });
    expect(choosePool({ delegateSelectors: ['pci', 'gpu'] }, event, pools)).toEqual({ ok: true, pool: 'eu-2' });
    expect(choosePool({ delegateSelectors: ['eu', 'pci'] }, event, pools)).toEqual({ ok: true, pool: 'eu' });
  });
  it('resolves ${...} expressions from the event, and says why when nothing fits', () => {
    expect(choosePool({ delegateSelectors: ['${workflow.name}'] }, event, pools)).toEqual({ ok: true, pool: 'eu' });
    expect(choosePool({ delegateSelectors: ['${environments[0].id}'] }, event, [{ pool: 'env', tags: ['5Rx44pB4RC-eAt2SB10l_A'] }])).toEqual({ ok: true, pool: 'env' });
    expect(choosePool({ delegateSelectors: ['mars'] }, event, pools)).toEqual({ ok: false, error: 'no dispatcher pool has all of the tags [mars] (the rule\'s delegate selectors)' });
    expect(choosePool({ delegateSelectors: ['${task.name}'] }, event, pools)).toEqual({ ok: false, error: 'delegate selector "${task.name}": ${task.name} has no value in this event' });
  });
});

describe('dispatcher pools on the real stack', () => {
  const cluster = testCluster('pools', { RETRY_SCHEDULE: [1000] });
  let io: Awaited<ReturnType<typeof writers>>;
  let matcher: Matcher;
  let dispatchers: Dispatcher[] = [];
  let target: Receiver;

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
    io = await writers(cluster);
    target = await startReceiver();
    matcher = await startMatcher(cluster);
    dispatchers = [
      await startDispatcher(cluster),
      await startDispatcher(cluster, { pool: 'eu', tags: ['eu', 'pci'], groupId: `${cluster.TOPIC_PREFIX}dispatcher.eu` }),
    ];
  });
  afterAll(async () => {
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.stop()));
    await matcher?.stop();
    await io?.close();
    await target?.close();
  });

  it('sends each rule through the pool its selectors choose, and logs a failure when no pool fits', async () => {
    await waitFor('pool announced', () => matcher.pools.get('eu') !== undefined);
    await io.rules.put(
      rule('any', 'pool-app', { url: target.url }),
      rule('eu', 'pool-app', { url: target.url, delegateSelectors: ['eu', 'pci'] }),
      rule('by-name', 'pool-app', { url: target.url, delegateSelectors: ['${workflow.name}'] }),
      rule('mars', 'pool-app', { url: target.url, delegateSelectors: ['mars'] }),
    );
    await waitFor('rules', () => matcher.rules.get('mars') !== undefined);
    await io.events.publish(harnessEvent('workflow_started', { application: { id: 'pool-app' }, workflow: { id: 'w1', name: 'eu' } }));

    const log = await readLog(cluster, (entries) => entries.length >= 4);
    expect(Object.fromEntries(log.map((entry) => [entry.ruleId, [entry.outcome, entry.pool]]))).toEqual({
      any: ['delivered', 'default'],
      eu: ['delivered', 'eu'],
      'by-name': ['delivered', 'eu'],
      mars: ['failed', null],
    });
    expect(log.find((entry) => entry.ruleId === 'mars')!.error).toBe("no dispatcher pool has all of the tags [mars] (the rule's delegate selectors)");
    expect(target.received).toHaveLength(3);
  });
});
