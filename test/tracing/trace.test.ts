/**
 * The producer's trace carried to the receiver: through the event's Kafka headers, the delivery command and its retry,
 * into the webhook's traceparent and the delivery log — with the services exporting their spans over OTLP/HTTP to a
 * receiver on loopback, and with tracing off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareCluster } from '../../services/common/setup.ts';
import { readLog, startReceiver } from '../dispatcher/fixtures.ts';
import { engineContext, engineSpan, traceparentOf, within } from '../fixtures/engine-trace.ts';
import { rule } from '../fixtures/rules.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { clusterEnv, testCluster, testLogger, waitFor } from '../helpers.ts';
import { writers } from '../matcher/fixtures.ts';
import { startPipeline } from '../pipeline.ts';

/** A span as an OTLP/HTTP JSON export request carries it, with its service's name and its attributes flattened. */
interface ExportedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  status: { code?: number; message?: string };
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
}

const flatten = (attributes: OtlpAttribute[] = []) =>
  Object.fromEntries(attributes.map(({ key, value }) => [key, value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.boolValue ?? value.doubleValue)]));

/** An OTLP/HTTP trace receiver (JSON encoding) on loopback. */
async function startOtlpReceiver() {
  const spans: ExportedSpan[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.url !== '/v1/traces') return void response.writeHead(404).end();
      const raw = Buffer.concat(chunks);
      const body = JSON.parse((request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString());
      for (const { resource, scopeSpans = [] } of body.resourceSpans ?? []) {
        const service = String(flatten(resource?.attributes)['service.name']);
        for (const scope of scopeSpans) {
          for (const span of scope.spans ?? []) {
            spans.push({
              service,
              name: span.name,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              startMs: Number(BigInt(span.startTimeUnixNano) / 1_000_000n),
              endMs: Number(BigInt(span.endTimeUnixNano) / 1_000_000n),
              attributes: flatten(span.attributes),
              status: span.status ?? {},
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// beforeAll may return its teardown: the context manager is removed after the file.
beforeAll(engineContext);

describe('tracing to an OTLP receiver', () => {
  const cluster = testCluster('tracing', { RETRY_SCHEDULE: [1000] });
  const childLog: string[] = [];

  function service(name: 'matcher' | 'dispatcher', otlpUrl: string): ChildProcess {
    const child = spawn(process.execPath, [new URL(`../../services/${name}/main.ts`, import.meta.url).pathname], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: clusterEnv(cluster, {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        MATCHER_HTTP_PORT: '0',
        DISPATCHER_HTTP_PORT: '0',
        DISPATCHER_ALLOW_NETWORKS: '127.0.0.0/8',
        RETRY_SCHEDULE: '1s',
        LOG_LEVEL: 'warn',
      }),
    });
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => childLog.push(`${name}: ${chunk}`));
    return child;
  }

  it('one trace from the producer\'s span through match, each attempt and its wait, to the POST the receiver gets', { timeout: 120_000 }, async () => {
    await prepareCluster(cluster, testLogger);
    const io = await writers(cluster);
    const receiver = await startReceiver();
    receiver.respond = (index) => (index === 0 ? 500 : 200);
    const otlp = await startOtlpReceiver();
    // The rule is in place before the matcher starts: its table holds it before the first event is read.
    await io.rules.put(rule('traced', 'trace-app', { url: receiver.url }));
    const children = [service('matcher', otlp.url), service('dispatcher', otlp.url)];
    try {
      const producerSpan = engineSpan();
      await within(producerSpan, () => io.events.publish([harnessEvent('workflow_completed', { application: { id: 'trace-app' } })]));
      producerSpan.end();
      const traceId = producerSpan.spanContext().traceId;

      const named = (name: string) => otlp.spans.filter((span) => span.name === name).sort((a, b) => a.startMs - b.startMs);
      await waitFor('the retry delivered and every span exported', () => receiver.received.length >= 2 && named('match').length >= 1 && named('wait').length >= 2 && named('POST').length >= 2, 60_000)
        .catch((error: Error) => {
          throw new Error(`${error.message}: ${receiver.received.length} requests, spans ${otlp.spans.map((span) => span.name).join(',')}; log:\n${childLog.join('').slice(-4000)}`);
        });

      expect(otlp.spans.every((span) => span.traceId === traceId)).toBe(true);
      const [match] = named('match');
      expect(match).toMatchObject({ service: 'workflow-webhooks-matcher', parentSpanId: producerSpan.spanContext().spanId });
      expect(match!.attributes).toMatchObject({ 'messaging.system': 'kafka', 'workflow.event.type': 'workflow_completed', 'webhook.commands': 1 });
      const [firstWait, secondWait] = named('wait');
      const [failed, delivered] = named('POST');
      for (const span of [firstWait!, secondWait!, failed!, delivered!]) expect(span).toMatchObject({ service: 'workflow-webhooks-dispatcher', parentSpanId: match!.spanId });
      expect([failed!.attributes['http.response.status_code'], delivered!.attributes['http.response.status_code']]).toEqual([500, 200]);
      expect([failed!.attributes['webhook.attempt'], delivered!.attributes['webhook.attempt']]).toEqual([1, 2]);
      expect(failed!.status.code).toBe(2); // ERROR
      // The second wait is the retry's: its topic's 1 s delay.
      expect(secondWait!.endMs - secondWait!.startMs).toBeGreaterThanOrEqual(900);

      // Each request carries its own POST span as parent, so the receiver's spans join the trace.
      expect(receiver.received.map((request) => request.headers.traceparent)).toEqual([`00-${traceId}-${failed!.spanId}-01`, `00-${traceId}-${delivered!.spanId}-01`]);
      const log = await readLog(cluster, (entries) => entries.length >= 2);
      expect(log.map((entry) => [entry.outcome, entry.traceId, entry.request?.headers.traceparent])).toEqual([
        ['retrying', traceId, receiver.received[0]!.headers.traceparent],
        ['delivered', traceId, receiver.received[1]!.headers.traceparent],
      ]);
    } finally {
      children.forEach((child) => child.kill('SIGKILL'));
      await io.close();
      await receiver.close();
      await otlp.close();
    }
  });
});

describe('tracing off', () => {
  const cluster = testCluster('tracing-off');

  it('forwards the producer\'s traceparent unchanged, and an event without one sends none', { timeout: 60_000 }, async () => {
    const pipeline = await startPipeline(cluster);
    try {
      const receiver = await pipeline.receiver();
      await pipeline.io.rules.put(rule('untraced', 'untraced-app', { url: receiver.url }));
      await waitFor('rule', () => pipeline.matcher.rules.get('untraced') !== undefined);
      const producerSpan = engineSpan();
      const traced = harnessEvent('workflow_completed', { application: { id: 'untraced-app' } });
      await within(producerSpan, () => pipeline.io.events.publish([traced]));
      producerSpan.end();
      const plain = harnessEvent('workflow_started', { application: { id: 'untraced-app' } });
      await pipeline.io.events.publish([plain]);

      await waitFor('both delivered', () => receiver.received.length >= 2);
      const headerFor = (eventId: string) => receiver.received.find((request) => JSON.parse(request.body).data.eventId === eventId)!.headers;
      expect(headerFor(traced.eventId!).traceparent).toBe(traceparentOf(producerSpan));
      expect(headerFor(plain.eventId!)).not.toHaveProperty('traceparent');
      const log = await readLog(cluster, (entries) => entries.length >= 2);
      expect(Object.fromEntries(log.map((entry) => [entry.eventId, entry.traceId]))).toEqual({ [traced.eventId!]: producerSpan.spanContext().traceId, [plain.eventId!]: null });
    } finally {
      await pipeline.stop();
    }
  });
});
