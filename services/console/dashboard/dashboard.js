// The dashboard's browser side: polls the console's JSON API every 2 s and redraws (no build step, no framework).
'use strict';

const $ = (selector) => document.querySelector(selector);
const text = (value) => (value === null || value === undefined ? '–' : String(value));
const cell = (value, className) => {
  const td = document.createElement('td');
  td.textContent = text(value);
  if (className) td.className = className;
  td.title = text(value);
  return td;
};
/** Replaces a table body with one full-width row saying why it is empty. */
const emptyState = (body, message, columns) => {
  const td = cell(message, 'empty');
  td.colSpan = columns;
  body.insertRow().append(td);
};
const label = (target) => `${target.ruleName ?? target.ruleId} → ${target.url ?? '?'}`;
const getJson = async (path) => (await fetch(path, { cache: 'no-store' })).json();

const rateChart = new Chart($('#rate-chart'), {
  type: 'line',
  data: { labels: [], datasets: [
    { label: 'delivered', data: [], borderColor: '#1a7f37', backgroundColor: '#1a7f3733', fill: true, pointRadius: 0 },
    { label: 'not delivered', data: [], borderColor: '#cf222e', backgroundColor: '#cf222e33', fill: true, pointRadius: 0 },
  ] },
  options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
});
const successChart = new Chart($('#success-chart'), {
  type: 'bar',
  data: { labels: [], datasets: [{ label: 'success rate %', data: [], backgroundColor: '#1a7f37' }] },
  options: { animation: false, indexAxis: 'y', scales: { x: { min: 0, max: 100 } } },
});
const latencyChart = new Chart($('#latency-chart'), {
  type: 'bar',
  data: { labels: [], datasets: [{ label: 'p50', data: [], backgroundColor: '#0969da' }, { label: 'p95', data: [], backgroundColor: '#8250df' }] },
  options: { animation: false, indexAxis: 'y' },
});

async function refreshStats() {
  const [stats, deadLetters] = await Promise.all([getJson('/api/stats'), getJson('/api/dead-letters')]);
  const recent = stats.perSecond.slice(-120);
  rateChart.data.labels = recent.map((bucket) => new Date(bucket.at).toLocaleTimeString());
  rateChart.data.datasets[0].data = recent.map((bucket) => bucket.delivered);
  rateChart.data.datasets[1].data = recent.map((bucket) => bucket.notDelivered);
  rateChart.update();
  const targets = stats.byTarget.slice(0, 10);
  successChart.data.labels = latencyChart.data.labels = targets.map(label);
  successChart.data.datasets[0].data = targets.map((target) => Math.round(target.successRate * 1000) / 10);
  latencyChart.data.datasets[0].data = targets.map((target) => target.p50Ms);
  latencyChart.data.datasets[1].data = targets.map((target) => target.p95Ms);
  successChart.update();
  latencyChart.update();
  const attempts = Object.values(stats.outcomes).reduce((sum, count) => sum + count, 0);
  $('#attempts').textContent = String(attempts);
  $('#success-rate').textContent = attempts ? `${Math.round(((stats.outcomes.delivered ?? 0) / attempts) * 1000) / 10} %` : '–';
  $('#dlq-deliveries').textContent = String(deadLetters.deliveries);
  $('#dlq-events').textContent = String(deadLetters.events);
  $('#dlq-rules').textContent = String(deadLetters.rules);
  $('#dlq-pools').textContent = String(deadLetters.pools);
}

async function refreshLogs() {
  const query = new URLSearchParams();
  if ($('#filter-rule').value) query.set('rule', $('#filter-rule').value);
  if ($('#filter-outcome').value) query.set('outcome', $('#filter-outcome').value);
  if ($('#filter-since').value) query.set('since', String(Date.now() - Number($('#filter-since').value) * 60_000));
  const { entries } = await getJson(`/api/logs?${query}`);
  const body = $('#logs tbody');
  body.replaceChildren();
  if (entries.length === 0) return emptyState(body, 'No deliveries yet: attempts appear here as soon as the dispatcher logs them.', 8);
  for (const entry of entries) {
    const row = body.insertRow();
    row.className = 'attempt';
    row.dataset.deliveryId = entry.deliveryId;
    row.append(
      cell(new Date(entry.attemptedAt).toISOString()), cell(entry.eventType), cell(entry.url),
      cell(entry.outcome, `outcome ${entry.outcome}`), cell(entry.httpStatus), cell(entry.latencyMs === null ? null : `${entry.latencyMs} ms`),
      cell(entry.attempt), cell(entry.ruleName ?? entry.ruleId),
    );
    row.addEventListener('click', async () => {
      const attempt = await getJson(`/api/attempt?deliveryId=${encodeURIComponent(entry.deliveryId)}&attempt=${entry.attempt}`);
      $('#details').hidden = false;
      $('#details-body').textContent = JSON.stringify(attempt, null, 2);
    });
  }
}

async function refreshRules() {
  const rules = await getJson('/api/rules');
  const select = $('#filter-rule');
  const chosen = select.value;
  select.replaceChildren(new Option('all', ''), ...rules.map((rule) => new Option(rule.name, rule.id)));
  select.value = chosen;
  const body = $('#rules tbody');
  body.replaceChildren();
  if (rules.length === 0) emptyState(body, 'No rules yet: add one with `npm run rules -- put …`.', 7);
  for (const rule of rules) {
    body.insertRow().append(
      cell(rule.id), cell(rule.name), cell(rule.application), cell(rule.enabled ? 'yes' : `no${rule.disabledReason ? ` (${rule.disabledReason})` : ''}`),
      cell(rule.url), cell(rule.payloadFormat), cell(rule.eventTypes ? rule.eventTypes.join(', ') : 'all'),
    );
  }
}

async function refresh() {
  try {
    await Promise.all([refreshStats(), refreshLogs(), refreshRules()]);
    document.body.dataset.refreshed = String(Date.now());
  } catch (error) {
    console.error('refresh failed', error);
  }
}

for (const id of ['#filter-rule', '#filter-outcome', '#filter-since']) $(id).addEventListener('change', refreshLogs);
refresh();
setInterval(refresh, 2000);
