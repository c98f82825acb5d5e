/**
 * The spans a handled command leaves in its delivery's trace, both under the command's trace context (the match
 * span, or the producer's), so a delivery's attempts are siblings: `wait`, from when the command's record was written
 * (by the matcher, or as a retry) until a dispatcher took it up — the retry delay plus any queueing — and `POST`, the
 * request itself, whose context the webhook's traceparent carries so the receiver's spans join the trace. Untraced,
 * neither records and the request carries the command's trace context unchanged.
 */
import type { DeliveryCommand } from '../../schemas/index.ts';
import { loggableUrl } from '../common/rules.ts';
import { carriedContext, endWithError, SpanKind, SpanStatusCode, startSpan, traceHeaders, type Span } from '../common/trace-context.ts';
import type { SendResult } from './sender.ts';

/** What the spans of one delivery say about it. */
function deliveryAttributes(command: DeliveryCommand) {
  return { 'webhook.delivery.id': command.deliveryId, 'webhook.attempt': command.attempt, 'webhook.rule.id': command.ruleId, 'workflow.event.id': command.event.eventId };
}

/** Records the command's wait, from `writtenAt` (its record's timestamp) to `now`; a command with no trace has none. */
export function recordWait(command: DeliveryCommand, writtenAt: number, now: number): void {
  if (!command.trace || !(writtenAt <= now)) return;
  startSpan('wait', command.trace, { kind: SpanKind.INTERNAL, startTime: writtenAt, attributes: deliveryAttributes(command) }).end(now);
}

export interface RequestTrace {
  /** `traceparent`/`tracestate` for the request: the POST span's context, or the command's unchanged. */
  readonly headers: Record<string, string>;
  end(result: SendResult): void;
}

/** The span of the request sending `command` to `url`, started now. */
export function requestTrace(command: DeliveryCommand, url: URL): RequestTrace {
  const span = startSpan('POST', command.trace, { kind: SpanKind.CLIENT });
  // Attributes only for a span that records: untraced, a request pays for no URL formatting (samplers here decide
  // by the parent and the trace id, never by attributes, so none is needed at the start).
  if (span.isRecording()) {
    span.setAttributes({ 'http.request.method': 'POST', 'url.full': loggableUrl(url.href), 'server.address': url.hostname, 'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80), ...deliveryAttributes(command) });
  }
  return { headers: traceHeaders(carriedContext(span)), end: (result) => endRequest(span, result) };
}

function endRequest(span: Span, result: SendResult): void {
  if (!span.isRecording()) return;
  if (result.kind === 'response') {
    span.setAttribute('http.response.status_code', result.status);
    // A client span fails on any status that is not a success (the semantic conventions: 4xx and 5xx; here 3xx too).
    if (result.status >= 300) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${result.status}` });
    span.end();
    return;
  }
  span.setAttribute('error.type', result.kind);
  endWithError(span, new Error(result.error));
}
