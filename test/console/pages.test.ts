/// <reference lib="dom" />
// page.evaluate's callbacks run in Chromium: the DOM's types.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCluster } from '../../services/common/setup.ts';
import { Console } from '../../services/console/console.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import { startDispatcher, startReceiver, type Receiver } from '../dispatcher/fixtures.ts';
import { newSecret } from '../fixtures/rules.ts';
import { testCluster, testLogger } from '../helpers.ts';

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = new URL('../../test-artifacts/', import.meta.url);
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TOKEN = 'pages-test-token-0123456789abcdef';
const PAGES = ['overview', 'rules', 'logs', 'endpoints', 'dead-letters'] as const;

/** What overflows at this width: the page itself, a cell's content, or a cell over its neighbour. */
function layoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > window.innerWidth) problems.push(`the page is ${root.scrollWidth} px wide in a ${window.innerWidth} px window`);
    for (const row of document.querySelectorAll('#page tr')) {
      const cells = [...row.children] as HTMLElement[];
      cells.forEach((cell, index) => {
        const name = `${row.closest('table')?.id || 'table'} row ${[...row.parentElement!.children].indexOf(row)} cell ${index}`;
        // A cell that clips its text with an ellipsis (.truncate) overflows by design, not over its neighbour.
        if (cell.scrollWidth > cell.clientWidth + 1 && getComputedStyle(cell).overflowX !== 'hidden') problems.push(`${name}: content ${cell.scrollWidth} px in ${cell.clientWidth} px`);
        const next = cells[index + 1];
        if (next && cell.getBoundingClientRect().right > next.getBoundingClientRect().left + 1) problems.push(`${name} overlaps the next cell`);
      });
    }
    return problems;
  });
}

describe('console pages at any width, by keyboard, and for assistive technology', () => {
  const cluster = testCluster('pages', { RETRY_SCHEDULE: [500] });
  let console_: Console;
  let dispatcher: Dispatcher;
  let receiver: Receiver;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const api = async (method: string, path: string, body?: unknown) => {
    const headers = { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    const response = await fetch(new URL(path, console_.url), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: response.status, body: response.status === 204 ? {} : await response.json() as Record<string, unknown> };
  };
  const open = async (name: string, on = page) => {
    await on.goto('about:blank'); // a fresh load, whatever the last test left open
    await on.goto(`${console_.url}#/${name}`);
    await on.waitForFunction((wanted) => document.body.dataset.page === wanted, name);
    await on.waitForLoadState('networkidle');
  };
  const signIn = async (on: Page) => {
    await on.goto(`${console_.url}login`);
    await on.fill('#token', TOKEN);
    await on.click('#sign-in');
    await on.waitForURL(/#\/|\/$/);
  };

  beforeAll(async () => {
    await prepareCluster(cluster, testLogger);
    receiver = await startReceiver('/hooks/pages');
    console_ = new Console(cluster, { groupId: `${cluster.TOPIC_PREFIX}console`, httpHost: '127.0.0.1', httpPort: 0, adminToken: TOKEN, testTimeoutMs: 20_000, dataDir: await mkdtemp(join(tmpdir(), 'console-history-')) }, testLogger);
    await console_.start();
    dispatcher = await startDispatcher(cluster);
    // Long names, a long URL, many event types and a disabled reason: what made columns overlap.
    const long = { application: 'a-rather-long-application-identifier', scope: { kind: 'workflows', ids: ['wf-with-a-long-id-1', 'wf-2'] } };
    await api('POST', '/api/rules', { ...long, id: 'deploys', name: 'Production deployments of the payments platform', url: `${receiver.url}?tenant=payments-production-eu-west-1&format=json`, enabled: true });
    await api('POST', '/api/rules', { ...long, id: 'tasks', name: 'Task notifications', url: receiver.url, eventTypes: ['task_started', 'task_completed', 'task_failed', 'workflow_started'] });
    await api('POST', '/api/rules/tasks/disable');
    expect((await api('POST', '/api/rules/deploys/test')).body).toMatchObject({ entry: { outcome: 'delivered' } });
    browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (error) => errors.push(error.message));
    await mkdir(artifacts, { recursive: true });
    await signIn(page);
  });
  afterAll(async () => {
    await browser?.close();
    await dispatcher?.stop();
    await console_?.stop();
    await receiver?.close();
  });

  for (const width of [390, 1400]) {
    it(`every page at ${width} px: no horizontal overflow, no cell over another, charts drawn, the drawer inside the window`, async () => {
      await page.setViewportSize({ width, height: 900 });
      for (const name of PAGES) {
        await open(name);
        expect(await layoutProblems(page), `${name} at ${width} px`).toEqual([]);
        await page.screenshot({ path: new URL(`page-${name}-${width}.png`, artifacts).pathname, fullPage: true });
      }
      await open('overview');
      const charts = await page.evaluate(() => [...document.querySelectorAll('canvas')].map((canvas) => {
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let drawn = 0;
        for (let index = 3; index < data.length; index += 4) if (data[index]! > 0) drawn += 1;
        return { width: canvas.getBoundingClientRect().width, drawn };
      }));
      expect(charts).toHaveLength(2);
      for (const chart of charts) expect(chart.width > 100 && chart.drawn > 100, JSON.stringify(chart)).toBe(true);

      await open('rules');
      await page.click('#add-rule');
      const drawer = await page.locator('.drawer').evaluate((node) => ({ box: node.getBoundingClientRect().toJSON(), scroll: node.querySelector('.body')!.scrollWidth, client: node.querySelector('.body')!.clientWidth }));
      expect(drawer.box.left).toBeGreaterThanOrEqual(0);
      expect(drawer.box.right).toBeLessThanOrEqual(width);
      expect(drawer.scroll).toBeLessThanOrEqual(drawer.client);
      await page.screenshot({ path: new URL(`page-add-rule-${width}.png`, artifacts).pathname });
      await page.keyboard.press('Escape');
    });
  }

  it('by keyboard: focus moves into the drawer and the modal and stays there, Escape closes them and gives it back; log rows open with Enter; toggles show focus', async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    await open('rules');
    const focused = () => page.evaluate(() => ({ id: document.activeElement?.id, inDrawer: Boolean(document.activeElement?.closest('.drawer')), inModal: Boolean(document.activeElement?.closest('.modal')), switch: Boolean(document.activeElement?.closest('.switch')) }));

    await page.focus('#add-rule');
    await page.keyboard.press('Enter');
    expect(await focused()).toMatchObject({ id: 'rule-name', inDrawer: true });
    for (let index = 0; index < 40; index += 1) {
      await page.keyboard.press('Tab');
      expect((await focused()).inDrawer, `tab ${index + 1}`).toBe(true);
    }
    await page.keyboard.press('Escape');
    expect(await page.locator('.drawer').count()).toBe(0);
    expect(await focused()).toMatchObject({ id: 'add-rule' });

    await page.focus('#delete-application');
    await page.keyboard.press('Enter');
    expect(await focused()).toMatchObject({ inModal: true });
    await page.keyboard.press('Escape');
    expect(await page.locator('.modal').count()).toBe(0);
    expect(await focused()).toMatchObject({ id: 'delete-application' });

    // Tab from the page's actions into the table: the first toggle shows a ring.
    await page.focus('#add-rule');
    for (let index = 0; index < 10 && !(await focused()).switch; index += 1) await page.keyboard.press('Tab');
    expect((await focused()).switch).toBe(true);
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement!.nextElementSibling!).outlineStyle);
    expect(ring).toBe('solid');
    await page.screenshot({ path: new URL('page-keyboard-toggle.png', artifacts).pathname });

    // A toast belongs to its page: switch the rule with Space, then leave.
    await page.keyboard.press('Space');
    await expect.poll(() => page.locator('.toast').count()).toBeGreaterThan(0);
    await open('logs');
    expect(await page.locator('.toast').count()).toBe(0);

    for (let index = 0; index < 40 && !(await page.evaluate(() => Boolean(document.activeElement?.matches('tr.attempt')))); index += 1) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.drawer #attempt-details').count()).toBe(1);
    await page.keyboard.press('Escape');
    expect(await page.evaluate(() => document.activeElement?.matches('tr.attempt'))).toBe(true);
  });

  it('axe-core finds no serious or critical violation on any page, the login or the rule form', async () => {
    // The console's CSP refuses injected scripts, rightly: this page lets axe in.
    const audited = await browser.newPage({ bypassCSP: true, viewport: { width: 1400, height: 900 } });
    const audit = async (where: string) => {
      await audited.addScriptTag({ path: axePath });
      const violations = await audited.evaluate(async () => {
        const result = await (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run(document);
        return result.violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical').map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`);
      });
      expect(violations, where).toEqual([]);
    };
    try {
      await audited.goto(`${console_.url}login`);
      await audit('the login');
      await signIn(audited);
      for (const name of PAGES) {
        await open(name, audited);
        await audit(name);
      }
      await open('rules', audited);
      await audited.click('#add-rule');
      await audit('the rule form');
    } finally {
      await audited.close();
    }
  });

  it('the rule form: errors are those of the last attempt, a header without a name or named twice is refused, a signing secret of your own is kept', async () => {
    await open('rules');
    await page.click('#add-rule');
    await page.fill('#rule-name', 'Form checks');
    await page.fill('#rule-application', 'form-app');
    await page.fill('#rule-url', 'ftp://nope');
    await page.click('#save-rule');
    const urlError = page.locator('.field[data-field=url] .error');
    await expect.poll(() => urlError.innerText()).toMatch(/must be an absolute http\(s\) URL/i);
    // Another attempt, another mistake: its error alone, not joined to the last one's.
    await page.fill('#rule-url', 'not a url');
    await page.click('#save-rule');
    await expect.poll(() => urlError.innerText()).toMatch(/does not parse/);
    expect(await urlError.innerText()).not.toContain('ftp');
    expect(await urlError.locator('div').count()).toBe(1);

    await page.fill('#rule-url', receiver.url);
    await page.click('#header-rows + button');
    await page.locator('.header-value').fill('no name');
    await page.click('#save-rule');
    await expect.poll(() => page.locator('.field[data-field=headers] .error').innerText()).toMatch(/row 1: has no header name/);
    expect(await page.locator('.field[data-field=url] .error').isHidden()).toBe(true);

    await page.locator('.header-name').fill('X-A');
    await page.click('#header-rows + button');
    await page.locator('.header-name').nth(1).fill('x-a');
    await page.locator('.header-value').nth(1).fill('two');
    await page.click('#save-rule');
    await expect.poll(() => page.locator('.field[data-field=headers] .error').innerText()).toMatch(/x-a: names the same header as X-A/);
    await page.locator('.pair').nth(1).getByRole('button', { name: 'Remove header' }).click();

    await page.fill('#rule-secret', 'whsec_short');
    await page.click('#save-rule');
    await expect.poll(() => page.locator('.field[data-field=secrets] .error').innerText()).toMatch(/whsec_ followed by base64 of 24 to 64 random bytes/);
    const own = newSecret();
    await page.fill('#rule-id', 'form-checks');
    await page.fill('#rule-secret', own);
    await page.click('#save-rule');
    await expect.poll(() => console_.rules.get('form-checks')?.secrets.map(({ secret }) => secret)).toEqual([own]);
    expect(await page.locator('#secret-value').count()).toBe(0);
    expect(console_.rules.get('form-checks')?.headers).toEqual({ 'X-A': 'no name' });
  });

  it('an edit made from a copy someone changed since is refused, saying so, and overwrites nothing', async () => {
    await open('rules');
    await page.locator('#rules tbody tr[data-rule-id=form-checks]').getByRole('button', { name: 'Edit' }).click();
    await page.fill('#rule-name', 'Mine');
    // Someone else saves the rule while the form is open.
    const etag = async () => (await fetch(new URL('/api/rules/form-checks', console_.url), { headers: { authorization: `Bearer ${TOKEN}` } })).headers.get('etag');
    const before = await etag();
    expect((await api('PUT', '/api/rules/form-checks', { name: 'Changed elsewhere', application: 'form-app', url: receiver.url, scope: { kind: 'everything', ids: null } })).status).toBe(200);
    expect(await etag()).not.toBe(before);
    await page.click('#save-rule');
    await expect.poll(() => page.locator('#form-error').innerText()).toMatch(/rule "form-checks" was changed by someone else since you loaded it .*reload it and redo the change/);
    expect(console_.rules.get('form-checks')?.name).toBe('Changed elsewhere');
    await page.keyboard.press('Escape');

    // A script does the same with the ETag GET gives.
    const put = (ifMatch: string) => fetch(new URL('/api/rules/form-checks', console_.url), { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'if-match': ifMatch }, body: JSON.stringify({ name: 'Scripted', application: 'form-app', url: receiver.url, scope: { kind: 'everything', ids: null } }) });
    expect((await put(before!)).status).toBe(409);
    expect((await put('yesterday')).status).toBe(400);
    expect((await put((await etag())!)).status).toBe(200);
    expect(console_.rules.get('form-checks')?.name).toBe('Scripted');
  });

  it('Sign out, then Back: the login page, and nothing thrown', async () => {
    await open('rules');
    errors.length = 0;
    await page.click('#logout');
    await page.waitForURL(/\/login$/);
    await page.goBack();
    await page.waitForURL(/\/login$/);
    await page.waitForLoadState('networkidle');
    expect(errors).toEqual([]);
  });
});
