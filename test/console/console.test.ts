import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { createProducer } from '../../services/common/kafka.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { Console } from '../../services/console/console.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import { startDispatcher, startReceiver, type Receiver } from '../dispatcher/fixtures.ts';
import { engineContext, engineSpan, within } from '../fixtures/engine-trace.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { testCluster, testLogger, topicSize, valid, waitFor } from '../helpers.ts';
import { startMatcher, writers } from '../matcher/fixtures.ts';
import { verifiesV1a } from '../fixtures/v1a.ts';
import { createCa, issueCertificate } from '../../stack/tls.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';

// Debian's chromium (apt-get install chromium); .ci/run installs it. CHROMIUM_PATH points elsewhere if needed.
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = new URL('../../test-artifacts/', import.meta.url);
const TOKEN = 'console-test-token-0123456789';

describe('console in headless Chromium', () => {
  const cluster = testCluster('console', { RETRY_SCHEDULE: [500] });
  const rulesTopic = topicNames(cluster.TOPIC_PREFIX).eventRules;
  let console_: Console;
  let dispatcher: Dispatcher;
  let matcher: Matcher;
  let browser: Browser;
  let receiver: Receiver;
  let page: Page;
  const verified: string[] = [];
  let secret = '';

  const screenshot = (name: string) => page.screenshot({ path: new URL(name, artifacts).pathname, fullPage: true });
  const api = (path: string, init: RequestInit = {}) => fetch(new URL(path, console_.url), init);

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
    receiver = await startReceiver('/hooks/deploys');
    // The receiver verifies every request with a Standard Webhooks library and the secret the page showed.
    receiver.respond = (_, request) => {
      new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
      verified.push(String(request.headers['webhook-id']));
      return { status: 200, headers: { 'x-receiver': 'console-test' } };
    };
    console_ = new Console(cluster, { groupId: `${cluster.TOPIC_PREFIX}console`, httpHost: '127.0.0.1', httpPort: 0, adminToken: TOKEN, testTimeoutMs: 20_000, dataDir: await mkdtemp(join(tmpdir(), 'console-history-')) }, testLogger);
    await console_.start();
    dispatcher = await startDispatcher(cluster);
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await mkdir(artifacts, { recursive: true });
    return engineContext();
  });
  afterAll(async () => {
    await browser?.close();
    await matcher?.stop();
    await dispatcher?.stop();
    await console_?.stop();
    await receiver?.close();
  });

  it('answers nothing but the login page and /healthz without a session', async () => {
    expect((await api('/healthz')).status).toBe(200);
    expect((await api('/login')).status).toBe(200);
    const home = await api('/', { redirect: 'manual' });
    expect(home.status).toBe(303);
    expect(home.headers.get('location')).toBe('/login');
    for (const route of console_.apiRoutes) {
      const [method, path] = route.split(' ') as [string, string];
      if (method === 'POST' && path === '/api/session') continue;
      const response = await api(path.replace(/\{\w+\}/g, 'x'), { method, headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
      expect(response.status, route).toBe(401);
    }
    for (const path of ['/metrics', '/readyz', '/assets/app.js', '/api/openapi.json']) expect((await api(path, { redirect: 'manual' })).status, path).toBeOneOf([401, 303]);
    // Scripts use the token itself.
    expect((await api('/api/rules', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await api('/api/rules', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
  });

  it('describes every API route in /api/openapi.json, from the schemas fastify validates by', async () => {
    const document = await (await api('/api/openapi.json', { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>; components: { schemas: Record<string, unknown> } };
    expect(document.openapi).toBe('3.1.0');
    const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual([...console_.apiRoutes].sort());
    expect(Object.keys(document.components.schemas)).toEqual(expect.arrayContaining(['Rule', 'SavedRule', 'Attempt', 'Error', 'Invalid']));
    expect(document.paths['/api/rules']!.post!.requestBody).toBeDefined();
    for (const [route, methods] of Object.entries(document.paths)) for (const [method, operation] of Object.entries(methods)) expect(Object.keys(operation.responses), `${method} ${route}`).not.toHaveLength(0);
    // What the document says is what is checked: a body of the wrong type is refused, field named, nothing written.
    const bearer = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const wrongType = await api('/api/rules', { method: 'POST', headers: bearer, body: JSON.stringify({ name: 'typed', application: 'a', url: 'https://hooks.example.com/x', scope: { kind: 'everything', ids: null }, enabled: 'yes' }) });
    expect(wrongType.status).toBe(422);
    expect(await wrongType.json()).toMatchObject({ issues: [{ field: 'enabled', reason: 'must be boolean' }] });
    expect([...console_.rules.values()].some((rule) => rule.name === 'typed')).toBe(false);
    const badLimit = await api('/api/logs?limit=5000', { headers: bearer });
    expect(badLimit.status).toBe(400);
    expect(await badLimit.json()).toMatchObject({ issues: [{ field: 'limit', reason: 'must be <= 1000' }] });
  });

  it('refuses a write without the CSRF token, and slows down a wrong token without locking the right one out', async () => {
    const login = await api('/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    expect(login.status).toBe(201);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/console_session=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Strict/);
    const session = cookie.split(';')[0]!;
    const { csrfToken } = await login.json() as { csrfToken: string };
    const create = (headers: Record<string, string>) => api('/api/rules', { method: 'POST', headers: { cookie: session, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'x', application: 'a', url: 'https://example.com/x', scope: { kind: 'everything', ids: null } }) });
    expect((await create({})).status).toBe(403);
    expect((await create({ 'x-csrf-token': 'forged' })).status).toBe(403);
    expect((await api('/api/rules', { headers: { cookie: session } })).status).toBe(200);
    // With the token the write is heard (and refused for what it is).
    expect((await api('/api/rules/nope/enable', { method: 'POST', headers: { cookie: session, 'x-csrf-token': csrfToken } })).status).toBe(404);
    expect(await topicSize(cluster, rulesTopic)).toBe(0);

    const attempt = (token: string) => api('/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    const started = Date.now();
    for (let index = 0; index < 5; index += 1) expect((await attempt('guess')).status).toBe(401);
    expect(Date.now() - started).toBeGreaterThanOrEqual(5 * 450);
    // Five wrong tokens from this address do not lock the right one out (test/console/auth.test.ts has the rest).
    expect((await attempt(TOKEN)).status).toBe(201);
  });

  it('logs in, adds a rule (disabled), tests it before it goes live, finds the attempt in the logs, switches it on, edits, rotates and deletes it', async () => {
    await page.goto(console_.url);
    expect(page.url()).toMatch(/\/login$/);
    await screenshot('console-login.png');
    await page.fill('#token', 'not the token');
    await page.click('#sign-in');
    await expect.poll(() => page.locator('#login-error').innerText()).toContain('not right');
    await page.fill('#token', TOKEN);
    await page.click('#sign-in');
    await page.waitForURL(/\/$|#\//);
    await expect.poll(() => page.locator('#rules tbody').innerText()).toContain('No event rules yet');

    // A bad URL: the error sits beside the URL field and nothing is published.
    await page.click('#add-rule');
    await page.fill('#rule-name', 'Production deploys');
    await page.fill('#rule-application', 'console-app');
    await page.check('input[name=scope-kind][value=workflows]');
    await page.uncheck('#scope-all');
    await page.fill('#rule-scope-ids', 'wf-1, wf-2');
    await page.uncheck('#events-all');
    await page.check('.checks input[value=workflow_completed]');
    await page.fill('#rule-url', 'ftp://nope');
    await page.click('#save-rule');
    await expect.poll(() => page.locator('.field[data-field=url] .error').innerText()).toMatch(/must be an absolute http\(s\) URL/i);
    expect(await page.locator('.field[data-field=name] .error').isHidden()).toBe(true);
    await screenshot('console-rule-form-error.png');
    expect(await topicSize(cluster, rulesTopic)).toBe(0);

    await page.fill('#rule-url', receiver.url);
    await page.click('#header-rows + button');
    await page.locator('.header-name').fill('X-Team');
    await page.locator('.header-value').fill('deployments');
    await page.click('#save-rule');
    secret = await page.locator('#secret-value').innerText();
    expect(secret).toMatch(/^whsec_/);
    await screenshot('console-secret-once.png');
    await page.click('#secret-done');
    const row = page.locator('#rules tbody tr').first();
    await expect.poll(() => row.innerText()).toContain('Production deploys');
    expect(await row.locator('input[type=checkbox]').isChecked()).toBe(false);
    const ruleId = await row.getAttribute('data-rule-id');
    // The secret is never served again, nor a header value: header names come with the mask.
    const served = await (await page.request.get(`${console_.url}api/rules/${ruleId}`)).text();
    expect(served).not.toContain(secret.slice(6));
    expect(served).not.toContain('deployments');
    expect(JSON.parse(served)).toMatchObject({ headers: { 'X-Team': '[redacted]' } });


    // A new rule is off, and can be tried before it goes live: Test sends its sample anyway, and says so.
    await row.getByRole('button', { name: 'Test' }).click();
    expect(await page.locator('.modal').innerText()).toContain('The rule is disabled: a Test goes out anyway');
    await expect.poll(() => page.locator('#test-result').innerText(), { timeout: 25_000 }).toMatch(/Delivered[\s\S]*HTTP status\s+200/);
    expect(verified).toHaveLength(1);
    await screenshot('console-test-result.png');
    const deliveryId = await page.locator('#test-result').getAttribute('data-delivery-id');

    // Webhook logs: the attempt, its details, and the filters.
    await page.getByRole('button', { name: 'Open in Webhook logs' }).click();
    await expect.poll(() => page.locator('#logs tbody tr.attempt').count()).toBe(1);
    expect(await page.locator('#log-window').innerText()).toMatch(/^The history holds \d+ attempts? since .+ \([\d.]+ [kM]?B on disk\)\. It keeps 30 days of attempts, up to 10 GB\.$/);
    expect(await page.locator('#log-count').innerText()).toBe('1–1 of 1 attempt');
    await page.locator('#logs tbody tr.attempt').first().click();
    await expect.poll(() => page.locator('.drawer').innerText()).toContain(deliveryId!);
    expect(await page.locator('#timings').innerText()).toMatch(/Latency\s+[\d.]+ ms/);
    await screenshot('console-logs.png');
    // The request as sent, the signature masked; the payload; the response with the receiver's own header.
    expect(await page.locator('#request').innerText()).toMatch(/webhook-signature\s+v1,••••/);
    expect(await page.locator('#request').innerText()).not.toContain(secret);
    expect(await page.locator('#request-body').innerText()).toContain('"type": "workflow.');
    expect(await page.locator('#response').innerText()).toMatch(/x-receiver\s+console-test/);

    await page.click('#resend');
    await waitFor('the resend', () => verified.length === 2);
    expect(verified[1]).toBe(verified[0]);
    // Without a reload: the drawer shows the resent attempt, numbered after the first, and the list has both.
    await expect.poll(() => page.locator('.drawer .timeline').innerText(), { timeout: 20_000 }).toMatch(/#1 Delivered[\s\S]*#2 Delivered/);
    expect(await page.locator('.drawer header').innerText()).toContain('attempt 2');
    expect(await page.locator('#logs tbody tr.attempt').count()).toBe(2);
    await page.goto(`${console_.url}#/logs`);
    await page.selectOption('#filter-outcome', 'failed');
    await expect.poll(() => page.locator('#logs tbody').innerText()).toContain('No attempts match');
    await page.selectOption('#filter-outcome', '');
    await page.fill('#filter-deliveryId', deliveryId!);
    await page.press('#filter-deliveryId', 'Enter');
    await expect.poll(() => page.locator('#logs tbody tr.attempt').count()).toBe(2);
    // The filters are in the URL: a reload shows the same attempts.
    expect(page.url()).toContain(`deliveryId=${encodeURIComponent(deliveryId!)}`);
    await page.reload();
    await expect.poll(() => page.locator('#logs tbody tr.attempt').count()).toBe(2);
    expect(await page.inputValue('#filter-deliveryId')).toBe(deliveryId);

    // Edit the URL: the secret and the enabled state stay.
    await page.goto(`${console_.url}#/rules`);
    const row2 = page.locator('#rules tbody tr').first();
    await row2.locator('.switch span').click();
    await expect.poll(() => console_.rules.get(ruleId!)?.enabled).toBe(true);
    await expect.poll(() => row2.locator('input[type=checkbox]').isChecked()).toBe(true);
    await screenshot('console-rules.png');
    await page.locator('#rules tbody tr').first().getByRole('button', { name: 'Edit' }).click();
    expect(await page.inputValue('#rule-url')).toBe(receiver.url);
    // A saved header value is not shown; left empty, it stays.
    expect(await page.inputValue('.header-name')).toBe('X-Team');
    expect(await page.inputValue('.header-value')).toBe('');
    expect(await page.getAttribute('.header-value', 'placeholder')).toMatch(/hidden; type to replace/);
    await page.fill('#rule-url', `${receiver.url}?v=2`);
    await screenshot('console-rule-edit.png');
    await page.click('#save-rule');
    await expect.poll(() => console_.rules.get(ruleId!)?.url).toBe(`${receiver.url}?v=2`);
    expect(console_.rules.get(ruleId!)).toMatchObject({ enabled: true, secrets: [{ secret }], headers: { 'X-Team': 'deployments' }, scope: { kind: 'workflows', ids: ['wf-1', 'wf-2'] }, eventTypes: ['workflow_completed'] });
    // Typed over, a header value is replaced.
    await page.locator('#rules tbody tr').first().getByRole('button', { name: 'Edit' }).click();
    await page.locator('.header-value').fill('releases');
    await page.click('#save-rule');
    await expect.poll(() => console_.rules.get(ruleId!)?.headers).toEqual({ 'X-Team': 'releases' });

    // Rotate: both secrets sign during the overlap.
    await page.locator('#rules tbody tr').first().getByRole('button', { name: 'Rotate secret' }).click();
    await page.selectOption('#overlap', '1h');
    await page.click('#rotate');
    const fresh = await page.locator('#secret-value').innerText();
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(secret);
    await page.click('#secret-done');
    await expect.poll(() => console_.rules.get(ruleId!)?.secrets.length).toBe(2);

    // Delete, with a confirmation.
    await page.locator('#rules tbody tr').first().getByRole('button', { name: 'Delete' }).click();
    await page.click('#confirm');
    await expect.poll(() => page.locator('#rules tbody').innerText()).toContain('No event rules yet');
    expect(console_.rules.get(ruleId!)).toBeUndefined();
  });

  it('shows a rule the system disabled with its reason, dead letters with reasons, and replays them', async () => {
    const failing = await startReceiver('/failing');
    failing.respond = () => 503;
    const io = await writers(cluster);
    try {
      await io.rules.put(
        rule('gone', 'other-app', { name: 'Gone hook', url: 'http://127.0.0.1:9/gone', enabled: false, disabledReason: 'the endpoint answered 410 Gone' }),
        rule('flaky', 'other-app', { name: 'Flaky hook', url: failing.url, eventTypes: ['workflow_started'] }),
      );
      matcher = await startMatcher(cluster);
      // Published inside the engine's span: the attempt drawer shows its trace id.
      const producerSpan = engineSpan();
      await within(producerSpan, () => io.events.publish([harnessEvent('workflow_started', { application: { id: 'other-app' } })]));
      producerSpan.end();
      await expect.poll(() => console_.deadLetters.deliveries().length, { timeout: 30_000 }).toBe(1);

      await page.goto(`${console_.url}#/rules`);
      await page.reload();
      await expect.poll(() => page.locator('tr[data-rule-id=gone] .disabled-reason').innerText(), { timeout: 10_000 }).toBe('Disabled: the endpoint answered 410 Gone');

      await page.goto(`${console_.url}#/dead-letters`);
      const deadRow = page.locator(`[data-topic="${topicNames(cluster.TOPIC_PREFIX).deliveriesDlq}"] tbody tr`);
      await expect.poll(() => deadRow.count()).toBe(1);
      expect(await deadRow.innerText()).toMatch(/flaky[\s\S]*workflow_started[\s\S]*exhausted[\s\S]*HTTP 503/);
      await screenshot('console-dead-letters.png');

      // The endpoint view: the failing one with since when, its last error and the rule using it; the one a disabled rule names, why.
      await page.goto(`${console_.url}#/endpoints?window=5m`);
      const flakyRow = page.locator(`#endpoints tr[data-url="${failing.url}"]`);
      await expect.poll(() => flakyRow.innerText(), { timeout: 10_000 }).toMatch(/Used by Flaky hook[\s\S]*0 %[\s\S]*HTTP 503/);
      expect(await flakyRow.locator('.failing-since').count()).toBe(1);
      expect(await page.locator('#endpoints tr[data-url="http://127.0.0.1:9/gone"]').innerText()).toContain('Gone hook disabled: the endpoint answered 410 Gone');
      await screenshot('console-endpoints.png');

      await page.goto(`${console_.url}#/overview`);
      await expect.poll(() => page.locator('#attempts').innerText()).not.toBe('–');
      await screenshot('console-overview.png');

      failing.respond = () => 200;
      await page.goto(`${console_.url}#/dead-letters`);
      await deadRow.locator('input[type=checkbox]').check();
      await page.click('#replay-selected');
      await waitFor('the replay', () => failing.received.length === 3);
      expect(new Set(failing.received.map((request) => request.headers['webhook-id'])).size).toBe(1);
      // The replay is the delivery's third attempt, and it ended the endpoint's failure.
      await page.goto(`${console_.url}#/endpoints?window=5m`);
      // The row first (a count of 0 is also what a page not drawn yet gives), then what it says.
      await expect.poll(() => flakyRow.innerText(), { timeout: 10_000 }).toContain('33.3 %');
      expect(await flakyRow.locator('.failing-since').count()).toBe(0);
      await page.goto(`${console_.url}#/logs`);
      await expect.poll(() => page.locator('#logs tbody tr[data-outcome=delivered]').count()).toBeGreaterThanOrEqual(1);
      expect(await page.locator('#logs tbody tr[data-outcome=delivered]').first().getAttribute('data-key')).toMatch(/\/3$/);
      await page.locator('#logs tbody tr[data-outcome=dead_lettered]').first().click();
      await expect.poll(() => page.locator('#replay').count()).toBe(1);
      expect(await page.locator('#trace-id').innerText()).toBe(producerSpan.spanContext().traceId);
      await screenshot('console-attempt-trace.png');
    } finally {
      await io.close();
      await failing.close();
    }
  });

  it('recovers what failed for an endpoint since a time, and resends a filtered view, each saying how many before it sends', async () => {
    const down = await startReceiver('/recover');
    down.respond = () => 503;
    const io = await writers(cluster);
    try {
      await io.rules.put(rule('recover', 'recover-app', { name: 'Recover hook', url: down.url, eventTypes: ['workflow_completed'] }));
      await waitFor('the matcher has the rule', () => matcher.rules.get('recover') !== undefined);
      const before = Date.now();
      await io.events.publish(Array.from({ length: 3 }, (_, index) => harnessEvent('workflow_completed', { application: { id: 'recover-app' }, workflowExecutionId: `recover-${index}` })));
      // RETRY_SCHEDULE 500 ms: two attempts each, then given up on.
      await expect.poll(() => console_.deadLetters.deliveries().filter((entry) => entry.command?.ruleId === 'recover').length, { timeout: 30_000 }).toBe(3);
      await waitFor('the give-ups in the history', async () => (await console_.history.query({ ruleId: 'recover', outcome: 'dead_lettered' })).count === 3, 10_000);
      expect(down.received).toHaveLength(6);

      down.respond = () => 200;
      await page.goto(`${console_.url}#/endpoints?window=5m`);
      const row = page.locator(`#endpoints tr[data-url="${down.url}"]`);
      await row.getByRole('button', { name: `Recover ${down.url}` }).click();
      // Since when it has been failing, by default: all three.
      await expect.poll(() => page.locator('#recover-count').innerText()).toBe('3 deliveries failed or dead-lettered since then will be sent again.');
      expect(new Date(await page.inputValue('#recover-since')).getTime()).toBeGreaterThanOrEqual(Math.floor(before / 60_000) * 60_000 - 60_000);
      await screenshot('console-recover.png');
      // A time after the failures: nothing to recover.
      await page.fill('#recover-since', new Date(Date.now() + 3_600_000 - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16));
      await page.dispatchEvent('#recover-since', 'change');
      await expect.poll(() => page.locator('#recover-count').innerText()).toMatch(/^0 deliveries/);
      await page.fill('#recover-since', new Date(before - 60_000 - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16));
      await page.dispatchEvent('#recover-since', 'change');
      await expect.poll(() => page.locator('#recover-count').innerText()).toMatch(/^3 deliveries/);
      await page.click('#recover-send');
      await waitFor('the recovered deliveries', () => down.received.length === 9, 20_000);
      expect(new Set(down.received.map((request) => request.headers['webhook-id'])).size).toBe(3);
      // Each went out as its delivery's third attempt, delivered; nothing failed is left to recover.
      await waitFor('the recoveries logged', async () => (await console_.history.query({ ruleId: 'recover', outcome: 'delivered' })).count === 3, 10_000);
      expect((await console_.history.query({ ruleId: 'recover', outcome: 'delivered' })).entries.map((entry) => entry.attempt)).toEqual([3, 3, 3]);
      const again = await (await api('/api/deliveries/resend', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ filters: { rule: 'recover' }, failedOnly: true, dryRun: true }) })).json();
      expect(again).toEqual({ deliveries: 0, more: false });

      // A bulk resend of the logs filtered to the rule: all three deliveries, delivered or not.
      await page.goto(`${console_.url}#/logs?rule=recover`);
      // Its attempts, and the deferrals while its breaker was open.
      const logged = (await console_.history.query({ ruleId: 'recover' })).count;
      await expect.poll(() => page.locator('#log-count').innerText()).toBe(`1–${Math.min(logged, 100)} of ${logged} attempts`);
      await page.click('#resend-view');
      await expect.poll(() => page.locator('.modal').innerText()).toContain('3 deliveries will be sent again');
      await page.click('#confirm');
      await waitFor('the resent view', () => down.received.length === 12, 20_000);

      // Any time range, kept in the URL: nothing in the hour before the events, all of them in a range around them.
      const local = (ms: number) => new Date(ms - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
      await page.goto(`${console_.url}#/logs?rule=recover&since=custom&from=${local(before - 3_600_000)}&to=${local(before - 120_000)}`);
      await expect.poll(() => page.locator('#logs tbody').innerText()).toContain('No attempts match');
      expect(await page.isVisible('#filter-from')).toBe(true);
      const to = local(Date.now() + 120_000);
      await page.fill('#filter-to', to);
      await page.dispatchEvent('#filter-to', 'change');
      await expect.poll(() => page.locator('#log-count').innerText()).toMatch(/^1–\d+ of \d+ attempts$/);
      expect(new URL(page.url().replace('#/logs', '')).searchParams.get('to')).toBe(to);
    } finally {
      await io.close();
      await down.close();
    }
  });

  it('never serves the credentials in a refused rule\'s URL: not in dead letters\' reasons, nor from records written before they were redacted', async () => {
    const [password, token] = [`pw-${randomUUID()}`, `tk-${randomUUID()}`];
    const io = await writers(cluster);
    const raw = createProducer(io.kafka);
    await raw.connect();
    try {
      matcher ??= await startMatcher(cluster);
      const codec = await io.registry.codec(`${rulesTopic}-value`, contracts.eventRule);
      const leaky = valid(contracts.eventRule, { ...rule('leaky-url', 'leaky-app'), url: `htps//ops:${password}@hooks.example.com/in?token=${token}`, updatedAt: Date.now() });
      const rulesDlq = topicNames(cluster.TOPIC_PREFIX).eventRulesDlq;
      await raw.send({ topic: rulesTopic, messages: [{ key: 'leaky-url', value: codec.encode(leaky) }] });
      // As the matcher wrote it before validation stopped quoting URLs.
      const old = { [DLQ_HEADERS.reason]: 'invalid', [DLQ_HEADERS.error]: `url: must be an absolute http(s) URL (got "https://ops:${password}@hooks.example.com/in?token=${token}")`, [DLQ_HEADERS.at]: new Date().toISOString() };
      await raw.send({ topic: rulesDlq, messages: [{ key: 'old-leaky', value: null, headers: old }] });
      const held = () => console_.deadLetters.topics().find((topic) => topic.topic === rulesDlq)!.records.filter((record) => record.key?.includes('leaky'));
      await expect.poll(() => held().length, { timeout: 30_000 }).toBe(2);

      const served = await (await api('/api/dead-letters', { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      expect(served).toContain('leaky-url');
      expect(served).toContain('https://redacted:redacted@hooks.example.com/in?redacted');
      for (const leak of [password, token]) expect(served).not.toContain(leak);
      await page.goto(`${console_.url}#/dead-letters`);
      await expect.poll(() => page.locator(`[data-topic="${rulesDlq}"]`).innerText()).toContain('does not parse');
      for (const leak of [password, token]) expect(await page.content()).not.toContain(leak);
    } finally {
      await raw.disconnect();
      await io.close();
    }
  });

  it('signs with ed25519 (v1a): the page shows the public key only, a receiver holding only it verifies, and a v1 rule rotates to v1a signing both ways', async () => {
    const ed25519 = await startReceiver('/hooks/ed25519');
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const shown = async (id: string) => (await api(`/api/rules/${id}`, { headers })).text();
    try {
      await page.goto(`${console_.url}#/rules`);
      await page.click('#add-rule');
      await page.fill('#rule-name', 'Signed with ed25519');
      await page.fill('#rule-id', 'ed25519');
      await page.fill('#rule-application', 'v1a-app');
      await page.fill('#rule-url', ed25519.url);
      await page.selectOption('#rule-scheme', 'v1a');
      expect(await page.locator('.field[data-field=secrets]').isHidden()).toBe(true);
      await page.click('#save-rule');
      const publicKey = await page.locator('#public-key-value').innerText();
      expect(publicKey).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
      await screenshot('console-rule-public-key.png');
      await page.click('#public-key-done');
      const privateKey = console_.rules.get('ed25519')!.secrets[0]!.secret;
      expect(privateKey).toMatch(/^whsk_/);
      expect(await shown('ed25519')).not.toContain(privateKey.slice(5, 25));
      expect(JSON.parse(await shown('ed25519'))).toMatchObject({ signatureScheme: 'v1a', secrets: [{ publicKey }] });

      const tested = await (await api('/api/rules/ed25519/test', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).json() as { entry: { outcome: string } | null };
      expect(tested.entry).toMatchObject({ outcome: 'delivered' });
      const request = ed25519.received.at(-1)!;
      expect(String(request.headers['webhook-signature'])).toMatch(/^v1a,\S+$/);
      expect(verifiesV1a(request.headers, request.body, publicKey)).toBe(true);

      // An HMAC rule moves to ed25519 by rotation: during the overlap both signatures go out, each verifiable.
      const own = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
      expect((await api('/api/rules', { method: 'POST', headers, body: JSON.stringify({ id: 'to-v1a', name: 'To v1a', application: 'v1a-app', url: ed25519.url, scope: { kind: 'everything', ids: null }, secret: own }) })).status).toBe(201);
      const rotated = await (await api('/api/rules/to-v1a/rotate-secret', { method: 'POST', headers, body: JSON.stringify({ overlap: '1h', scheme: 'v1a' }) })).json() as { rule: { signatureScheme: string; secrets: Array<{ publicKey?: string }> }; secret?: string };
      expect(rotated.secret).toBeUndefined();
      expect(rotated.rule.signatureScheme).toBe('v1a');
      const newKey = rotated.rule.secrets[1]!.publicKey!;
      await api('/api/rules/to-v1a/test', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      const both = ed25519.received.at(-1)!;
      expect(String(both.headers['webhook-signature']).split(' ').map((entry) => entry.split(',')[0])).toEqual(['v1', 'v1a']);
      expect(() => new Webhook(own).verify(both.body, both.headers as Record<string, string>)).not.toThrow();
      expect(verifiesV1a(both.headers, both.body, newKey)).toBe(true);
      expect(verifiesV1a(both.headers, both.body, publicKey)).toBe(false);
      // The Edit drawer lists the keys: the HMAC one on its way out by fingerprint only, the new one with its public key.
      await page.goto(`${console_.url}#/rules`);
      await page.locator('#rules tbody tr[data-rule-id=to-v1a]').getByRole('button', { name: 'Edit' }).click();
      await expect.poll(() => page.locator('#rule-keys').innerText()).toContain(newKey);
      expect(await page.locator('#rule-keys li').count()).toBe(2);
      expect(await page.locator('#rule-keys').innerText()).toMatch(/^HMAC · [0-9a-f]{12} · signs until/);
      await screenshot('console-rule-keys.png');
      await page.keyboard.press('Escape');
    } finally {
      for (const id of ['ed25519', 'to-v1a']) await api(`/api/rules/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
      await ed25519.close();
    }
  });

  it('takes a rule\'s client certificate and key, shows the key as the mask only, and keeps it when the mask comes back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'console-tls-'));
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    try {
      const ca = await createCa(dir, 'ca');
      const client = await issueCertificate(ca, dir, 'client', 'client');
      const [cert, key, caPem] = await Promise.all([client.cert, client.key, ca.cert].map((file) => readFile(file, 'utf8'))) as [string, string, string];
      const keyLine = key.split('\n')[1]!;
      const input = { id: 'with-tls', name: 'With TLS', application: 'tls-app', url: 'https://127.0.0.1:9/hook', scope: { kind: 'everything', ids: null } };
      const created = await api('/api/rules', { method: 'POST', headers, body: JSON.stringify({ ...input, tls: { clientCertificate: cert, clientKey: key, ca: caPem } }) });
      expect(created.status).toBe(201);
      const shown = await (await api('/api/rules/with-tls', { headers })).text();
      expect(shown).not.toContain(keyLine);
      const rule = JSON.parse(shown) as { tls: object };
      expect(rule.tls).toEqual({ clientCertificate: cert, clientKey: '[redacted]', ca: caPem });
      // The rule as shown goes back as it is (an Edit saved unchanged): the key stays.
      expect((await api('/api/rules/with-tls', { method: 'PUT', headers, body: JSON.stringify({ ...input, tls: rule.tls }) })).status).toBe(200);
      await expect.poll(() => console_.rules.get('with-tls')?.updatedAt).not.toBe(undefined);
      expect(console_.rules.get('with-tls')!.tls).toEqual({ clientCertificate: cert, clientKey: key, ca: caPem });
      const refused = await api('/api/rules/with-tls', { method: 'PUT', headers, body: JSON.stringify({ ...input, tls: { clientCertificate: caPem, clientKey: '[redacted]', ca: null } }) });
      expect(refused.status).toBe(422);
      expect(await refused.json()).toMatchObject({ issues: [{ field: 'tls.clientKey', reason: 'is not the private key of tls.clientCertificate' }] });
    } finally {
      await api('/api/rules/with-tls', { method: 'DELETE', headers });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('flags a rule no pool will deliver when it is saved, naming the setting: no pool has its selectors, or its pool may not dial the URL', async () => {
    const strict = await startDispatcher(cluster, { pool: 'strict', tags: ['strict'], allowNetworks: [], groupId: `${cluster.TOPIC_PREFIX}dispatcher.strict` });
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const input = { id: 'reach', name: 'Reach', application: 'reach-app', url: receiver.url, scope: { kind: 'everything', ids: null } };
    try {
      const created = await api('/api/rules', { method: 'POST', headers, body: JSON.stringify({ ...input, delegateSelectors: ['nowhere'] }) });
      expect(created.status).toBe(201);
      expect((await created.json() as { warnings: string[] }).warnings).toEqual([expect.stringMatching(/^no dispatcher pool has all of the tags \[nowhere\].*DISPATCHER_TAGS/)]);
      const update = async () => (await (await api('/api/rules/reach', { method: 'PUT', headers, body: JSON.stringify({ ...input, delegateSelectors: ['strict'] }) })).json() as { warnings: string[] }).warnings;
      // Once the strict pool's announcement is read: it may not dial loopback.
      await expect.poll(update).toEqual([expect.stringMatching(/^pool "strict" may not dial this URL \(127\.0\.0\.1 is loopback, not a public address\): allow it in DISPATCHER_ALLOW_NETWORKS/)]);
      // Saved all the same; the default pool (loopback allowed) would deliver it, so that says nothing.
      expect(console_.rules.get('reach')).toMatchObject({ delegateSelectors: ['strict'] });
      expect(await (await api('/api/rules/reach', { method: 'PUT', headers, body: JSON.stringify({ ...input, delegateSelectors: [] }) })).json()).toMatchObject({ warnings: [] });
      await api('/api/rules/reach', { method: 'PUT', headers, body: JSON.stringify({ ...input, delegateSelectors: ['strict'] }) });

      // The page says so when the rule is switched on.
      await page.goto(`${console_.url}#/rules`);
      const row = page.locator('#rules tbody tr[data-rule-id=reach]');
      await row.locator('.switch span').click();
      await expect.poll(() => page.locator('.toast.warn').innerText()).toMatch(/Reach is saved, but it will not be delivered: pool "strict" may not dial this URL .*DISPATCHER_ALLOW_NETWORKS/);
      await screenshot('console-rule-unreachable.png');
    } finally {
      await api('/api/rules/reach', { method: 'DELETE', headers });
      await strict.stop();
    }
  });
});
