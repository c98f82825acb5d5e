import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCluster } from '../../services/common/setup.ts';
import { createAddressGuard } from '../../services/common/ssrf.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { testCluster, testLogger, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import { readLog, startDispatcher, startReceiver, type Receiver } from './fixtures.ts';

describe('SSRF guard (on, with its default policy: public addresses only)', () => {
  it('refuses loopback literals, names that resolve to loopback and IPv4-mapped IPv6, without retrying', async () => {
    const cluster = testCluster('ssrf', { RETRY_SCHEDULE: [1000] });
    await prepareCluster(cluster, testLogger);
    const io = await writers(cluster);
    const target = await startReceiver();
    const port = new URL(target.url).port;
    const matcher = await startMatcher(cluster);
    const dispatcher = await startDispatcher(cluster, { allowNetworks: [] });
    try {
      await io.rules.put(
        rule('literal', 'ssrf-app', { url: target.url }),
        rule('by-name', 'ssrf-app', { url: `http://localhost:${port}/hook` }),
        rule('mapped', 'ssrf-app', { url: `http://[::ffff:127.0.0.1]:${port}/hook` }),
      );
      await waitFor('rules', () => matcher.rules.get('mapped') !== undefined);
      await io.events.publish(harnessEvent('workflow_started', { application: { id: 'ssrf-app' } }));
      const log = await readLog(cluster, (entries) => entries.length >= 3);
      expect(Object.fromEntries(log.map((entry) => [entry.ruleId, [entry.outcome, entry.error]]))).toEqual({
        literal: ['blocked', expect.stringContaining('127.0.0.1 is loopback')],
        'by-name': ['blocked', expect.stringMatching(/refused to connect to localhost: .* is loopback/)],
        mapped: ['blocked', expect.stringContaining('is ipv4Mapped')],
      });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(target.received).toHaveLength(0);
    } finally {
      await dispatcher.stop();
      await matcher.stop();
      await io.close();
      await target.close();
    }
  });

  it('allows exactly the configured ranges and hosts', async () => {
    const guard = createAddressGuard({ allow: ['127.0.0.2/32'] });
    await expect(guard.resolve('127.0.0.2')).resolves.toEqual({ address: '127.0.0.2', family: 4 });
    await expect(guard.resolve('127.0.0.1')).rejects.toThrow('127.0.0.1 is loopback');
    await expect(guard.resolve('[::1]')).rejects.toThrow('::1 is loopback');
    await expect(createAddressGuard({ allow: ['localhost'] }).resolve('localhost')).resolves.toMatchObject({ address: expect.stringMatching(/^(127\.0\.0\.1|::1)$/) });
  });
});

describe('isolation', () => {
  const cluster = testCluster('isolation', { RETRY_SCHEDULE: [1000, 30_000] });
  let pipeline: Pipeline;
  let io: Pipeline['io'];
  let matcher: Matcher;
  let healthy: Receiver;
  let hanging: Receiver;

  beforeAll(async () => {
    pipeline = await startPipeline(cluster, { attemptTimeoutMs: 5000, maxInFlight: 200, maxInFlightPerEndpoint: 5, maxWaitingPerEndpoint: 100, breakerFailures: 3 });
    ({ io, matcher } = pipeline);
    [healthy, hanging] = [await pipeline.receiver(), await pipeline.receiver()];
    hanging.respond = () => 'hang';
  });
  afterAll(() => pipeline?.stop());

  it('a hanging endpoint does not hold up deliveries to a healthy one', async () => {
    // Every event goes to both endpoints, so the hanging one's commands are interleaved with the healthy one's.
    await io.rules.put(rule('healthy', 'iso-app', { url: healthy.url }), rule('hanging', 'iso-app', { url: hanging.url }));
    await waitFor('rules', () => matcher.rules.get('hanging') !== undefined);
    const events = Array.from({ length: 200 }, (_, index) => harnessEvent('workflow_started', { application: { id: 'iso-app' }, workflowExecutionId: `run-${index}` }));
    const published = Date.now();
    await io.events.publish(events);
    // Every healthy delivery lands while the first requests to the hanging endpoint are still waiting for their timeout.
    await waitFor('all healthy deliveries', () => healthy.received.length === events.length, 5000);
    expect(Date.now() - published).toBeLessThan(5000);
    expect(hanging.received.length).toBeLessThanOrEqual(5);

    const log = await readLog(cluster, (entries) => entries.filter((entry) => entry.ruleId === 'hanging').length >= events.length - 5, 20_000);
    const deferred = log.filter((entry) => entry.ruleId === 'hanging' && entry.outcome === 'retrying');
    expect(deferred.some((entry) => /saturated|circuit breaker open/.test(entry.error ?? ''))).toBe(true);
    // A deferral says so, apart from a retry after a failed attempt: its cause, and nothing sent.
    for (const entry of deferred.filter((entry) => /saturated|circuit breaker open/.test(entry.error ?? ''))) {
      expect(entry).toMatchObject({ deferral: expect.stringMatching(/^(endpoint_saturated|breaker_open)$/), request: null, httpStatus: null });
    }
    await waitFor('timeouts logged', async () => (await readLog(cluster, (entries) => entries.some((entry) => entry.ruleId === 'hanging' && /timed out/.test(entry.error ?? '')), 20_000)).length > 0, 20_000);
  });
});
