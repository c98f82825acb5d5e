import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { createProducer, headerValue } from '../../services/common/kafka.ts';
import { poolGroupId } from '../../services/common/pools.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { poolTopics, retirementRefusal } from '../../services/operator/pool-retirement.ts';
import { drainRanges } from '../../services/operator/topic-ranges.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { readLog, startDispatcher, startReceiver, type Receiver } from '../dispatcher/fixtures.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { clusterEnv, readTopic, testCluster, testLogger, topicSize, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';

const run = promisify(execFile);
// A long first retry delay keeps the failed first attempts waiting in the pool's retry topic when it is retired.
const cluster = testCluster('retire', { RETRY_SCHEDULE: [60_000] });
const names = topicNames(cluster.TOPIC_PREFIX);
const cli = join(import.meta.dirname, '../../services/cli/rules-cli.ts');
// The pool's dispatchers use its default group (`<prefix>dispatcher.<pool>`, this file's own), as `pools list` and
// `pools retire` assume.
const pool = 'retiring';
const group = poolGroupId(names, pool);

async function rules(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: clusterEnv(cluster) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

let io: Awaited<ReturnType<typeof writers>>;
let matcher: Matcher;
let dispatcher: Dispatcher | undefined;
let receiver: Receiver;

beforeAll(async () => {
  await prepareCluster(cluster, testLogger, [pool]);
  io = await writers(cluster);
  receiver = await startReceiver();
  receiver.respond = () => 503;
  matcher = await startMatcher(cluster);
  dispatcher = await startDispatcher(cluster, { pool, tags: ['retiring'], groupId: group, maxAgeMs: 600_000 });
});
afterAll(async () => {
  await dispatcher?.stop();
  await matcher?.stop();
  await io?.close();
  await receiver?.close();
});

describe('commands routed to a retired pool: what is drained, and when retiring is refused', () => {
  it('drains each partition from the group\'s commit (or the oldest record kept) to the end, on the pool\'s own topics only', () => {
    const ends = [{ partition: 0, offset: '10', low: '0' }, { partition: 1, offset: '7', low: '5' }, { partition: 2, offset: '4', low: '0' }, { partition: 3, offset: '0', low: '0' }];
    expect(drainRanges('t', ends, [{ partition: 0, offset: '8' }, { partition: 1, offset: '2' }, { partition: 2, offset: '4' }, { partition: 3, offset: '-1' }])).toEqual([
      { topic: 't', partition: 0, from: 8n, to: 10n },
      { topic: 't', partition: 1, from: 5n, to: 7n },
    ]);
    expect(drainRanges('t', [{ partition: 0, offset: '3', low: '1' }], [{ partition: 0, offset: '-1' }])).toEqual([{ topic: 't', partition: 0, from: 1n, to: 3n }]);
    const plain = topicNames();
    expect(poolTopics(plain, 'eu', ['webhook-deliveries', 'webhook-deliveries.eu', 'webhook-deliveries.eu.retry.5s', 'webhook-deliveries.eu-2', 'webhook-deliveries.eu-2.retry.5s', 'webhook-deliveries.retry.5s', 'webhook-deliveries.dlq']))
      .toEqual(['webhook-deliveries.eu', 'webhook-deliveries.eu.retry.5s']);
  });
  it('refuses the default pool even with --force, an unknown pool, and live members unless --force', () => {
    const state = { pool: 'eu', announcement: { pool: 'eu', tags: [], updatedAt: 1, allowNetworks: null }, topics: ['webhook-deliveries.eu'], group: 'dispatcher.eu', members: 0 };
    expect(retirementRefusal({ ...state, pool: 'default' }, true)).toMatch(/default pool cannot be retired/);
    expect(retirementRefusal({ ...state, announcement: undefined, topics: [] }, true)).toBe('no pool "eu": it has no announcement and no command topic');
    expect(retirementRefusal({ ...state, members: 2 }, false)).toMatch(/^2 dispatcher\(s\) of pool "eu" are still members of consumer group dispatcher\.eu: stop them first/);
    expect(retirementRefusal({ ...state, members: 2 }, true)).toBeUndefined();
    expect(retirementRefusal({ ...state, announcement: undefined }, false)).toBeUndefined();
  });
});

describe('commands routed to a retired pool', () => {
  it('commands routed to a retired pool: are dead-lettered pool-retired with a log record, the matcher stops routing to it, default is refused, a second retire drains nothing', async () => {
    const publish = (count: number) => Promise.all(Array.from({ length: count }, () =>
      io.events.publish(harnessEvent('workflow_started', { application: { id: 'retire-app' } }))));
    await waitFor('pool announced', () => matcher.pools.get(pool) !== undefined);
    await io.rules.put(rule('via-pool', 'retire-app', { url: receiver.url, delegateSelectors: ['retiring'] }));
    await waitFor('rule', () => matcher.rules.get('via-pool') !== undefined);

    // Three commands tried once (503) and waiting a minute in the pool's retry topic...
    await publish(3);
    await readLog(cluster, (entries) => new Set(entries.filter((entry) => entry.outcome === 'retrying').map((entry) => entry.deliveryId)).size === 3);
    expect(await topicSize(cluster, names.retry(60_000, pool))).toBeGreaterThanOrEqual(3);

    const listed = (await rules('pools', 'list')).stdout.trim().split('\n');
    expect(listed[0]).toMatch(/^POOL\s+TAGS\s+ANNOUNCED\s+GROUP\s+MEMBERS$/);
    expect(listed.find((line) => line.startsWith(`${pool} `))).toMatch(new RegExp(`^${pool}\\s+retiring\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+${group.replaceAll('.', '\\.')}\\s+1$`));
    const live = await rules('pools', 'retire', pool);
    expect(live.code).toBe(1);
    expect(live.stderr).toContain(`1 dispatcher(s) of pool "${pool}" are still members of consumer group ${group}: stop them first`);

    // ...then its dispatchers stop for good; two more commands and an undecodable record land in its command topic.
    await dispatcher!.stop();
    dispatcher = undefined;
    await publish(2);
    const producer = createProducer(io.kafka);
    await producer.connect();
    await producer.send({ topic: names.deliveries(pool), acks: -1, messages: [{ key: 'via-pool', value: Buffer.from('not avro') }] });
    await producer.disconnect();
    await waitFor('commands in the pool topic', async () => await topicSize(cluster, names.deliveries(pool)) >= 6);
    // At-least-once: under load a command can be written twice (a redelivered event or command), so the drain may
    // count more than six records; the deliveries are judged by their distinct ids.
    const commandsQueued = await topicSize(cluster, names.deliveries(pool));
    expect((await rules('pools', 'list')).stdout).toMatch(new RegExp(`^${pool}\\s+retiring\\s+\\S+\\s+${group.replaceAll('.', '\\.')}\\s+none \\(stopped\\?\\)$`, 'm'));

    const refused = await rules('pools', 'retire', 'default', '--force');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('pool default not retired: the default pool cannot be retired');

    const retired = await rules('pools', 'retire', pool);
    expect(retired.code, retired.stderr).toBe(0);
    const queued = Number(/dead-lettered (\d+) command/.exec(retired.stdout)?.[1]);
    expect(queued).toBeGreaterThanOrEqual(6);
    expect(retired.stdout.trim()).toBe(`pool ${pool} retired: matchers no longer route to it; dead-lettered ${queued} command(s) (1 undecodable, kept with their decode reason) `
      + `from 2 topic(s) to ${names.deliveriesDlq} as pool-retired; resend them through another pool with \`npm run rules -- dlq replay --all --reason pool-retired\``);

    const dead = await readTopic(cluster, names.deliveriesDlq, queued);
    const reasons = dead.map((record) => headerValue(record.headers, DLQ_HEADERS.reason)).sort();
    expect(reasons).toEqual(['not-wire-format', ...Array<string>(queued - 1).fill('pool-retired')]);
    const deadIds = [...new Set(dead.flatMap((record) => headerValue(record.headers, DLQ_HEADERS.reason) === 'pool-retired' ? [headerValue(record.headers, 'delivery-id')] : []))].sort();
    expect(deadIds).toHaveLength(5);
    expect(new Set(dead.map((record) => headerValue(record.headers, DLQ_HEADERS.topic)))).toEqual(new Set([names.deliveries(pool), names.retry(60_000, pool)]));

    // Every delivery ended visibly: one dead_lettered record each, for exactly the dead-lettered ids.
    const log = await readLog(cluster, (entries) => new Set(entries.filter((entry) => entry.outcome === 'dead_lettered').map((entry) => entry.deliveryId)).size >= 5);
    const ended = log.filter((entry) => entry.outcome === 'dead_lettered');
    expect([...new Set(ended.map((entry) => entry.deliveryId))].sort()).toEqual(deadIds);
    for (const entry of ended) {
      expect(entry).toMatchObject({ pool, ruleId: 'via-pool', ruleName: 'rule via-pool', error: `pool "${pool}" was retired before this delivery ended; replay it through another pool` });
    }

    // The matcher applied the tombstone: a new event gets a failed "no pool" record instead of a command.
    await waitFor('pool removed from the matcher', () => matcher.pools.get(pool) === undefined);
    await publish(1);
    const after = await readLog(cluster, (entries) => entries.some((entry) => entry.outcome === 'failed'));
    expect(after.find((entry) => entry.outcome === 'failed')).toMatchObject({ ruleId: 'via-pool', pool: null, error: "no dispatcher pool has all of the tags [retiring] (the rule's delegate selectors)" });
    expect(await topicSize(cluster, names.deliveries(pool))).toBe(commandsQueued);

    const again = await rules('pools', 'retire', pool);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`pool ${pool} was already retired; dead-lettered 0 command(s)`);
    expect(await topicSize(cluster, names.deliveriesDlq)).toBe(queued);
  });
});
