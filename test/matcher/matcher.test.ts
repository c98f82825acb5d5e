import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { deliveryId } from '../../services/common/delivery-id.ts';
import { headerValue } from '../../services/common/kafka.ts';
import { keyPartition } from '../../services/common/murmur2.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessApp, harnessEvent, harnessPipeline, harnessTypes, shareringApp, shareringEvent, shareringTypes } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { decodeAll, metricValue, readTopic, testCluster, testLogger, topicSize, waitFor } from '../helpers.ts';
import { readCommands, startMatcher, writers } from './fixtures.ts';

describe('matcher against the real stack', () => {
  const cluster = testCluster('matcher');
  const topics = topicNames(cluster.TOPIC_PREFIX);
  let io: Awaited<ReturnType<typeof writers>>;
  let matcher: Matcher | undefined;

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
    io = await writers(cluster);
  });
  afterAll(async () => {
    await matcher?.stop();
    await io?.close();
  });

  it('matches events published before it started against the rules that existed then, seed by seed', async () => {
    await io.rules.put(
      rule('h-all', harnessApp.id),
      rule('h-pipeline-end', harnessApp.id, { scope: { kind: 'pipelines', ids: [harnessPipeline.id] }, eventTypes: ['pipeline_completed'] }),
      rule('h-disabled', harnessApp.id, { enabled: false }),
      rule('s-tasks', shareringApp.id, { scope: { kind: 'workflows', ids: null }, eventTypes: ['task_started', 'task_completed', 'task_cancelled'] }),
    );
    const harness = harnessTypes.map((type) => harnessEvent(type));
    const sharering = shareringTypes.map((type) => shareringEvent(type));
    await io.events.publish([...harness, ...sharering]);

    matcher = await startMatcher(cluster);
    expect(matcher.notReadyReason()).toBeUndefined();
    const expected = [
      ...harness.map((event) => `${event.eventId}→h-all`),
      `${harness.find((event) => event.type === 'pipeline_completed')!.eventId}→h-pipeline-end`,
      ...sharering.filter((event) => event.type.startsWith('task_')).map((event) => `${event.eventId}→s-tasks`),
    ].sort();
    const { pairs, commands } = await readCommands(cluster, expected.length);
    expect(pairs).toEqual(expected);
    for (const command of commands) {
      expect(command).toMatchObject({ attempt: 1, deliveryId: deliveryId(command.event.eventId, command.ruleId) });
    }
    await waitFor('events counted', async () => (await metricValue(matcher!.metrics, 'matcher_events_done_total')) === harness.length + sharering.length);
    expect(await topicSize(cluster, topics.deliveries())).toBe(expected.length);
  });

  it('serves /healthz, /readyz and Prometheus /metrics on loopback', async () => {
    const base = `http://127.0.0.1:${matcher!.opsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('matcher_rules{state="all",service="matcher"} 4');
    expect(metrics).toContain('matcher_rules{state="enabled",service="matcher"} 3');
    expect(metrics).toMatch(/matcher_commands_out_total\{service="matcher"\} 12/);
    expect(metrics).toMatch(/matcher_consumer_lag\{partition="\d",service="matcher"\} 0/);
    expect(metrics).toContain('process_resident_memory_bytes');
  });

  it('applies enable, disable, update and delete while running', async () => {
    const count = async () => topicSize(cluster, topics.deliveries());
    // Done, not just read: a command is counted once Kafka acknowledged it, so the topic's size is final.
    const processed = async (n: number) => waitFor(`${n} events processed`, async () => (await metricValue(matcher!.metrics, 'matcher_events_done_total')) >= n);
    let seen = await metricValue(matcher!.metrics, 'matcher_events_done_total');
    const send = async (type: Parameters<typeof shareringEvent>[0]) => {
      await io.events.publish(shareringEvent(type, { application: { id: 'live-app' } }));
      await processed(++seen);
    };
    const before = await count();

    await io.rules.put(rule('live', 'live-app', { enabled: false }));
    await waitFor('rule in table', () => matcher!.rules.get('live') !== undefined);
    await send('workflow_started');
    expect(await count()).toBe(before);

    await io.rules.put(rule('live', 'live-app', { eventTypes: ['workflow_started'] }));
    await waitFor('rule enabled', () => matcher!.rules.get('live')?.enabled === true);
    await send('workflow_started');
    expect(await count()).toBe(before + 1);
    await send('workflow_completed');
    expect(await count()).toBe(before + 1);

    const enabledAt = matcher!.rules.get('live')!.offset;
    await io.rules.put(rule('live', 'live-app', { eventTypes: ['workflow_completed'] }));
    await waitFor('rule updated', () => matcher!.rules.get('live')!.offset > enabledAt);
    await send('workflow_completed');
    expect(await count()).toBe(before + 2);

    // The matcher keeps only what matching and routing need, never a secret.
    expect(JSON.stringify(matcher!.rules.get('live'))).not.toContain('whsec_');

    await io.rules.delete('live');
    await waitFor('rule deleted', () => matcher!.rules.get('live') === undefined);
    await send('workflow_completed');
    expect(await count()).toBe(before + 2);

    // Each command names the version of the rule it matched: the second and third of the rule's messages, in its partition.
    const { commands } = await readCommands(cluster, before + 2);
    const versions = commands.filter((command) => command.ruleId === 'live').map((command) => command.ruleVersion!).sort((a, b) => a.offset - b.offset);
    const partition = keyPartition(Buffer.from('live'), cluster.TOPIC_PARTITIONS);
    expect(versions).toEqual([{ partition, offset: versions[0]!.offset }, { partition, offset: versions[0]!.offset + 1 }]);
  });

  it("keys commands by their endpoint: two rules of one endpoint share its partition, another endpoint's rule gets its own key", async () => {
    const endpoint = 'https://hooks.example.com';
    await io.rules.put(rule('busy', 'spread-app', { url: `${endpoint}/a` }), rule('paced', 'spread-app', { url: `${endpoint}/b?x=1`, rateLimitPerSecond: 50 }), rule('other', 'spread-app', { url: 'https://other.example.com:8443/in' }));
    await waitFor('rules in table', () => ['busy', 'paced', 'other'].every((id) => matcher!.rules.get(id) !== undefined));
    const events = Array.from({ length: 12 }, () => shareringEvent('task_completed', { application: { id: 'spread-app' } }));
    await io.events.publish(events);
    const ids = new Set(events.flatMap((event) => ['busy', 'paced', 'other'].map((ruleId) => deliveryId(event.eventId, ruleId))));
    const records = await readTopic(cluster, topics.deliveries(), (received) => received.filter((record) => ids.has(headerValue(record.headers, 'delivery-id')!)).length >= ids.size);
    const mine = records.filter((record) => ids.has(headerValue(record.headers, 'delivery-id')!));
    const commands = await decodeAll(cluster, contracts.deliveryCommand, mine);
    const keysOf = (ruleId: string) => new Set(mine.filter((_, index) => commands[index]!.ruleId === ruleId).map((record) => record.key!.toString()));
    // One key (so one partition in every command and retry topic) per endpoint, whatever the rule or its path.
    expect(keysOf('busy')).toEqual(new Set([endpoint]));
    expect(keysOf('paced')).toEqual(new Set([endpoint]));
    expect(keysOf('other')).toEqual(new Set(['https://other.example.com:8443']));
  });
});

describe('matcher restarts', () => {
  const cluster = testCluster('matcher-restart');
  it('loses no command when restarted in the middle of a stream, and a clean stop commits all it handled', async () => {
    await prepareCluster(cluster, testLogger);
    const io = await writers(cluster);
    try {
      await io.rules.put(rule('a', harnessApp.id), rule('b', harnessApp.id, { eventTypes: ['workflow_started'] }));
      const events = Array.from({ length: 400 }, (_, index) => harnessEvent('workflow_started', { workflowExecutionId: `run-${index}` }));
      const first = await startMatcher(cluster);
      const publishing = (async () => {
        for (let index = 0; index < events.length; index += 20) await io.events.publish(events.slice(index, index + 20));
      })();
      await waitFor('some commands', async () => (await topicSize(cluster, topicNames(cluster.TOPIC_PREFIX).deliveries())) >= 100);
      await first.stop();
      await publishing;
      const second = await startMatcher(cluster);
      try {
        const expected = events.flatMap((event) => [`${event.eventId}→a`, `${event.eventId}→b`]).sort();
        const { pairs } = await readCommands(cluster, expected.length);
        expect([...new Set(pairs)].sort()).toEqual(expected);
        // The first one committed every event it had handled before leaving: the second re-emitted none of them.
        expect(await topicSize(cluster, topicNames(cluster.TOPIC_PREFIX).deliveries())).toBe(expected.length);
      } finally {
        await second.stop();
      }
    } finally {
      await io.close();
    }
  });
});
