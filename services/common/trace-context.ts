/**
 * W3C Trace Context as a delivery carries it: read from an event's Kafka headers, kept in its commands (a
 * TraceContext), written into the webhook request's headers. Spans come from the global OpenTelemetry tracer: real
 * when a service exports traces (tracing.ts), a no-op otherwise — and a no-op span keeps its parent's context, so a
 * service that does not trace forwards the trace context it received unchanged, as the W3C specification asks.
 */
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type SpanOptions, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { TraceContext } from '../../schemas/index.ts';

export type { Span } from '@opentelemetry/api';
export { SpanKind, SpanStatusCode };

const w3c = new W3CTraceContextPropagator();
// A proxy: it follows the provider the service registers when it starts exporting (tracing.ts), a no-op before.
const tracer = trace.getTracer('workflow-webhooks');

type Carrier = Record<string, string>;
const setter: TextMapSetter<Carrier> = { set: (carrier, key, value) => void (carrier[key] = value) };

/** Reads `traceparent`/`tracestate` from a Kafka record's headers (Buffers, possibly repeated) or HTTP-style strings. */
const headerGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined || first === null ? undefined : String(first);
  },
};

/** The trace context of an OpenTelemetry context, or null when it holds no valid span context. */
function traceContextOf(otelContext: ReturnType<typeof context.active>): TraceContext | null {
  const carrier: Carrier = {};
  w3c.inject(otelContext, carrier, setter);
  return carrier.traceparent ? { traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? null } : null;
}

/** The caller's active trace context (what a host application's OpenTelemetry SDK holds), or null. */
export function activeTraceContext(): TraceContext | null {
  return traceContextOf(context.active());
}

/** The trace context in a record's headers; null when absent or not valid W3C (a malformed one is ignored, not fatal). */
export function traceContextFromHeaders(headers: Record<string, unknown> | undefined): TraceContext | null {
  if (!headers || headers.traceparent === undefined) return null;
  return traceContextOf(w3c.extract(ROOT_CONTEXT, headers, headerGetter));
}

/** `traceparent` (and `tracestate` when there is one) as headers of a Kafka record or an HTTP request. */
export function traceHeaders(trace: TraceContext | null): Record<string, string> {
  if (!trace) return {};
  return trace.tracestate ? { traceparent: trace.traceparent, tracestate: trace.tracestate } : { traceparent: trace.traceparent };
}

/** The 32-hex-digit trace id of a trace context. */
export function traceIdOf(trace: TraceContext | null): string | null {
  return trace ? trace.traceparent.split('-')[1] ?? null : null;
}

/** A span under `parent` (a root span when there is none) from this product's tracer. */
export function startSpan(name: string, parent: TraceContext | null, options: SpanOptions = {}): Span {
  const parentContext = parent ? w3c.extract(ROOT_CONTEXT, traceHeaders(parent), headerGetter) : ROOT_CONTEXT;
  return tracer.startSpan(name, options, parentContext);
}

/**
 * What the work under `span` passes on: the span's own context. A no-op span (this service not tracing) holds its
 * parent's, so the context received goes on unchanged.
 */
export function carriedContext(span: Span): TraceContext | null {
  return traceContextOf(trace.setSpan(ROOT_CONTEXT, span));
}

/** Ends `span` as failed by `error`. */
export function endWithError(span: Span, error: Error): void {
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.end();
}
