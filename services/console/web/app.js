// The console's pages: Overview, Event rules, Webhook logs and Dead letters, drawn from the JSON API under /api
// (the same API scripts use). No build step, no framework: DOM built with h(), text never parsed as HTML.
'use strict';

const $ = (selector, root = document) => root.querySelector(selector);
const page = $('#page');
let csrfToken = null;
let catalog = { eventTypes: [], payloadFormats: [], applications: [] };
let timer;

// ---------- helpers ----------
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
  return node;
}
const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '–');
const fmtMs = (ms) => (ms === null || ms === undefined ? '–' : ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`);
const OUTCOME_LABEL = { delivered: 'Delivered', retrying: 'Retrying', failed: 'Failed', dead_lettered: 'Dead-lettered', blocked: 'Blocked', skipped: 'Skipped' };
const FORMAT_LABEL = { standard: 'Standard', harness_v1: 'Harness v1', sharering: 'ShareRing' };
const SCHEME_LABEL = { v1: 'HMAC-SHA256 (v1), shared secret', v1a: 'Ed25519 (v1a), public key' };
const outcomeBadge = (outcome) => h('span', { class: `badge ${outcome}` }, OUTCOME_LABEL[outcome] ?? outcome);
const DEFERRAL_LABEL = { breaker_open: 'breaker open', endpoint_saturated: 'endpoint busy', rate_limited: 'rate limited', rule_version_pending: 'waiting for the rule' };
/** An attempt as what it is: a deferral (nothing sent, put off for a reason) is not a retry after a failed attempt. */
const attemptBadge = (entry) => (entry.deferral ? h('span', { class: 'badge deferred', title: entry.error ?? '' }, `Deferred · ${DEFERRAL_LABEL[entry.deferral] ?? entry.deferral}`) : outcomeBadge(entry.outcome));
const attemptLabel = (entry) => (entry.deferral ? `Deferred (${DEFERRAL_LABEL[entry.deferral] ?? entry.deferral})` : OUTCOME_LABEL[entry.outcome] ?? entry.outcome);
const scopeText = (scope) => (scope.kind === 'everything' ? 'Everything' : `${scope.kind === 'workflows' ? 'Workflows' : 'Pipelines'}: ${scope.ids ? scope.ids.join(', ') : 'all'}`);

function toast(message, kind = '') {
  const node = h('div', { class: `toast ${kind}`, role: 'status' }, message);
  $('#toasts').append(node);
  // A warning says what to change: long enough to read it.
  setTimeout(() => node.remove(), kind === 'warn' ? 12_000 : 3500);
}

/** A saved rule's warnings (why it will not be delivered as the pools stand), as one sentence for a toast. */
const undeliverable = (name, warnings) => `${name} is saved, but it will not be delivered: ${warnings.join('; ')}`;

class ApiFailure extends Error {
  constructor(status, body) {
    super(body.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, extraHeaders = {}) {
  const headers = { accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  if (response.status === 401) {
    // Signed out (or the session ended): the page is leaving for the login, so nothing waiting on this goes on.
    location.assign('/login');
    return new Promise(() => {});
  }
  const parsed = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiFailure(response.status, parsed);
  return parsed;
}

function pageHead(title, description, ...actions) {
  return h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, title), h('p', {}, description)), h('div', { class: 'actions' }, ...actions));
}

function emptyRow(columns, title, text) {
  return h('tr', {}, h('td', { colSpan: columns, class: 'empty' }, h('b', {}, title), text));
}

// ---------- overlays ----------
// A drawer or modal takes the focus (its first field, else itself), keeps Tab inside, closes on Escape, and gives the
// focus back to what opened it.
const overlays = [];
const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
const focusables = (root) => [...root.querySelectorAll(FOCUSABLE)].filter((node) => node.getClientRects().length > 0);

function showOverlay(scrim, panel, onDismiss) {
  const entry = { scrim, panel, onDismiss, opener: document.activeElement };
  overlays.push(entry);
  Object.assign(panel, { tabIndex: -1 });
  panel.setAttribute('aria-modal', 'true');
  document.body.append(scrim, panel);
  (focusables(panel).find((node) => node.matches('input, select, textarea')) ?? panel).focus();
  return entry;
}

function closeOverlay(entry) {
  const index = overlays.indexOf(entry);
  if (index < 0) return;
  overlays.splice(index, 1);
  entry.scrim.remove();
  entry.panel.remove();
  entry.onDismiss?.();
  if (entry.opener?.isConnected) entry.opener.focus();
}

function closeOverlays() {
  while (overlays.length) closeOverlay(overlays.at(-1));
}

document.addEventListener('keydown', (event) => {
  const top = overlays.at(-1);
  if (!top) return;
  if (event.key === 'Escape') {
    event.preventDefault();
    closeOverlay(top);
  } else if (event.key === 'Tab') {
    const targets = focusables(top.panel);
    if (targets.length === 0) return event.preventDefault();
    const [first, last] = [targets[0], targets.at(-1)];
    const inside = top.panel.contains(document.activeElement);
    if (!inside || (event.shiftKey && document.activeElement === first) || (!event.shiftKey && document.activeElement === last)) {
      event.preventDefault();
      (event.shiftKey ? last : first).focus();
    }
  }
});

function drawer(title, subtitle, body, footer = []) {
  closeOverlays();
  const panel = h('aside', { class: 'drawer', role: 'dialog', 'aria-label': title },
    h('header', {}, h('div', {}, h('h2', {}, title), subtitle ? h('p', {}, subtitle) : null), h('button', { class: 'btn ghost', onclick: closeOverlays, 'aria-label': 'Close' }, '✕')),
    h('div', { class: 'body' }, body),
    footer.length ? h('footer', {}, ...footer) : null);
  showOverlay(h('div', { class: 'scrim', onclick: closeOverlays }), panel);
  return panel;
}

/** `onDismiss` runs however the modal closes: a button's `close`, or Escape. */
function modal(title, text, content, buttons, onDismiss) {
  overlays.filter((entry) => entry.panel.classList.contains('modal')).forEach(closeOverlay);
  let entry;
  const close = () => closeOverlay(entry);
  const box = h('div', { class: 'modal', role: 'dialog', 'aria-label': title },
    h('div', { class: 'body' }, h('h2', {}, title), text ? h('p', {}, text) : null, content),
    h('footer', {}, ...buttons(close)));
  entry = showOverlay(h('div', { class: 'scrim modal-scrim' }), box, onDismiss);
  return box;
}

function confirmModal(title, text, action, label, content = null) {
  return new Promise((resolve) => {
    let confirmed = false;
    modal(title, text, content, (close) => [
      h('button', { class: 'btn', onclick: close }, 'Cancel'),
      h('button', { class: `btn ${action}`, id: 'confirm', onclick: () => { confirmed = true; close(); } }, label),
    ], () => resolve(confirmed));
  });
}

function copyButton(text) {
  const button = h('button', { class: 'btn small', type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(button.previousSibling);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = 'Selected: press Ctrl+C';
    }
  } }, 'Copy');
  return button;
}

function showSecret(title, secret, text, warnings = []) {
  modal(title, text, h('div', {},
    ...warnings.map((warning) => h('div', { class: 'note bad save-warning', style: 'margin:12px 0' }, `It will not be delivered yet: ${warning}`)),
    h('div', { class: 'secret-box' }, h('code', { id: 'secret-value' }, secret), copyButton(secret)),
    h('div', { class: 'note warn', style: 'margin-top:12px' }, 'This is the only time the secret is shown. Store it in your receiver\'s configuration now; the console keeps only a fingerprint.')),
  (close) => [h('button', { class: 'btn primary', id: 'secret-done', onclick: close }, 'I have stored it')]);
}

/** A v1a rule's public key: not a secret (it verifies, it cannot sign), so it can be shown and copied any time. */
function showPublicKey(title, rule, text, warnings = []) {
  const current = rule.secrets.findLast((key) => key.notAfter === null);
  modal(title, text, h('div', {},
    ...warnings.map((warning) => h('div', { class: 'note bad save-warning', style: 'margin:12px 0' }, `It will not be delivered yet: ${warning}`)),
    h('div', { class: 'secret-box' }, h('code', { id: 'public-key-value' }, current.publicKey), copyButton(current.publicKey)),
    h('div', { class: 'note', style: 'margin-top:12px' }, 'Receivers verify the v1a signature with this key (any Standard Webhooks library that supports v1a, or ed25519 in a few lines; see docs/security.md). The private key stays here and is never shown.')),
  (close) => [h('button', { class: 'btn primary', id: 'public-key-done', onclick: close }, 'Done')]);
}

// ---------- Overview ----------
let charts = {};
async function overview() {
  Object.values(charts).forEach((chart) => chart.destroy());
  charts = {};
  page.replaceChildren(
    pageHead('Overview', 'Deliveries of the last five minutes, live from the delivery log.'),
    h('div', { class: 'stats' },
      ...[['attempts', 'Attempts (5 min)'], ['success-rate', 'Success rate'], ['p95', 'p95 latency'], ['dead-total', 'Dead letters']].map(([id, label]) =>
        h('div', { class: 'card stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, '–')))),
    h('div', { class: 'grid2' },
      h('div', { class: 'card chart-card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Deliveries per second')), h('div', { class: 'card-body' }, h('canvas', { id: 'rate-chart' }))),
      h('div', { class: 'card chart-card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Success rate and latency per endpoint')), h('div', { class: 'card-body' }, h('canvas', { id: 'success-chart' })))),
    h('div', { class: 'card' }, h('div', { class: 'card-head' }, h('div', {}, h('h2', {}, 'Endpoints'), h('p', {}, 'Per rule and target URL, last five minutes'))),
      h('table', { id: 'targets' }, h('thead', {}, h('tr', {}, ...['Rule', 'Endpoint', 'Attempts', 'Success', 'p50', 'p95'].map((title) => h('th', {}, title)))), h('tbody'))));
  charts.rate = new Chart($('#rate-chart'), {
    type: 'line',
    data: { labels: [], datasets: [
      { label: 'Delivered', data: [], borderColor: '#047857', backgroundColor: '#04785722', fill: true, pointRadius: 0, tension: 0.3 },
      { label: 'Not delivered', data: [], borderColor: '#b91c1c', backgroundColor: '#b91c1c22', fill: true, pointRadius: 0, tension: 0.3 },
    ] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: 'bottom' } }, scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  charts.success = new Chart($('#success-chart'), {
    type: 'bar',
    data: { labels: [], datasets: [{ label: 'Success %', data: [], backgroundColor: '#4f46e5', borderRadius: 4 }, { label: 'p95 ms', data: [], backgroundColor: '#a5b4fc', borderRadius: 4, xAxisID: 'ms' }] },
    options: { animation: false, maintainAspectRatio: false, indexAxis: 'y', plugins: { legend: { position: 'bottom' } }, scales: {
      x: { min: 0, max: 100, position: 'top' }, ms: { beginAtZero: true, position: 'bottom' },
      // Long rule names would push the bars off a narrow screen: the axis shows their start, the tooltip all of it.
      y: { ticks: { callback(value) { const label = this.getLabelForValue(value); return label.length > 24 ? `${label.slice(0, 23)}…` : label; } } },
    } },
  });
  return refreshOverview;
}

async function refreshOverview() {
  const [stats, dead] = await Promise.all([api('GET', '/api/stats'), api('GET', '/api/dead-letters')]);
  const attempts = Object.values(stats.outcomes).reduce((sum, count) => sum + count, 0);
  $('#attempts').textContent = String(attempts);
  $('#success-rate').textContent = attempts ? `${Math.round(((stats.outcomes.delivered ?? 0) / attempts) * 1000) / 10} %` : '–';
  const p95 = Math.max(...stats.byTarget.map((target) => target.p95Ms ?? 0), 0);
  $('#p95').textContent = stats.byTarget.length ? fmtMs(p95) : '–';
  $('#dead-total').textContent = String(dead.topics.reduce((sum, topic) => sum + topic.total, 0));
  const recent = stats.perSecond.slice(-120);
  charts.rate.data.labels = recent.map((bucket) => new Date(bucket.at).toLocaleTimeString());
  charts.rate.data.datasets[0].data = recent.map((bucket) => bucket.delivered);
  charts.rate.data.datasets[1].data = recent.map((bucket) => bucket.notDelivered);
  charts.rate.update();
  const targets = stats.byTarget.slice(0, 8);
  charts.success.data.labels = targets.map((target) => `${target.ruleName ?? target.ruleId}`);
  charts.success.data.datasets[0].data = targets.map((target) => Math.round(target.successRate * 1000) / 10);
  charts.success.data.datasets[1].data = targets.map((target) => target.p95Ms);
  charts.success.update();
  const body = $('#targets tbody');
  body.replaceChildren(...(stats.byTarget.length ? stats.byTarget.map((target) => h('tr', {},
    h('td', {}, target.ruleName ?? target.ruleId, h('div', { class: 'sub mono' }, target.ruleId)), h('td', { class: 'mono truncate' }, target.url ?? '–'),
    h('td', { class: 'num' }, target.attempts), h('td', { class: 'num' }, `${Math.round(target.successRate * 1000) / 10} %`), h('td', { class: 'num' }, fmtMs(target.p50Ms)), h('td', { class: 'num' }, fmtMs(target.p95Ms)))) :
    [emptyRow(6, 'No deliveries in the last five minutes', 'Attempts appear here as soon as the dispatcher logs them.')]));
}

// ---------- Event rules ----------
let rulesCache = [];
async function rulesPage() {
  page.replaceChildren(
    pageHead('Event rules', 'Send selected workflow and pipeline events to an HTTP endpoint, signed with Standard Webhooks. A new rule is disabled until you switch it on; every change is published to the event-rules topic, like the rules CLI does.',
      h('button', { class: 'btn danger', id: 'delete-application', onclick: deleteApplicationDialog }, 'Delete an application\'s rules'),
      h('button', { class: 'btn primary', id: 'add-rule', onclick: () => ruleForm() }, '+ Add rule')),
    h('div', { class: 'card' }, h('table', { id: 'rules' },
      h('thead', {}, h('tr', {}, ...['Enabled', 'Rule', 'Application', 'Endpoint', 'Events', 'Scope', ''].map((title) => h('th', {}, title)))), h('tbody'))));
  return refreshRules;
}

async function refreshRules() {
  const { rules } = await api('GET', '/api/rules');
  rulesCache = rules;
  const body = $('#rules tbody');
  if (!body) return;
  if (rules.length === 0) return body.replaceChildren(emptyRow(7, 'No event rules yet', 'Add a rule to start sending workflow events to your endpoint.'));
  body.replaceChildren(...rules.map((rule) => {
    const toggle = h('input', { type: 'checkbox', checked: rule.enabled, 'aria-label': `Enable ${rule.name}`, onchange: async () => {
      toggle.disabled = true;
      try {
        const saved = await api('POST', `/api/rules/${encodeURIComponent(rule.id)}/${toggle.checked ? 'enable' : 'disable'}`);
        if (saved.enabled && saved.warnings.length) toast(undeliverable(rule.name, saved.warnings), 'warn');
        else toast(`${rule.name} ${toggle.checked ? 'enabled' : 'disabled'}`);
      } catch (error) {
        toggle.checked = !toggle.checked;
        toast(error.message, 'bad');
      }
      await refreshRules();
    } });
    return h('tr', { dataset: { ruleId: rule.id } },
      h('td', {}, h('label', { class: 'switch' }, toggle, h('span'))),
      h('td', {}, h('b', {}, rule.name), h('div', { class: 'sub mono' }, rule.id),
        !rule.enabled && rule.disabledReason ? h('div', { class: 'sub disabled-reason', style: 'color:var(--bad)' }, `Disabled: ${rule.disabledReason}`) : null),
      h('td', {}, rule.application),
      h('td', {}, h('div', { class: 'mono truncate', title: rule.url }, rule.url), h('div', { class: 'sub' }, `${FORMAT_LABEL[rule.payloadFormat]} payload`, rule.signatureScheme === 'v1a' ? ' · Ed25519 (v1a)' : '', rule.delegateSelectors.length ? ` · selectors ${rule.delegateSelectors.join(', ')}` : '', rule.rateLimitPerSecond ? ` · ≤ ${rule.rateLimitPerSecond}/s` : '')),
      h('td', { class: 'wrap' }, rule.eventTypes ? rule.eventTypes.map((type) => h('span', { class: 'tag' }, type)) : h('span', { class: 'badge plain' }, 'All events')),
      h('td', {}, scopeText(rule.scope)),
      h('td', {}, h('div', { class: 'actions row-actions' },
        h('button', { class: 'btn small', onclick: () => testRule(rule) }, 'Test'),
        h('button', { class: 'btn small', onclick: () => ruleForm(rule) }, 'Edit'),
        h('button', { class: 'btn small', onclick: () => rotateDialog(rule) }, 'Rotate secret'),
        h('button', { class: 'btn small danger', onclick: () => deleteRule(rule) }, 'Delete'))));
  }));
}

async function testRule(rule) {
  const result = h('div', { id: 'test-result' }, h('p', { class: 'pending' }, `Sending a sample ${rule.eventTypes?.[0] ?? 'workflow_started'} event through the dispatcher…`));
  const live = rule.enabled ? '' : ' The rule is disabled: a Test goes out anyway, events do not until you switch it on.';
  modal(`Test “${rule.name}”`, `A sample event goes to this rule only; its delivery-log record shows what happened.${live}`, result, (close) => [
    h('button', { class: 'btn', onclick: () => { close(); location.hash = `#/logs?deliveryId=${encodeURIComponent(result.dataset.deliveryId ?? '')}`; } }, 'Open in Webhook logs'),
    h('button', { class: 'btn primary', onclick: close }, 'Close')]);
  try {
    const { deliveryId, entry } = await api('POST', `/api/rules/${encodeURIComponent(rule.id)}/test`);
    result.dataset.deliveryId = deliveryId;
    result.replaceChildren(entry ? h('div', { class: 'result-card' },
      h('dl', { class: 'kv' },
        h('dt', {}, 'Outcome'), h('dd', {}, outcomeBadge(entry.outcome)),
        h('dt', {}, 'HTTP status'), h('dd', { id: 'test-status' }, entry.httpStatus ?? '–'),
        h('dt', {}, 'Latency'), h('dd', {}, fmtMs(entry.latencyMs)),
        h('dt', {}, 'Error'), h('dd', {}, entry.error ?? '–'),
        h('dt', {}, 'Delivery id'), h('dd', { class: 'mono' }, deliveryId))) :
      h('div', { class: 'note warn' }, 'No delivery-log record within 30 s: is a dispatcher of this rule\'s pool running?'));
  } catch (error) {
    result.replaceChildren(h('div', { class: 'note bad' }, error.message));
  }
}

function rotateDialog(rule) {
  const own = h('input', { type: 'text', id: 'new-secret', class: 'mono', autocomplete: 'off', spellcheck: false, placeholder: 'whsec_…' });
  const overlap = h('select', { id: 'overlap' }, ...[['1h', '1 hour'], ['24h', '24 hours'], ['7d', '7 days']].map(([value, label]) => h('option', { value, selected: value === '24h' }, label)));
  const ownField = h('div', { class: 'field', style: 'margin-top:14px', hidden: rule.signatureScheme === 'v1a' }, h('label', { for: 'new-secret' }, 'New secret (optional)'), own, h('div', { class: 'hint' }, 'Your own signing key; generated and shown once when left empty.'));
  const scheme = h('select', { id: 'rotate-scheme', onchange: () => { ownField.hidden = scheme.value === 'v1a'; } }, ...catalog.signatureSchemes.map((name) => h('option', { value: name, selected: name === rule.signatureScheme }, SCHEME_LABEL[name] ?? name)));
  modal('Rotate signing key', `A new key signs “${rule.name}” from now on. During the overlap every request carries a signature of the old key too, so receivers can switch without failing — also from HMAC to Ed25519.`,
    h('div', {}, h('div', { class: 'field', style: 'margin-top:14px' }, h('label', { for: 'overlap' }, 'Old key keeps signing for'), overlap),
      h('div', { class: 'field', style: 'margin-top:14px' }, h('label', { for: 'rotate-scheme' }, 'New key'), scheme),
      ownField),
    (close) => [h('button', { class: 'btn', onclick: close }, 'Cancel'), h('button', { class: 'btn primary', id: 'rotate', onclick: async () => {
      close();
      try {
        const mine = scheme.value === 'v1' && own.value.trim();
        const { rule: rotated, secret } = await api('POST', `/api/rules/${encodeURIComponent(rule.id)}/rotate-secret`, { overlap: overlap.value, scheme: scheme.value, ...(mine ? { secret: mine } : {}) });
        const overlapText = overlap.selectedOptions[0].textContent;
        if (rotated.signatureScheme === 'v1a') showPublicKey('New public key', rotated, `Rule “${rule.name}” now signs with a new Ed25519 key; the previous key also signs for ${overlapText}. Give your receiver this public key.`);
        else if (secret) showSecret('New signing secret', secret, `Rule “${rule.name}” now signs with this secret; the previous one also signs for ${overlapText}.`);
        else toast(`${rule.name} now signs with the secret you gave; the previous one also signs for ${overlapText}`);
        await refreshRules();
      } catch (error) {
        toast(error.message, 'bad');
      }
    } }, 'Rotate')]);
}

async function deleteRule(rule) {
  if (!await confirmModal(`Delete “${rule.name}”?`, 'Its pending deliveries are skipped and its endpoint stops receiving events. This cannot be undone.', 'danger solid', 'Delete rule')) return;
  try {
    await api('DELETE', `/api/rules/${encodeURIComponent(rule.id)}`);
    toast(`${rule.name} deleted`);
  } catch (error) {
    toast(error.message, 'bad');
  }
  await refreshRules();
}

function deleteApplicationDialog() {
  const applications = [...new Set(rulesCache.map((rule) => rule.application))].sort();
  if (applications.length === 0) return toast('There are no rules to delete.');
  const select = h('select', { id: 'application-to-delete' }, ...applications.map((application) => h('option', { value: application }, `${application} (${rulesCache.filter((rule) => rule.application === application).length} rules)`)));
  const typed = h('input', { type: 'text', id: 'application-confirm', placeholder: 'type the application id' });
  modal('Delete an application\'s rules', 'Every event rule of the application is deleted, as when Harness deletes an application.',
    h('div', { class: 'form', style: 'margin-top:14px' }, h('div', { class: 'field' }, h('label', {}, 'Application'), select), h('div', { class: 'field' }, h('label', {}, 'Type its id to confirm'), typed)),
    (close) => [h('button', { class: 'btn', onclick: close }, 'Cancel'), h('button', { class: 'btn danger solid', id: 'confirm-application', onclick: async () => {
      if (typed.value !== select.value) return typed.parentElement.classList.add('invalid');
      close();
      try {
        const { deleted } = await api('DELETE', `/api/applications/${encodeURIComponent(select.value)}/rules`);
        toast(`Deleted ${deleted.length} rule(s) of ${select.value}`);
      } catch (error) {
        toast(error.message, 'bad');
      }
      await refreshRules();
    } }, 'Delete rules')]);
}

// The Add/Edit form: every EventRule field; errors come back from the server's checkRule and sit beside their field.
function ruleForm(rule) {
  const editing = Boolean(rule);
  const value = rule ?? { name: '', application: catalog.applications[0] ?? '', url: '', scope: { kind: 'everything', ids: null }, eventTypes: null, headers: {}, delegateSelectors: [], payloadFormat: 'standard', includeUserData: true, rateLimitPerSecond: null, enabled: false };
  const field = (key, label, control, hint) => h('div', { class: 'field', dataset: { field: key } }, h('label', { for: control.matches('input, select') ? control.id : undefined }, label), control, hint ? h('div', { class: 'hint' }, hint) : null, h('div', { class: 'error', hidden: true, 'aria-live': 'polite' }));
  const input = (name, attrs = {}) => h('input', { type: 'text', name, id: `rule-${name}`, ...attrs });

  const scopeChoice = (kind, title, text) => h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'scope-kind', value: kind, checked: value.scope.kind === kind, onchange: syncScope }), h('div', {}, h('b', {}, title), h('span', {}, text)));
  const scopeIds = input('scope-ids', { value: value.scope.ids?.join(', ') ?? '', placeholder: 'ids, comma-separated', 'aria-label': 'Workflow or pipeline ids' });
  const scopeAll = h('input', { type: 'checkbox', id: 'scope-all', checked: value.scope.ids === null, onchange: syncScope });
  const scopeIdsRow = h('div', { class: 'toggle-line', style: 'margin-top:4px' }, h('label', { class: 'toggle-line', style: 'gap:6px;white-space:nowrap' }, scopeAll, h('span', { id: 'scope-all-label' }, 'All')), scopeIds);
  function syncScope() {
    const kind = form.querySelector('input[name=scope-kind]:checked').value;
    scopeIdsRow.hidden = kind === 'everything';
    $('#scope-all-label', scopeIdsRow).textContent = kind === 'workflows' ? 'All workflows' : 'All pipelines';
    scopeIds.disabled = scopeAll.checked;
  }

  const allEvents = h('input', { type: 'checkbox', id: 'events-all', checked: value.eventTypes === null, onchange: () => types.forEach((box) => { box.disabled = allEvents.checked; }) });
  const types = catalog.eventTypes.map((type) => h('input', { type: 'checkbox', value: type, checked: value.eventTypes?.includes(type) ?? false, disabled: value.eventTypes === null }));
  const events = h('div', { class: 'checks' }, h('label', { class: 'all' }, allEvents, 'All events'), ...types.map((box) => h('label', {}, box, box.value)));

  // Header values are write-only: the API shows a saved one as a mask. Its row starts empty; left so, the mask goes
  // back (dataset.kept) and the server keeps the value; typed over, the new value replaces it.
  const headerRows = h('div', { class: 'pairs', id: 'header-rows' });
  const addHeader = (name = '', mask) => headerRows.append(h('div', { class: 'pair', dataset: mask === undefined ? {} : { kept: mask } },
    h('input', { type: 'text', class: 'header-name', value: name, placeholder: 'Header name', 'aria-label': 'Header name' }),
    h('input', { type: 'text', class: 'header-value', value: '', placeholder: mask === undefined ? 'Value' : '•••••• saved, hidden; type to replace', 'aria-label': 'Header value' }),
    h('button', { type: 'button', class: 'btn small ghost', 'aria-label': 'Remove header', onclick: (event) => event.target.closest('.pair').remove() }, '✕')));
  Object.entries(value.headers).forEach(([name, mask]) => addHeader(name, mask));

  // An https endpoint's TLS: a client certificate (mutual TLS) and a CA of its own. The key is write-only, as header
  // values are: a saved one is never shown; left empty it stays, pasted over it is replaced.
  const savedKey = value.tls?.clientKey ?? null;
  const pem = (name, label, text, placeholder) => h('label', { class: 'pem' }, label, h('textarea', { id: `rule-${name}`, class: 'mono', rows: 3, spellcheck: false, autocomplete: 'off', placeholder }, text ?? ''));
  const tlsFields = h('div', { class: 'pems' },
    pem('client-cert', 'Client certificate (PEM)', value.tls?.clientCertificate, '-----BEGIN CERTIFICATE-----'),
    pem('client-key', 'Client key (PEM)', '', savedKey ? '•••••• saved, hidden; paste to replace' : '-----BEGIN PRIVATE KEY-----'),
    pem('ca', 'Trusted CA for the endpoint (PEM)', value.tls?.ca, 'Leave empty to trust the system\'s CAs'));
  const tlsBody = () => {
    const [cert, key, ca] = ['#rule-client-cert', '#rule-client-key', '#rule-ca'].map((id) => $(id, tlsFields).value.trim() || null);
    const clientKey = key ?? (cert && savedKey ? savedKey : null);
    return cert || clientKey || ca ? { clientCertificate: cert, clientKey, ca } : null;
  };

  const enabled = h('input', { type: 'checkbox', id: 'rule-enabled', checked: value.enabled });
  const userData = h('input', { type: 'checkbox', id: 'rule-user-data', checked: value.includeUserData });
  const format = h('select', { id: 'rule-format' }, ...catalog.payloadFormats.map((name) => h('option', { value: name, selected: name === value.payloadFormat }, FORMAT_LABEL[name] ?? name)));
  // A new rule chooses its scheme; an ed25519 key is always generated (never typed in, never shown), so the field for
  // an HMAC secret of one's own goes away with it. An existing rule changes scheme by rotation.
  const scheme = h('select', { id: 'rule-scheme', onchange: () => { ownSecret.hidden = scheme.value === 'v1a'; } }, ...catalog.signatureSchemes.map((name) => h('option', { value: name }, SCHEME_LABEL[name] ?? name)));
  const ownSecret = editing ? null : field('secrets', 'Signing secret (optional)', input('secret', { class: 'mono', autocomplete: 'off', spellcheck: false, placeholder: 'whsec_… — generated when left empty' }), 'Your own signing key, if your receiver already has one; otherwise one is generated and shown once.');
  const keys = editing ? field('keys', 'Signing keys', h('ul', { class: 'keys', id: 'rule-keys' }, ...value.secrets.map((key) => h('li', {},
    h('span', { class: 'mono' }, key.publicKey ? 'ed25519' : 'HMAC', ' · ', key.fingerprint), key.notAfter ? h('span', { class: 'sub' }, ` · signs until ${new Date(key.notAfter).toLocaleString()}`) : null,
    key.publicKey ? h('div', { class: 'secret-box' }, h('code', {}, key.publicKey), copyButton(key.publicKey)) : null))),
  value.signatureScheme === 'v1a' ? 'Receivers verify with the public key; change keys or schemes with Rotate secret.' : 'Secrets are shown once, when made; change them or switch to Ed25519 with Rotate secret.') : null;
  const generalError = h('div', { class: 'note bad', id: 'form-error', hidden: true });

  const form = h('form', { class: 'form', id: 'rule-form', novalidate: true, onsubmit: (event) => { event.preventDefault(); submit(); } },
    generalError,
    h('div', { class: 'row2' }, field('name', 'Name', input('name', { value: value.name, placeholder: 'Production deploys' })),
      field('application', 'Application', input('application', { value: value.application, placeholder: 'application id', disabled: editing }), editing ? null : 'The rule only sees this application\'s events.')),
    editing ? null : field('id', 'Rule id (optional)', input('id', { placeholder: 'derived from the name' })),
    editing ? keys : field('signatureScheme', 'Signature', scheme, 'Both are Standard Webhooks signatures; Ed25519 keeps the means to sign off the receiver\'s side.'),
    ownSecret,
    field('scope', 'Send events of', h('div', { class: 'choices' },
      scopeChoice('everything', 'Send me everything', 'Every workflow and pipeline of the application'),
      scopeChoice('workflows', 'Workflows', 'Specific workflows, or all workflows'),
      scopeChoice('pipelines', 'Pipelines', 'Specific pipelines, or all pipelines'), scopeIdsRow)),
    field('eventTypes', 'Events', events),
    field('url', 'Webhook URL', input('url', { type: 'url', value: value.url, placeholder: 'https://example.com/webhooks' }), 'POSTed with webhook-id, webhook-timestamp and webhook-signature headers.'),
    field('headers', 'Headers', h('div', {}, headerRows, h('button', { type: 'button', class: 'btn small', style: 'margin-top:8px', onclick: () => addHeader() }, '+ Add header')),
      editing ? 'Values are write-only: saved ones are never shown. Leave one empty to keep it, or type a new value.' : 'Sent with every request. Values are write-only: once saved they are never shown again, here or in the logs.'),
    field('tls', 'TLS to the endpoint (optional)', tlsFields, 'For https:// endpoints that require a client certificate (mutual TLS) or use a CA of their own.'),
    field('delegateSelectors', 'Delegate selectors', input('selectors', { value: value.delegateSelectors.join(', '), placeholder: 'e.g. eu-west, ${workflow.id}' }), 'A dispatcher pool with all of these tags sends the requests. Leave empty for any.'),
    h('div', { class: 'row2' }, field('payloadFormat', 'Payload format', format),
      field('rateLimitPerSecond', 'Rate limit (requests / s)', input('rate-limit', { type: 'number', min: '1', value: value.rateLimitPerSecond ?? '', placeholder: 'unlimited' }))),
    field('includeUserData', 'End-user data', h('label', { class: 'toggle-line' }, h('span', { class: 'switch' }, userData, h('span')), h('div', {}, h('b', {}, 'Include who triggered the execution'), h('span', {}, 'Off: payloads carry execution metadata only, as ShareRing\'s do.')))),
    field('enabled', 'Status', h('label', { class: 'toggle-line' }, h('span', { class: 'switch' }, enabled, h('span')), h('div', {}, h('b', {}, editing ? 'Enabled' : 'Enable the rule now'), h('span', {}, editing ? 'Switch off to stop deliveries.' : 'New rules start disabled; you can switch it on later from the list.')))));
  const save = h('button', { class: 'btn primary', id: 'save-rule', onclick: () => submit() }, editing ? 'Save changes' : 'Create rule');
  drawer(editing ? `Edit “${rule.name}”` : 'Add event rule', editing ? `Rule ${rule.id} · ${rule.application}` : 'Harness-style event rule: what to send, where, and how.', form,
    [h('button', { class: 'btn', onclick: closeOverlays }, 'Cancel'), save]);
  syncScope();

  async function submit() {
    // Each attempt shows its own errors only.
    form.querySelectorAll('.field').forEach((node) => { node.classList.remove('invalid'); Object.assign($('.error', node), { hidden: true, textContent: '' }); });
    generalError.hidden = true;
    const showIssues = (issues) => {
      const unplaced = [];
      const byField = new Map();
      for (const issue of issues) {
        const key = issue.field.split('.')[0];
        const holder = form.querySelector(`.field[data-field="${key === 'secret' ? 'secrets' : key}"]`);
        if (!holder) unplaced.push(`${issue.field}: ${issue.reason}`);
        else byField.set(holder, [...(byField.get(holder) ?? []), fieldLabel(issue)]);
      }
      for (const [holder, messages] of byField) {
        holder.classList.add('invalid');
        Object.assign($('.error', holder), { hidden: false }).replaceChildren(...[...new Set(messages)].map((message) => h('div', {}, message)));
      }
      if (unplaced.length) Object.assign(generalError, { hidden: false, textContent: unplaced.join('; ') });
      form.querySelector('.field.invalid')?.scrollIntoView({ block: 'center' });
    };
    // A header row with a value but no name would be lost on the way (no name, no header): say so instead.
    const unnamed = [...headerRows.children].map((row, index) => ({ row, index })).filter(({ row }) => !$('.header-name', row).value.trim() && ($('.header-value', row).value !== '' || row.dataset.kept !== undefined));
    if (unnamed.length) return showIssues(unnamed.map(({ index }) => ({ field: `headers.row ${index + 1}`, reason: 'has no header name; name it or remove the row' })));
    const kind = form.querySelector('input[name=scope-kind]:checked').value;
    const list = (text) => text.split(',').map((item) => item.trim()).filter(Boolean);
    const body = {
      name: $('#rule-name').value.trim(),
      application: $('#rule-application').value.trim(),
      url: $('#rule-url').value.trim(),
      scope: { kind, ids: kind === 'everything' || scopeAll.checked ? null : list(scopeIds.value) },
      eventTypes: allEvents.checked ? null : types.filter((box) => box.checked).map((box) => box.value),
      headers: Object.fromEntries([...headerRows.children].map((row) => {
        const typed = $('.header-value', row).value;
        return [$('.header-name', row).value.trim(), typed === '' && row.dataset.kept !== undefined ? row.dataset.kept : typed];
      }).filter(([name]) => name)),
      delegateSelectors: list($('#rule-selectors').value),
      payloadFormat: format.value,
      includeUserData: userData.checked,
      rateLimitPerSecond: $('#rule-rate-limit').value === '' ? null : Number($('#rule-rate-limit').value),
      tls: tlsBody(),
      enabled: enabled.checked,
    };
    if (!editing && $('#rule-id').value.trim()) body.id = $('#rule-id').value.trim();
    if (!editing) body.signatureScheme = scheme.value;
    if (!editing && scheme.value === 'v1' && $('#rule-secret').value.trim()) body.secret = $('#rule-secret').value.trim();
    save.disabled = true;
    try {
      if (editing) {
        // Based on the copy this form opened with: a change someone made since is answered 409, not overwritten.
        const saved = await api('PUT', `/api/rules/${encodeURIComponent(rule.id)}`, body, { 'if-match': `"${rule.updatedAt}"` });
        closeOverlays();
        if (saved.warnings.length) toast(undeliverable(body.name, saved.warnings), 'warn');
        else toast(`${body.name} saved`);
      } else {
        const created = await api('POST', '/api/rules', body);
        closeOverlays();
        if (created.rule.signatureScheme === 'v1a') showPublicKey('Rule created: its public key', created.rule, `“${created.rule.name}” is ${created.rule.enabled ? 'enabled' : 'disabled: switch it on in the list when your endpoint is ready'}. It signs with Ed25519 (v1a); give your receiver this public key.`, created.warnings);
        else if (!created.secret) toast(created.warnings.length ? undeliverable(created.rule.name, created.warnings) : `${created.rule.name} created; it signs with the secret you gave`, created.warnings.length ? 'warn' : '');
        else showSecret('Rule created: its signing secret', created.secret, `“${created.rule.name}” is ${created.rule.enabled ? 'enabled' : 'disabled: switch it on in the list when your endpoint is ready'}. Receivers verify requests with this secret (any Standard Webhooks library).`, created.warnings);
      }
      await refreshRules();
    } catch (error) {
      const issues = error.body?.issues ?? [];
      if (issues.length) showIssues(issues);
      else Object.assign(generalError, { hidden: false, textContent: error.message });
    } finally {
      save.disabled = false;
    }
  }
}
const fieldLabel = (issue) => (issue.field.includes('.') ? `${issue.field.split('.').slice(1).join('.')}: ${issue.reason}` : `${issue.reason[0].toUpperCase()}${issue.reason.slice(1)}`);

// ---------- Webhook logs ----------
// The filters live in the page's URL (#/logs?rule=…), so a reload or a shared link shows the same attempts.
// `since`: minutes back from now, or `custom` for the range `from`–`to` (local date-times, either end open).
const logFilters = { rule: '', outcome: '', status: '', endpoint: '', eventType: '', eventId: '', deliveryId: '', since: '', from: '', to: '' };
/** The pages of older attempts the operator walked to: the cursor each one started at (the newest page has none). */
let logCursors = [];
async function logsPage(params) {
  Object.assign(logFilters, Object.fromEntries(Object.keys(logFilters).map((key) => [key, params.get(key) ?? ''])));
  logCursors = [];
  const changed = (key, value) => {
    logFilters[key] = value;
    if (key === 'since') document.querySelectorAll('.custom-range').forEach((label) => { label.hidden = value !== 'custom'; });
    logCursors = [];
    const query = new URLSearchParams(Object.entries(logFilters).filter(([, given]) => given));
    history.replaceState(null, '', `#/logs${query.size ? `?${query}` : ''}`);
    refreshLogs();
  };
  const select = (key, label, options) => h('label', {}, label, h('select', { id: `filter-${key}`, onchange: (event) => changed(key, event.target.value) },
    h('option', { value: '' }, 'All'), ...options.map(([optionValue, text]) => h('option', { value: optionValue, selected: logFilters[key] === optionValue }, text))));
  const text = (key, label, placeholder) => h('label', {}, label, h('input', { type: 'search', id: `filter-${key}`, value: logFilters[key], placeholder, onchange: (event) => changed(key, event.target.value.trim()) }));
  const walk = (id, label, move) => h('button', { class: 'btn', id, disabled: true, onclick: () => { move(); refreshLogs(); } }, label);
  const { rules } = await api('GET', '/api/rules');
  page.replaceChildren(
    pageHead('Webhook logs', 'Every delivery attempt: what was sent, what the endpoint answered, and how long it took. Click an attempt for its request and response.',
      h('button', { class: 'btn', id: 'resend-view', onclick: () => resendMatching('Send these deliveries again?', apiFilters(), false, 'deliveries match these filters') }, 'Resend these…')),
    h('div', { class: 'note', id: 'log-window', style: 'margin-bottom:14px' }, 'Loading…'),
    h('div', { class: 'card' },
      h('div', { class: 'filters' },
        select('rule', 'Rule', rules.map((rule) => [rule.id, rule.name])),
        select('outcome', 'Status', Object.entries(OUTCOME_LABEL)),
        select('status', 'HTTP', [['2xx', '2xx'], ['3xx', '3xx'], ['4xx', '4xx'], ['5xx', '5xx']]),
        // The rules' URLs as logged, and the one the link came with (an endpoint no rule uses any more).
        select('endpoint', 'Endpoint', [...new Set([...rules.map((rule) => { try { const url = new URL(rule.url); return `${url.origin}${url.pathname}`; } catch { return rule.url; } }), logFilters.endpoint].filter(Boolean))].map((url) => [url, url])),
        select('eventType', 'Event type', catalog.eventTypes.map((type) => [type, type])),
        text('eventId', 'Event id', 'id or its start'), text('deliveryId', 'Delivery / webhook id', 'msg_…'),
        select('since', 'Time', [['5', 'Last 5 minutes'], ['60', 'Last hour'], ['1440', 'Last 24 hours'], ['10080', 'Last 7 days'], ['43200', 'Last 30 days'], ['custom', 'Custom range…']]),
        ...[['from', 'From'], ['to', 'To']].map(([key, label]) => h('label', { class: 'custom-range', hidden: logFilters.since !== 'custom' }, label,
          h('input', { type: 'datetime-local', id: `filter-${key}`, value: logFilters[key], onchange: (event) => changed(key, event.target.value) })))),
      h('table', { id: 'logs' }, h('thead', {}, h('tr', {}, ...['Time', 'Event', 'Endpoint', 'Status', 'HTTP', 'Latency', 'Attempt', 'Rule'].map((title) => h('th', {}, title)))), h('tbody')),
      h('div', { class: 'pager' }, h('span', { id: 'log-count', class: 'pending' }),
        walk('logs-newest', 'Newest', () => { logCursors = []; }), walk('logs-newer', '← Newer', () => { logCursors.pop(); }), walk('logs-older', 'Older →', () => { logCursors.push($('#logs-older').dataset.cursor); }))));
  return refreshLogs;
}

const LOG_PAGE = 100;
const fmtAge = (ms) => (ms >= 86_400_000 ? `${+(ms / 86_400_000).toFixed(1)} days` : ms >= 3_600_000 ? `${+(ms / 3_600_000).toFixed(1)} hours` : `${Math.round(ms / 60_000)} minutes`);
const kept = ({ maxAgeMs, maxBytes }) => `It keeps ${fmtAge(maxAgeMs)} of attempts, up to ${fmtBytes(maxBytes)}.`;
const attempts = (count) => `${count.toLocaleString()} attempt${count === 1 ? '' : 's'}`;
/** The page's filters as the API takes them: an event id finds every event whose id starts with it (the exact id among them). */
function apiFilters() {
  const filters = Object.fromEntries(Object.entries(logFilters).filter(([key, value]) => value && !['since', 'from', 'to', 'eventId'].includes(key)));
  if (logFilters.eventId) filters.eventIdPrefix = logFilters.eventId;
  if (logFilters.since === 'custom') {
    const at = (local) => (local ? new Date(local).getTime() : NaN);
    if (!Number.isNaN(at(logFilters.from))) filters.since = at(logFilters.from);
    // To the end of the minute named.
    if (!Number.isNaN(at(logFilters.to))) filters.until = at(logFilters.to) + 59_999;
  } else if (logFilters.since) filters.since = Date.now() - Number(logFilters.since) * 60_000;
  return filters;
}

/**
 * Sends again the deliveries `filters` match (only those given up on, with `failedOnly`): says how many first, and
 * sends only once the operator agrees.
 */
async function resendMatching(title, filters, failedOnly, what) {
  const { deliveries, more } = await api('POST', '/api/deliveries/resend', { filters, failedOnly, dryRun: true });
  if (deliveries === 0) return toast(`No ${what} to send again`, 'bad');
  const count = `${deliveries.toLocaleString()} ${deliveries === 1 ? 'delivery' : 'deliveries'}`;
  const text = `${count} ${more ? '(the newest; more match, send again for the rest) ' : ''}will be sent again: each with its delivery id, so receivers de-duplicate, the next attempt number and the whole retry schedule.`;
  if (!(await confirmModal(title, text, 'primary', `Send ${count}`))) return;
  try {
    const { resent, refused } = await api('POST', '/api/deliveries/resend', { filters, failedOnly });
    toast(`Sent again: ${resent.toLocaleString()}${refused.length ? `; not sent ${refused.length}: ${refused[0].why}` : ''}`, refused.length ? 'bad' : '');
  } catch (error) {
    toast(error.message, 'bad');
  }
}

async function refreshLogs() {
  const query = new URLSearchParams({ limit: String(LOG_PAGE), ...apiFilters() });
  if (logCursors.length) query.set('cursor', logCursors.at(-1));
  const { history: held, entries, count, countCapped, next } = await api('GET', `/api/logs?${query}`);
  const note = $('#log-window');
  if (!note) return;
  note.textContent = held.oldestAt
    ? `The history holds ${attempts(held.attempts)} since ${fmtTime(held.oldestAt)} (${fmtBytes(held.bytes)} on disk). ${kept(held)}`
    : `The history holds no attempts yet: they appear here as soon as a dispatcher logs them. ${kept(held)}`;
  const first = logCursors.length * LOG_PAGE;
  $('#log-count').textContent = count ? `${(first + 1).toLocaleString()}–${(first + entries.length).toLocaleString()} of ${countCapped ? `more than ${attempts(count)}` : attempts(count)}` : '';
  Object.assign($('#logs-older'), { disabled: !next }).dataset.cursor = next ?? '';
  $('#logs-newer').disabled = logCursors.length === 0;
  $('#logs-newest').disabled = logCursors.length === 0;
  const body = $('#logs tbody');
  const selected = body.querySelector('tr.selected')?.dataset.key;
  body.replaceChildren(...(entries.length ? entries.map((entry) => {
    const key = `${entry.deliveryId}/${entry.attempt}`;
    const open = (event) => {
      body.querySelectorAll('tr.selected').forEach((row) => row.classList.remove('selected'));
      event.currentTarget.classList.add('selected');
      attemptDrawer(entry);
    };
    return h('tr', { class: `clickable attempt${key === selected ? ' selected' : ''}`, tabindex: '0', 'aria-label': `Attempt ${entry.attempt} of ${entry.eventType} to ${entry.ruleName ?? entry.ruleId}: ${attemptLabel(entry)}`,
      dataset: { key, deliveryId: entry.deliveryId, outcome: entry.outcome }, onclick: open,
      onkeydown: (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); open(event); } } },
      h('td', { class: 'mono' }, fmtTime(entry.attemptedAt)), h('td', {}, h('span', { class: 'tag' }, entry.eventType), h('div', { class: 'sub mono truncate' }, entry.eventId)),
      h('td', { class: 'mono truncate', title: entry.url ?? '' }, entry.url ?? '–'), h('td', {}, attemptBadge(entry)),
      h('td', { class: 'num' }, entry.httpStatus ?? '–'), h('td', { class: 'num' }, fmtMs(entry.latencyMs)),
      h('td', { class: 'num', title: entry.deferral ? `Attempt ${entry.attempt} was put off: nothing was sent` : '' }, entry.deferral ? h('span', { class: 'pending' }, `(${entry.attempt})`) : entry.attempt),
      h('td', {}, entry.ruleName ?? entry.ruleId));
  }) : [emptyRow(8, 'No attempts match', 'Deliveries appear here as soon as the dispatcher logs them; try widening the filters.')]));
}

const prettyBody = (text) => { try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; } };
/** A body the log kept only the start of: how much of how much. */
const truncatedBadge = (part) => (part?.bodyTruncated
  ? h('span', { class: 'badge plain' }, part.bodyBytes ? `first ${fmtBytes(new TextEncoder().encode(part.body).length)} of ${fmtBytes(part.bodyBytes)}` : 'body truncated')
  : null);
/** The whole body's size and SHA-256, to match a receiver's copy against. */
const bodyDigest = (part) => (part?.bodySha256 ? h('p', { class: 'pending mono', style: 'margin-top:6px' }, `${fmtBytes(part.bodyBytes)} · SHA-256 ${part.bodySha256}`) : null);
const fmtBytes = (bytes) => (bytes < 1024 ? `${bytes} B` : bytes < 1024 ** 2 ? `${(bytes / 1024).toFixed(1)} kB` : bytes < 1024 ** 3 ? `${(bytes / 1024 ** 2).toFixed(2)} MB` : `${+(bytes / 1024 ** 3).toFixed(2)} GB`);
const headerTable = (headers) => h('dl', { class: 'kv' }, ...Object.entries(headers).sort(([a], [b]) => a.localeCompare(b)).flatMap(([name, value]) => [h('dt', { class: 'mono' }, name), h('dd', { class: 'mono' }, value)]));

/**
 * After a Resend or Replay: waits (up to 20 s) for the delivery's next attempt to reach the history, then shows it in
 * the drawer and the list beneath, so the operator sees what it did without a reload.
 */
async function followUp(deliveryId, known) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { entries } = await api('GET', `/api/logs?deliveryId=${encodeURIComponent(deliveryId)}&limit=1`).catch(() => ({ entries: [] }));
    const [newest] = entries;
    if (newest && newest.attempt > known) {
      if (!$('.drawer')) return;
      if (document.body.dataset.page === 'logs') await refreshLogs();
      closeOverlays();
      return attemptDrawer(newest);
    }
  }
}

async function attemptDrawer(summary) {
  const entry = await api('GET', `/api/logs/${encodeURIComponent(summary.deliveryId)}/${summary.attempt}`);
  const { entries: all } = await api('GET', `/api/logs?deliveryId=${encodeURIComponent(entry.deliveryId)}&limit=50`);
  const last = Math.max(...all.map((attempt) => attempt.attempt), entry.attempt);
  const actions = [];
  if (entry.outcome === 'delivered' || entry.outcome === 'failed') actions.push(h('button', { class: 'btn primary', id: 'resend', onclick: async (event) => {
    try {
      event.currentTarget.disabled = true;
      const { attempt } = await api('POST', `/api/deliveries/${encodeURIComponent(entry.deliveryId)}/resend`);
      toast(`Resent as attempt ${attempt}, with the same delivery id`);
      await followUp(entry.deliveryId, last);
    } catch (error) { toast(error.message, 'bad'); }
  } }, 'Resend'));
  if (entry.outcome === 'dead_lettered') actions.push(h('button', { class: 'btn primary', id: 'replay', onclick: async (event) => {
    try {
      event.currentTarget.disabled = true;
      const { replayed, refused } = await api('POST', '/api/dead-letters/replay', { deliveryId: entry.deliveryId });
      toast(replayed ? 'Replayed from the dead-letter topic with the same delivery id' : `Not replayed: ${refused.map((item) => item.why).join('; ')}`, replayed ? '' : 'bad');
      if (replayed) await followUp(entry.deliveryId, last);
    } catch (error) { toast(error.message, 'bad'); }
  } }, 'Replay'));
  const request = entry.request;
  const response = entry.response;
  drawer(`${entry.eventType} → ${entry.ruleName ?? entry.ruleId}`, `Delivery ${entry.deliveryId} · ${entry.deferral ? `attempt ${entry.attempt} put off` : `attempt ${entry.attempt}`}`, h('div', { id: 'attempt-details' },
    h('dl', { class: 'kv' },
      h('dt', {}, 'Status'), h('dd', {}, attemptBadge(entry), entry.httpStatus ? ` HTTP ${entry.httpStatus}` : ''),
      h('dt', {}, 'Endpoint'), h('dd', { class: 'mono' }, entry.url ?? '–'),
      h('dt', {}, 'Event'), h('dd', { class: 'mono' }, `${entry.eventType} · ${entry.eventId}`),
      h('dt', {}, 'Rule'), h('dd', {}, `${entry.ruleName ?? ''} (${entry.ruleId})`),
      h('dt', {}, 'Pool'), h('dd', {}, entry.pool ?? '–'),
      h('dt', {}, 'Trace'), h('dd', { class: 'mono', id: 'trace-id', title: 'The W3C trace id: find the producer\'s span, the match, each attempt and its wait under it in your tracing backend' }, entry.traceId ?? '– (the event carried no trace context)'),
      entry.error ? [h('dt', {}, 'Error'), h('dd', { style: 'color:var(--bad)' }, entry.error)] : null),
    h('div', { class: 'section' }, h('h3', {}, 'Timings'), h('dl', { class: 'kv', id: 'timings' },
      h('dt', {}, 'Attempted at'), h('dd', {}, new Date(entry.attemptedAt).toISOString()),
      h('dt', {}, 'Latency'), h('dd', {}, fmtMs(entry.latencyMs)),
      h('dt', {}, 'Next attempt'), h('dd', {}, entry.nextAttemptAt ? new Date(entry.nextAttemptAt).toISOString() : '–'))),
    h('div', { class: 'section', id: 'request' }, h('h3', {}, 'Request', truncatedBadge(request)), request ? [headerTable(request.headers), h('pre', { class: 'code', style: 'margin-top:10px', id: 'request-body' }, prettyBody(request.body)), bodyDigest(request)] :
      h('p', { class: 'pending' }, 'No request recorded: nothing was sent in this attempt, or the record predates request logging.')),
    h('div', { class: 'section', id: 'response' }, h('h3', {}, 'Response', truncatedBadge(response)),
      response ? [headerTable(response.headers), h('pre', { class: 'code', style: 'margin-top:10px', id: 'response-body' }, response.body ? prettyBody(response.body) : '(empty body)'), bodyDigest(response)] :
        h('p', { class: 'pending' }, 'No response recorded: none arrived, or the record predates response logging.')),
    h('div', { class: 'section' }, h('h3', {}, `All attempts of this delivery (${all.length})`), h('div', { class: 'timeline' },
      ...all.slice().reverse().map((attempt) => h('span', { class: `badge ${attempt.deferral ? 'deferred' : attempt.outcome}`, title: `${new Date(attempt.attemptedAt).toISOString()}${attempt.error ? ` · ${attempt.error}` : ''}` },
        `#${attempt.attempt} ${attemptLabel(attempt)}${attempt.httpStatus ? ` ${attempt.httpStatus}` : ''}`))))),
  [h('button', { class: 'btn', onclick: closeOverlays }, 'Close'), ...actions]);
}

// ---------- Endpoints ----------
const WINDOWS = [['5m', '5 min'], ['1h', '1 hour'], ['24h', '24 hours'], ['7d', '7 days']];
let endpointWindow = '1h';
async function endpointsPage(params) {
  endpointWindow = WINDOWS.some(([key]) => key === params.get('window')) ? params.get('window') : '1h';
  const choose = (key) => {
    endpointWindow = key;
    history.replaceState(null, '', `#/endpoints?window=${key}`);
    document.querySelectorAll('#window button').forEach((button) => button.setAttribute('aria-pressed', String(button.dataset.window === key)));
    refreshEndpoints();
  };
  page.replaceChildren(
    pageHead('Endpoints', 'Every URL your rules send to, and how it has answered: success rate and latency of the attempts made (deferrals are not attempts), since when it fails, and its circuit breaker as the delivery log last showed it.',
      h('div', { class: 'segmented', id: 'window', role: 'group', 'aria-label': 'Time window' },
        ...WINDOWS.map(([key, label]) => h('button', { dataset: { window: key }, 'aria-pressed': String(key === endpointWindow), onclick: () => choose(key) }, label)))),
    h('div', { class: 'card' }, h('table', { id: 'endpoints' },
      h('thead', {}, h('tr', {}, ...['Endpoint', 'Success', 'p50 / p95', 'Attempts', 'Failing since', 'Last success', 'Last error', 'Breaker', ''].map((title) => h('th', {}, title)))), h('tbody'))));
  return refreshEndpoints;
}

const rateClass = (rate) => (rate === null ? '' : rate >= 0.99 ? 'good' : rate >= 0.9 ? 'poor' : 'bad');
async function refreshEndpoints() {
  const { endpoints } = await api('GET', '/api/endpoints');
  const body = $('#endpoints tbody');
  if (!body) return;
  const logsOf = (url, extra = '') => `#/logs?endpoint=${encodeURIComponent(url)}${extra}`;
  body.replaceChildren(...(endpoints.length ? endpoints.map((endpoint) => {
    const stats = endpoint.windows[endpointWindow];
    const disabled = endpoint.rules.filter((rule) => !rule.enabled);
    return h('tr', { dataset: { url: endpoint.url } },
      h('td', {}, h('a', { class: 'mono', href: logsOf(endpoint.url), title: `${endpoint.url}: its attempts in Webhook logs` }, endpoint.url),
        h('div', { class: 'sub' }, endpoint.rules.length ? `Used by ${endpoint.rules.map((rule) => rule.name).join(', ')}` : 'No rule sends here now'),
        ...disabled.map((rule) => h('div', { class: 'sub disabled-reason', style: 'color:var(--bad)' }, `${rule.name} disabled${rule.disabledReason ? `: ${rule.disabledReason}` : ''}`))),
      h('td', { class: 'num' }, stats.successRate === null ? '–' : h('span', { class: `rate ${rateClass(stats.successRate)}` }, `${Math.round(stats.successRate * 1000) / 10} %`)),
      h('td', { class: 'num' }, stats.p50Ms === null ? '–' : `${fmtMs(stats.p50Ms)} / ${fmtMs(stats.p95Ms)}`),
      h('td', { class: 'num' }, stats.sent ? h('a', { href: logsOf(endpoint.url, `&since=${{ '5m': 5, '1h': 60, '24h': 1440, '7d': 10080 }[endpointWindow]}`) }, stats.sent.toLocaleString()) : '0'),
      h('td', {}, endpoint.failingSince ? h('a', { href: logsOf(endpoint.url, '&outcome=retrying'), style: 'color:var(--bad)', class: 'failing-since' }, fmtTime(endpoint.failingSince)) : '–'),
      h('td', {}, fmtTime(endpoint.lastSuccessAt)),
      h('td', {}, endpoint.lastErrorAt ? [h('div', {}, fmtTime(endpoint.lastErrorAt)), h('div', { class: 'sub last-error', title: endpoint.lastError ?? '' }, endpoint.lastError ?? '')] : '–'),
      h('td', {}, endpoint.breaker === 'open' ? h('span', { class: 'badge failed', title: `Deferring since ${fmtTime(endpoint.breakerOpenAt)}` }, 'Open') : endpoint.breaker === 'closed' ? h('span', { class: 'badge delivered' }, 'Closed') : '–'),
      h('td', {}, h('button', { class: 'btn small', 'aria-label': `Recover ${endpoint.url}`, onclick: () => recoverDialog(endpoint) }, 'Recover…')));
  }) : [emptyRow(9, 'No endpoints yet', 'An endpoint appears here once a rule sends to it.')]));
}

/** A local date-time input's value for `ms`. */
const localInput = (ms) => { const date = new Date(ms); date.setMinutes(date.getMinutes() - date.getTimezoneOffset()); return date.toISOString().slice(0, 16); };
/** Recover: resend everything given up on for this endpoint (or one of its rules) since a time, counted before it goes. */
function recoverDialog(endpoint) {
  const since = h('input', { type: 'datetime-local', id: 'recover-since', value: localInput(endpoint.failingSince ?? Date.now() - 86_400_000) });
  const rule = h('select', { id: 'recover-rule' }, h('option', { value: '' }, 'Every rule sending here'), ...endpoint.rules.map((each) => h('option', { value: each.id }, each.name)));
  const preview = h('p', { id: 'recover-count', class: 'pending' }, 'Counting…');
  const filters = () => ({ endpoint: endpoint.url, ...(rule.value ? { rule: rule.value } : {}), since: new Date(since.value).getTime() });
  const count = async () => {
    if (Number.isNaN(filters().since)) return (preview.textContent = 'Choose a time');
    const { deliveries, more } = await api('POST', '/api/deliveries/resend', { filters: filters(), failedOnly: true, dryRun: true });
    preview.textContent = `${deliveries.toLocaleString()}${more ? '+' : ''} ${deliveries === 1 ? 'delivery' : 'deliveries'} failed or dead-lettered since then will be sent again.`;
    preview.dataset.count = String(deliveries);
  };
  since.addEventListener('change', count);
  rule.addEventListener('change', count);
  modal('Recover failed deliveries', `Everything given up on for ${endpoint.url} since a time goes again, each with its delivery id, the next attempt number and the whole retry schedule.`,
    h('div', { class: 'form-grid' }, h('label', {}, 'Since', since), h('label', {}, 'Rule', rule), preview),
    (close) => [h('button', { class: 'btn', onclick: close }, 'Cancel'), h('button', { class: 'btn primary', id: 'recover-send', onclick: async () => {
      if (!Number(preview.dataset.count)) return toast('Nothing to recover in that time', 'bad');
      try {
        const { resent, refused } = await api('POST', '/api/deliveries/resend', { filters: filters(), failedOnly: true });
        close();
        toast(`Recovered: ${resent.toLocaleString()} sent again${refused.length ? `; not sent ${refused.length}: ${refused[0].why}` : ''}`, refused.length ? 'bad' : '');
      } catch (error) { toast(error.message, 'bad'); }
    } }, 'Send them again')]);
  count().catch((error) => { preview.textContent = error.message; });
}

// ---------- Dead letters ----------
const selectedDead = new Set();
async function deadLettersPage() {
  selectedDead.clear();
  page.replaceChildren(
    pageHead('Dead letters', 'Records a service could not process, kept with the reason. Deliveries can be replayed: they go back to their rule\'s pool with the same delivery id, so receivers still de-duplicate.',
      h('select', { id: 'replay-rule', style: 'width:220px', 'aria-label': 'Rule to replay' }, h('option', { value: '' }, 'Replay all of a rule…')),
      h('button', { class: 'btn', id: 'replay-rule-button', onclick: async () => {
        const ruleId = $('#replay-rule').value;
        if (!ruleId) return toast('Choose a rule first', 'bad');
        if (await confirmModal('Replay every dead-lettered delivery of this rule?', `Rule ${ruleId}: each goes back with its delivery id and the whole retry schedule again.`, 'primary', 'Replay')) replay({ ruleId });
      } }, 'Replay rule'),
      h('button', { class: 'btn primary', id: 'replay-selected', onclick: () => replay({ positions: [...selectedDead] }) }, 'Replay selected')),
    h('div', { id: 'dead-topics' }));
  return refreshDeadLetters;
}

async function replay(selection) {
  if (selection.positions && selection.positions.length === 0) return toast('Select records to replay first', 'bad');
  try {
    const { replayed, refused } = await api('POST', '/api/dead-letters/replay', selection);
    toast(`Replayed ${replayed}${refused.length ? `; not replayed ${refused.length}: ${refused[0].why}` : ''}`, refused.length ? 'bad' : '');
    selectedDead.clear();
    await refreshDeadLetters();
  } catch (error) {
    toast(error.message, 'bad');
  }
}

async function refreshDeadLetters() {
  const { topics, capacity } = await api('GET', '/api/dead-letters');
  const holder = $('#dead-topics');
  if (!holder) return;
  const ruleSelect = $('#replay-rule');
  const chosen = ruleSelect.value;
  const deliveryRules = [...new Set(topics.filter((topic) => topic.replayable).flatMap((topic) => topic.records.map((record) => record.command?.ruleId).filter(Boolean)))].sort();
  ruleSelect.replaceChildren(h('option', { value: '' }, 'Replay all of a rule…'), ...deliveryRules.map((ruleId) => h('option', { value: ruleId, selected: ruleId === chosen }, ruleId)));
  holder.replaceChildren(...topics.map((topic) => h('div', { class: 'card', dataset: { topic: topic.topic } },
    h('div', { class: 'card-head' }, h('div', {}, h('h2', { class: 'mono' }, topic.topic), h('p', {}, `${topic.holds}. ${topic.total} record(s)${topic.total > capacity ? `; the latest ${capacity} are shown` : ''}.`)),
      h('span', { class: `badge ${topic.total ? 'failed' : 'delivered'}` }, topic.total ? `${topic.total} dead-lettered` : 'Empty')),
    topic.records.length === 0 ? null : h('table', {},
      h('thead', {}, h('tr', {}, topic.replayable ? h('th', { style: 'width:32px' }) : null, ...(topic.replayable ? ['Dead-lettered', 'Rule', 'Event', 'Attempts', 'Reason', 'Error'] : ['Dead-lettered', 'Key', 'From', 'Service', 'Reason', 'Error']).map((title) => h('th', {}, title)))),
      h('tbody', {}, ...topic.records.map((record) => {
        const position = `${record.topic}:${record.partition}:${record.offset}`;
        const check = topic.replayable ? h('td', {}, h('input', { type: 'checkbox', 'aria-label': `Select ${position}`, checked: selectedDead.has(position), disabled: !record.command, onchange: (event) => (event.target.checked ? selectedDead.add(position) : selectedDead.delete(position)) })) : null;
        const reason = h('td', {}, h('span', { class: 'badge failed' }, record.reason));
        const error = h('td', { class: 'truncate', title: record.error }, record.error || '–');
        return topic.replayable
          ? h('tr', { dataset: { position } }, check, h('td', { class: 'mono' }, fmtTime(record.at)), h('td', {}, record.command?.ruleId ?? '–'),
            h('td', {}, record.command ? [h('span', { class: 'tag' }, record.command.event.type), h('div', { class: 'sub mono' }, record.command.event.eventId)] : 'undecodable'),
            h('td', { class: 'num' }, record.command?.attempt ?? '–'), reason, error)
          : h('tr', { dataset: { position } }, h('td', { class: 'mono' }, fmtTime(record.at)), h('td', { class: 'mono' }, record.key ?? '–'), h('td', { class: 'mono' }, record.sourceTopic ?? '–'), h('td', {}, record.service ?? '–'), reason, error);
      }))))));
  const total = topics.reduce((sum, topic) => sum + topic.total, 0);
  $('#nav-dead').hidden = total === 0;
  $('#nav-dead').textContent = String(total);
}

// ---------- routing ----------
const pages = { overview, rules: rulesPage, logs: logsPage, endpoints: endpointsPage, 'dead-letters': deadLettersPage };
async function route() {
  clearInterval(timer);
  closeOverlays();
  $('#toasts').replaceChildren();
  const [name, search] = (location.hash.slice(2) || 'rules').split('?');
  const render = pages[name] ?? rulesPage;
  document.querySelectorAll('.nav a').forEach((link) => link.classList.toggle('active', link.dataset.page === (pages[name] ? name : 'rules')));
  try {
    const refresh = await render(new URLSearchParams(search ?? ''));
    await refresh();
    document.body.dataset.page = name;
    // Live pages poll; the rules list too, but not while a form or dialog is open over it.
    timer = setInterval(() => { if (!document.querySelector('.drawer, .modal')) refresh().catch((error) => console.error(error)); }, 3000);
  } catch (error) {
    if (error.status !== 401) page.replaceChildren(h('div', { class: 'note bad' }, `Could not load this page: ${error.message}`));
  }
}

$('#logout').addEventListener('click', async (event) => {
  event.preventDefault();
  await api('DELETE', '/api/session').catch(() => undefined);
  location.assign('/login');
});
window.addEventListener('hashchange', route);
// Back to a page kept from before Sign out: load it again, so the server sends the login instead.
window.addEventListener('pageshow', (event) => { if (event.persisted) location.reload(); });
(async () => {
  ({ csrfToken } = await api('GET', '/api/session'));
  catalog = await api('GET', '/api/catalog');
  await route();
})();
