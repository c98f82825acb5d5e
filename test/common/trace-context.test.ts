import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, type DeliveryCommand } from '../../schemas/index.ts';
import { newDeliveryCommand } from '../../services/common/deliveries.ts';
import { activeTraceContext, carriedContext, startSpan, traceContextFromHeaders, traceHeaders, traceIdOf } from '../../services/common/trace-context.ts';
import { recordWait, requestTrace } from '../../services/dispatcher/attempt-trace.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { valid } from '../helpers.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('trace context in Kafka headers', () => {
  it('reads traceparent and tracestate from Buffers, as kafkajs hands them over', () => {
    expect(traceContextFromHeaders({ 'event-type': Buffer.from('workflow_started'), traceparent: Buffer.from(PARENT), tracestate: Buffer.from('vendor=abc') }))
      .toEqual({ traceparent: PARENT, tracestate: 'vendor=abc' });
    expect(traceContextFromHeaders({ traceparent: [Buffer.from(PARENT), Buffer.from('00-ffff')] })).toEqual({ traceparent: PARENT, tracestate: null });
  });

  it('ignores an absent or malformed traceparent instead of failing the event', () => {
    expect(traceContextFromHeaders(undefined)).toBeNull();
    expect(traceContextFromHeaders({ 'event-type': Buffer.from('x') })).toBeNull();
    for (const bad of ['garbage', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-${TRACE_ID}-${'0'.repeat(16)}-01`, `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`]) {
      expect(traceContextFromHeaders({ traceparent: Buffer.from(bad) }), bad).toBeNull();
    }
  });

  it('writes headers back and names the trace id', () => {
    expect(traceHeaders(null)).toEqual({});
    expect(traceHeaders({ traceparent: PARENT, tracestate: null })).toEqual({ traceparent: PARENT });
    expect(traceHeaders({ traceparent: PARENT, tracestate: 'a=1' })).toEqual({ traceparent: PARENT, tracestate: 'a=1' });
    expect(traceIdOf({ traceparent: PARENT, tracestate: null })).toBe(TRACE_ID);
    expect(traceIdOf(null)).toBeNull();
  });
});

describe('a service that does not trace', () => {
  it('forwards the trace context it received unchanged (same parent id, flags and tracestate)', () => {
    const parent = { traceparent: PARENT, tracestate: 'vendor=abc' };
    const span = startSpan('match', parent);
    expect(span.isRecording()).toBe(false);
    expect(carriedContext(span)).toEqual(parent);
    expect(requestTrace(command(parent), new URL('http://127.0.0.1:9/hook')).headers).toEqual({ traceparent: PARENT, tracestate: 'vendor=abc' });
  });

  it('carries nothing for an event that had no trace context', () => {
    expect(carriedContext(startSpan('match', null))).toBeNull();
    expect(requestTrace(command(null), new URL('http://127.0.0.1:9/hook')).headers).toEqual({});
    expect(activeTraceContext()).toBeNull();
  });
});

describe('a service that traces', () => {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
  });
  afterAll(() => {
    trace.disable();
    context.disable();
  });

  it('reads the caller\'s active context, as the producer SDK does', () => {
    const span = trace.getTracer('host-app').startSpan('publish');
    const active = context.with(trace.setSpan(context.active(), span), () => activeTraceContext());
    expect(active?.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  });

  it('puts match, wait and POST in the producer\'s trace, and the webhook carries the POST span', () => {
    exporter.reset();
    const match = startSpan('match', { traceparent: PARENT, tracestate: 'vendor=abc' });
    const carried = carriedContext(match)!;
    match.end();
    expect(traceIdOf(carried)).toBe(TRACE_ID);
    expect(carried.tracestate).toBe('vendor=abc');

    const delivery = command(carried);
    recordWait(delivery, 1_000_000, 1_002_500);
    const failed = requestTrace(delivery, new URL('http://127.0.0.1:9/hook'));
    failed.end({ kind: 'response', status: 500, retryAfterMs: undefined, latencyMs: 3, response: { headers: {}, body: '', bodyTruncated: false, bodyBytes: 0, bodySha256: null } });
    const refused = requestTrace(delivery, new URL('http://127.0.0.1:9/hook'));
    refused.end({ kind: 'network', error: 'connect ECONNREFUSED 127.0.0.1:9', latencyMs: 1 });

    const spans = exporter.getFinishedSpans();
    const [matchSpan, wait, post500, postRefused] = spans;
    expect(spans.map((span) => span.name)).toEqual(['match', 'wait', 'POST', 'POST']);
    expect(spans.every((span) => span.spanContext().traceId === TRACE_ID)).toBe(true);
    expect(matchSpan!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    for (const child of [wait!, post500!, postRefused!]) expect(child.parentSpanContext?.spanId).toBe(matchSpan!.spanContext().spanId);
    expect(wait!.startTime).toEqual([1000, 0]);
    expect(wait!.endTime).toEqual([1002, 500_000_000]);
    expect(failed.headers.traceparent).toBe(`00-${TRACE_ID}-${post500!.spanContext().spanId}-01`);
    expect(post500!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 500, 'server.address': '127.0.0.1', 'server.port': 9, 'webhook.delivery.id': delivery.deliveryId });
    expect(post500!.status).toEqual({ code: 2, message: 'HTTP 500' });
    expect(postRefused!.attributes['error.type']).toBe('network');
    expect(postRefused!.status.message).toContain('ECONNREFUSED');
  });

  it('records no wait for a command without trace context', () => {
    exporter.reset();
    recordWait(command(null), 1_000, 2_000);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

function command(trace: DeliveryCommand['trace']): DeliveryCommand {
  return newDeliveryCommand(valid(contracts.workflowEvent, harnessEvent('workflow_started')), 'rule-1', Date.now(), { trace });
}
