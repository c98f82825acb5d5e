/**
 * The two records of a delivery, each built here and nowhere else: the command that asks for it (matcher, rules CLI,
 * console) and the delivery-log record of one attempt or decision (dispatcher, matcher).
 */
import { hash } from 'node:crypto';
import type { AttemptRequest, AttemptResponse, DeferralCause, DeliveryCommand, DeliveryLog, DeliveryOutcome, EventRule, RuleVersion, TraceContext, WorkflowEvent } from '../../schemas/index.ts';
import { deliveryId } from './delivery-id.ts';
import { loggableUrl } from './rules.ts';
import { traceIdOf } from './trace-context.ts';

export interface CommandOptions {
  /** Where the matched rule version sits on its topic. */
  ruleVersion?: RuleVersion | null;
  /** An operator's Test, which goes out even while the rule is disabled. */
  sample?: boolean;
  /** The trace the delivery belongs to. */
  trace?: TraceContext | null;
}

/** A first attempt of delivering `event` to `rule`, due now. */
export function newDeliveryCommand(event: WorkflowEvent, ruleId: string, now: number, { ruleVersion = null, sample = false, trace = null }: CommandOptions = {}): DeliveryCommand {
  return { deliveryId: deliveryId(event.eventId, ruleId), ruleId, event, attempt: 1, firstAttempt: 1, notBefore: now, createdAt: now, ruleVersion, sample, trace };
}

/**
 * `command` sent again by an operator (a resend, a dead-letter replay) after the delivery's attempt `lastAttempt`: the
 * same delivery id, so receivers still de-duplicate on its webhook-id; the next attempt number, so every attempt of
 * the delivery keeps its own; and otherwise a new start — due now, the schedule from its beginning and a new age, so
 * a delivery that expired or used up its schedule gets all of it again instead of expiring at once.
 */
export function sentAgain(command: DeliveryCommand, lastAttempt: number, now: number): DeliveryCommand {
  const attempt = Math.max(lastAttempt, command.attempt) + 1;
  return { ...command, attempt, firstAttempt: attempt, notBefore: now, createdAt: now };
}

/** Which attempt of its retry schedule `command` is (1 for the schedule's first), whatever its attempt number. */
export const scheduleAttempt = (command: Pick<DeliveryCommand, 'attempt' | 'firstAttempt'>): number => command.attempt - command.firstAttempt + 1;

/**
 * The Kafka key of a delivery's commands (first attempt and retries): the endpoint they go to, so all of an endpoint's
 * commands, in the pool's command topic and in each retry topic, share a partition number, and the dispatchers'
 * co-partitioned assignment gives that number to one dispatcher of the pool. Its per-endpoint limits (concurrency,
 * waiting room, circuit breaker, a rule's rate limit) then hold for the whole pool, not once per dispatcher. A command
 * whose endpoint the writer does not know is keyed by its rule id.
 */
export function commandKey(command: Pick<DeliveryCommand, 'ruleId'>, endpoint: string | undefined): string {
  return endpoint ?? command.ruleId;
}

/** The endpoint a URL belongs to: its origin (scheme, host and port), as breakers and limits count it. */
export function endpointOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url; // a rule's URL is checked before it is kept; this keeps a key for one that slipped through
  }
}

export interface AttemptEntry {
  outcome: DeliveryOutcome;
  /** Why nothing was sent this time, for an attempt put off. */
  deferral?: DeferralCause | null;
  httpStatus?: number | null;
  error?: string | null;
  latencyMs?: number | null;
  nextAttemptAt?: number | null;
  request?: AttemptRequest | null;
  response?: AttemptResponse | null;
}

/** The delivery-log record of one attempt (or decision not to attempt) of `command`; `rule` is the version it was decided under. */
export function deliveryLogRecord(command: DeliveryCommand, rule: Pick<EventRule, 'name' | 'url'> | undefined, entry: AttemptEntry, pool: string | null, now = Date.now()): DeliveryLog {
  return {
    deliveryId: command.deliveryId,
    attempt: command.attempt,
    ruleId: command.ruleId,
    ruleName: rule?.name ?? null,
    application: command.event.application.id,
    eventId: command.event.eventId,
    eventType: command.event.type,
    url: rule ? loggableUrl(rule.url) : null,
    outcome: entry.outcome,
    httpStatus: entry.httpStatus ?? null,
    error: entry.error ?? null,
    latencyMs: entry.latencyMs ?? null,
    attemptedAt: now,
    nextAttemptAt: entry.nextAttemptAt ?? null,
    pool,
    deferral: entry.deferral ?? null,
    traceId: traceIdOf(command.trace),
    request: entry.request ?? null,
    response: entry.response ?? null,
  };
}

/** What a delivery-log record keeps of a body: its start, and the whole body's size and hash. */
export type LoggedBody = Pick<AttemptRequest, 'body' | 'bodyTruncated' | 'bodyBytes' | 'bodySha256'>;

/**
 * `body` as a delivery-log record keeps it: at most `limit` bytes of it, so a record stays far below the broker's
 * limit whatever an event renders to (JSON escapes a control character to six bytes), with the whole body's size and
 * SHA-256 so a receiver's copy can still be matched against it.
 */
export function loggedBody(body: string, limit: number): LoggedBody {
  const bytes = Buffer.byteLength(body);
  const sha256 = hash('sha256', body, 'hex');
  if (bytes <= limit) return { body, bodyTruncated: false, bodyBytes: bytes, bodySha256: sha256 };
  return { body: utf8Prefix(Buffer.from(body), limit), bodyTruncated: true, bodyBytes: bytes, bodySha256: sha256 };
}

/** The first `limit` bytes of UTF-8 text, cut on a character boundary (a partial sequence dropped, not shown as U+FFFD). */
export function utf8Prefix(bytes: Buffer, limit: number): string {
  if (bytes.length <= limit) return bytes.toString('utf8');
  let end = limit;
  // Back up over continuation bytes (10xxxxxx) to the start of the character the cut falls in.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return bytes.toString('utf8', 0, end);
}
