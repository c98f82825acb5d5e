/**
 * Issue 24, item 7 and its reproduction: two installs (TOPIC_PREFIX) share one cluster. Consumer groups are as
 * cluster-wide as topics, so they must carry the prefix too, and two installs (or `npm start` and `npm run setup`)
 * preparing the cluster at the same moment must both succeed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { baseSettings, loadConfig } from '../../services/common/config.ts';
import { createKafka, kafkaConnection } from '../../services/common/kafka.ts';
import { poolGroupId } from '../../services/common/pools.ts';
import { prepareCluster, type ClusterConfig } from '../../services/common/setup.ts';
import { ensureTopics, topicNames, topicSpecs } from '../../services/common/topics.ts';
import { consoleGroupId, consoleSettings } from '../../services/console/main.ts';
import { dispatcherGroupId, dispatcherSettings } from '../../services/dispatcher/main.ts';
import { matcherGroupId, matcherSettings } from '../../services/matcher/main.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { clusterEnv, testCluster, testLogger, waitFor } from '../helpers.ts';
import { writers } from '../matcher/fixtures.ts';
import { startReceiver, type Receiver } from '../dispatcher/fixtures.ts';

const service = (name: string) => new URL(`../../services/${name}/main.ts`, import.meta.url).pathname;

describe('installs share a cluster safely (issue 24, item 7)', () => {
  it('derives every group id from TOPIC_PREFIX unless one is set', () => {
    const config = (env: NodeJS.ProcessEnv) => loadConfig({ ...baseSettings, ...matcherSettings, ...dispatcherSettings, ...consoleSettings }, env);

    const staging = config({ TOPIC_PREFIX: 'staging.' });
    expect([matcherGroupId(staging), dispatcherGroupId(staging), consoleGroupId(staging)]).toEqual(['staging.matcher', 'staging.dispatcher', 'staging.console']);
    expect(dispatcherGroupId(config({ TOPIC_PREFIX: 'staging.', DISPATCHER_POOL: 'eu' }))).toBe('staging.dispatcher.eu');
    expect(poolGroupId(topicNames('staging.'), 'eu')).toBe('staging.dispatcher.eu');
    expect(topicNames('staging.').group('rules-cli')).toBe('staging.rules-cli');

    // Without a prefix, the names an install always had: upgrading one that never set TOPIC_PREFIX changes nothing.
    const plain = config({});
    expect([matcherGroupId(plain), dispatcherGroupId(plain), consoleGroupId(plain)]).toEqual(['matcher', 'dispatcher', 'console']);

    // An explicit setting wins over the derivation.
    const overridden = config({ TOPIC_PREFIX: 'staging.', MATCHER_GROUP_ID: 'm', DISPATCHER_GROUP_ID: 'd', CONSOLE_GROUP_ID: 'c' });
    expect([matcherGroupId(overridden), dispatcherGroupId(overridden), consoleGroupId(overridden)]).toEqual(['m', 'd', 'c']);
  });

  it('concurrent prepareCluster of the same prefix: both callers succeed, every topic has its leaders', { timeout: 120_000 }, async () => {
    // Several rounds, each on a fresh prefix, so the two callers race on creating the same topics more than once.
    for (let round = 0; round < 4; round += 1) {
      const cluster = testCluster(`race${round}`);
      const results = await Promise.allSettled([prepareCluster(cluster, testLogger), prepareCluster(cluster, testLogger)]);
      expect(results.map((result) => (result.status === 'rejected' ? String(result.reason) : 'ok'))).toEqual(['ok', 'ok']);
      const { topics } = (results[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof prepareCluster>>>).value;
      expect(await leaderless(cluster, topics)).toEqual([]);
    }
  });

  it('concurrent topic creation: callers whose clients are already connected race closest, and all succeed', { timeout: 120_000 }, async () => {
    for (let round = 0; round < 6; round += 1) {
      const cluster = testCluster(`create${round}`);
      const specs = topicSpecs({ prefix: cluster.TOPIC_PREFIX, partitions: cluster.TOPIC_PARTITIONS, retryDelaysMs: cluster.RETRY_SCHEDULE });
      const admins = [1, 2, 3].map(() => createKafka({ ...kafkaConnection(cluster), clientId: 'test-installs', logger: testLogger }).admin());
      await Promise.all(admins.map((admin) => admin.connect()));
      try {
        const results = await Promise.allSettled(admins.map((admin) => ensureTopics(admin, specs)));
        expect(results.map((result) => (result.status === 'rejected' ? String(result.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
      } finally {
        await Promise.all(admins.map((admin) => admin.disconnect()));
      }
      expect(await leaderless(cluster, specs.map((spec) => spec.name))).toEqual([]);
    }
  });

  it('a real failure to create the topics is one line saying what to do, from npm run setup and npm start', { timeout: 60_000 }, async () => {
    // Longer than Kafka's 249-character limit on topic names: refused by the broker, not retriable.
    const env = clusterEnv(testCluster('refused'), { TOPIC_PREFIX: `${'x'.repeat(240)}.`, LOG_FORMAT: 'json' });
    for (const [script, path] of [['setup', '../../services/cli/setup.ts'], ['start', '../../local/start.ts']]) {
      const { code, stderr } = await run(new URL(path!, import.meta.url).pathname, env);
      expect(code, script).toBe(1);
      expect(stderr.trim().split('\n'), script).toEqual([expect.stringMatching(/^error: creating the topics of TOPIC_PREFIX "x+\." on \S+ failed: .*invalid topic.*; check that the brokers are up and this client may create topics, then run `npm run setup` again/i)]);
    }
  });
});

/** Runs a script to its end: its exit code and what it wrote on stderr. */
function run(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}

/** The partitions of `topics` without a leader right now (none, once a cluster is prepared). */
async function leaderless(cluster: ClusterConfig, topics: string[]): Promise<string[]> {
  const admin = createKafka({ ...kafkaConnection(cluster), clientId: 'test-installs', logger: testLogger }).admin();
  await admin.connect();
  try {
    const metadata = await admin.fetchTopicMetadata({ topics });
    return metadata.topics.flatMap(({ name, partitions }) => partitions.filter((partition) => partition.leader < 0).map((partition) => `${name}:${partition.partitionId}`));
  } finally {
    await admin.disconnect();
  }
}

/** One install as `npm start` runs it: a matcher and a dispatcher process with no group id set. */
function startInstall(cluster: ClusterConfig, log: string[]): ChildProcess[] {
  const env = clusterEnv(cluster, {
    RETRY_SCHEDULE: cluster.RETRY_SCHEDULE.map((ms) => `${ms}ms`).join(','),
    MATCHER_GROUP_ID: '', DISPATCHER_GROUP_ID: '',
    MATCHER_HTTP_PORT: '0', DISPATCHER_HTTP_PORT: '0',
    DISPATCHER_ALLOW_NETWORKS: '127.0.0.0/8',
    LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
  });
  return ['matcher', 'dispatcher'].map((name) => {
    const child = spawn(process.execPath, [service(name)], { stdio: ['ignore', 'pipe', 'pipe'], env });
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => log.push(`${cluster.TOPIC_PREFIX}${name}: ${chunk.toString()}`));
    return child;
  });
}

describe('two installs on one cluster (issue 24 reproduction)', () => {
  it('each install delivers all of its own events to its own receiver, with the default group ids', { timeout: 150_000 }, async () => {
    const installs = [testCluster('staging'), testCluster('production')];
    const log: string[] = [];
    const children: ChildProcess[] = [];
    const receivers: Receiver[] = [];
    const ios: Array<Awaited<ReturnType<typeof writers>>> = [];
    try {
      const events = new Map<string, string[]>();
      for (const [index, cluster] of installs.entries()) {
        await prepareCluster(cluster, testLogger);
        const io = await writers(cluster);
        ios.push(io);
        const receiver = await startReceiver();
        receivers.push(receiver);
        // The same application and rule id in both installs: only the install (prefix) tells them apart.
        await io.rules.put(rule('hook', 'shared-app', { url: receiver.url }));
        children.push(...startInstall(cluster, log));
        const batch = Array.from({ length: 20 }, (_, n) => harnessEvent('workflow_started', { application: { id: 'shared-app' }, workflowExecutionId: `install-${index}-run-${n}` }));
        events.set(cluster.TOPIC_PREFIX, batch.map((event) => event.eventId));
        await io.events.publish(batch);
      }
      const delivered = (receiver: Receiver) => new Set(receiver.received.map((request) => JSON.parse(request.body).data.eventId as string));
      await waitFor('every event of both installs delivered', () => receivers.every((receiver) => delivered(receiver).size >= 20), 90_000).catch((error: Error) => {
        throw new Error(`${error.message}: delivered ${receivers.map((receiver) => delivered(receiver).size).join(' and ')} of 20 each; services' log:\n${log.join('').slice(-4000)}`);
      });
      for (const [index, cluster] of installs.entries()) expect(delivered(receivers[index]!)).toEqual(new Set(events.get(cluster.TOPIC_PREFIX)));
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all([...ios.map((io) => io.close()), ...receivers.map((receiver) => receiver.close())]);
    }
  });
});
