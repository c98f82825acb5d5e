import { mkdir } from 'node:fs/promises';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCluster } from '../../services/common/setup.ts';
import { Dashboard } from '../../services/console/dashboard.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { startDispatcher, startReceiver, type Receiver } from '../dispatcher/fixtures.ts';
import { harnessEvent, shareringEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { testCluster, testLogger, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';

// Debian's chromium (apt-get install chromium); .ci/run installs it. CHROMIUM_PATH points elsewhere if needed.
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = new URL('../../test-artifacts/', import.meta.url);

describe('dashboard in headless Chromium', () => {
  const cluster = testCluster('dashboard', { RETRY_SCHEDULE: [60_000] });
  let io: Awaited<ReturnType<typeof writers>>;
  let matcher: Matcher;
  let dispatcher: Dispatcher;
  let dashboard: Dashboard;
  let browser: Browser;
  let ok: Receiver;
  let failing: Receiver;

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
    io = await writers(cluster);
    [ok, failing] = [await startReceiver('/ok'), await startReceiver('/failing')];
    failing.respond = () => 500;
    dashboard = new Dashboard(cluster, { groupId: `${cluster.TOPIC_PREFIX}console`, httpHost: '127.0.0.1', httpPort: 0 }, testLogger);
    await dashboard.start();
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await dispatcher?.stop();
    await matcher?.stop();
    await dashboard?.stop();
    await io?.close();
    await ok?.close();
    await failing?.close();
  });

  it('shows an empty state before any delivery, then the logs, charts, rules and filters', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(dashboard.url);
    await expect.poll(() => page.locator('#logs tbody').innerText()).toContain('No deliveries yet');
    expect(await page.locator('#rules tbody').innerText()).toContain('No rules yet');

    await io.rules.put(
      rule('orders', 'dash-app', { name: 'Orders hook', url: ok.url, eventTypes: ['workflow_completed'] }),
      rule('broken', 'dash-app', { name: 'Broken hook', url: failing.url, eventTypes: ['task_started'] }),
    );
    matcher = await startMatcher(cluster);
    dispatcher = await startDispatcher(cluster);
    await io.events.publish([
      harnessEvent('workflow_completed', { application: { id: 'dash-app' } }),
      harnessEvent('workflow_completed', { application: { id: 'dash-app' } }),
      shareringEvent('task_started', { application: { id: 'dash-app' } }),
    ]);
    await waitFor('deliveries', () => ok.received.length === 2 && failing.received.length === 1);

    const rows = page.locator('#logs tbody tr.attempt');
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(3);
    const table = await page.locator('#logs tbody').innerText();
    expect(table).toMatch(/workflow_completed\s+http:\/\/127\.0\.0\.1:\d+\/ok\s+delivered\s+200/);
    expect(table).toMatch(/task_started\s+http:\/\/127\.0\.0\.1:\d+\/failing\s+retrying\s+500/);
    expect(await page.locator('#rules tbody').innerText()).toMatch(/orders\s+Orders hook\s+dash-app\s+yes/);
    await expect.poll(() => page.locator('#attempts').innerText()).toBe('3');
    expect(await page.locator('#success-rate').innerText()).toBe('66.7 %');

    await page.selectOption('#filter-outcome', 'retrying');
    await expect.poll(() => rows.count()).toBe(1);
    await rows.first().click();
    await expect.poll(() => page.locator('#details-body').innerText()).toContain('"httpStatus": 500');
    await page.selectOption('#filter-outcome', '');
    await page.selectOption('#filter-rule', 'orders');
    await expect.poll(() => rows.count()).toBe(2);

    // The charts drew: Chart.js has data for both targets.
    const labels = await page.evaluate(() => (globalThis as unknown as { Chart: { getChart(id: string): { data: { labels: string[] } } } }).Chart.getChart('success-chart').data.labels);
    expect(labels).toEqual(expect.arrayContaining([expect.stringMatching(/^Orders hook → http/), expect.stringMatching(/^Broken hook → http/)]));

    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: new URL('dashboard.png', artifacts).pathname, fullPage: true });
  });
});
