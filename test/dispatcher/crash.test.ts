import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { prepareCluster } from '../../services/common/setup.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { clusterEnv, testCluster, testLogger, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';
import { startReceiver } from './fixtures.ts';

const cluster = testCluster('crash', { RETRY_SCHEDULE: [1000] });
const script = new URL('../../services/dispatcher/main.ts', import.meta.url).pathname;

/** The children's warnings and errors, printed when the test fails. */
const childLog: string[] = [];

function dispatcherProcess(): ChildProcess {
  const child = spawn(process.execPath, [script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: clusterEnv(cluster, {
      RETRY_SCHEDULE: '1s',
      DISPATCHER_GROUP_ID: `${cluster.TOPIC_PREFIX}dispatcher`,
      DISPATCHER_HTTP_PORT: '0',
      DISPATCHER_ALLOW_NETWORKS: '127.0.0.0/8',
      LOG_LEVEL: 'warn',
    }),
  });
  for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => childLog.push(chunk.toString()));
  return child;
}

describe('dispatcher crash', () => {
  it('kill -9 mid-run, restart: every event is delivered at least once, duplicates keep their webhook-id', { timeout: 120_000 }, async () => {
    await prepareCluster(cluster, testLogger);
    const io = await writers(cluster);
    const receiver = await startReceiver();
    const matcher = await startMatcher(cluster);
    let child = dispatcherProcess();
    try {
      await io.rules.put(rule('crash', 'crash-app', { url: receiver.url }));
      await waitFor('rule', () => matcher.rules.get('crash') !== undefined);
      const events = Array.from({ length: 600 }, (_, index) => harnessEvent('workflow_started', { application: { id: 'crash-app' }, workflowExecutionId: `run-${index}` }));
      for (let index = 0; index < events.length; index += 50) await io.events.publish(events.slice(index, index + 50));

      await waitFor('deliveries under way', () => receiver.received.length >= 50, 30_000);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const atKill = receiver.received.length;
      child = dispatcherProcess();

      const ids = () => new Set(receiver.received.map((request) => request.headers['webhook-id']));
      await waitFor('every event delivered', () => ids().size === events.length, 60_000).catch((error: Error) => {
        throw new Error(`${error.message}: ${ids().size} of ${events.length} delivered; dispatcher log:\n${childLog.join('').slice(-4000)}`);
      });
      expect(atKill).toBeLessThan(events.length); // the kill really happened mid-run
      const bodies = new Set(receiver.received.map((request) => JSON.parse(request.body).data.eventId as string));
      expect(bodies).toEqual(new Set(events.map((event) => event.eventId)));
    } finally {
      child.kill('SIGKILL');
      await matcher.stop();
      await io.close();
      await receiver.close();
    }
  });
});
