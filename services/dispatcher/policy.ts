/**
 * The delivery policy: what to do with a command, and what an attempt's result means. Pure functions of (command,
 * current rule, endpoint state, clock, settings) — no Kafka, no HTTP, no timers — so every path is unit-tested as data.
 *
 * Every delivery ends: delivered, dead-lettered (exhausted, expired, unsigned, refused by the HTTP client), skipped
 * (rule deleted, or disabled and the command not an operator's Test), or its rule is disabled with a reason. Deferrals (open breaker, saturated endpoint, rate
 * limit) count toward the delivery's maximum age, measured from when the matcher created it.
 */
import type { DeferralCause, DeliveryCommand, EventRule } from '../../schemas/index.ts';
import { formatDuration } from '../common/duration.ts';
import { scheduleAttempt } from '../common/deliveries.ts';
import { activeSecrets } from '../common/rules.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { SendResult } from './sender.ts';

export interface PolicySettings {
  /** A delivery older than this (since the matcher created it) is dead-lettered as expired. */
  maxAgeMs: number;
  /** A rule whose endpoint has not answered 2xx for this long, while failing, is disabled. */
  disableAfterMs: number;
  /** How long a saturated endpoint's overflow waits: its requests in flight have had their answer or timed out by then. */
  attemptTimeoutMs: number;
  retry: RetryPolicy;
}

/** What the policy needs to know of the endpoint and the rule's recent history. */
export interface EndpointState {
  breaker: { state: 'closed' | 'open' | 'half-open'; openForMs: number };
  /** How long until the rule's rate limit lets the next request go (0: now, or no limit). */
  rateLimitWaitMs: number;
  /** Since when the rule's endpoint has failed without a single 2xx, if it is failing. */
  failingSince: number | undefined;
}

export type DeadLetterReason = 'expired' | 'exhausted' | 'unsigned' | 'unrenderable' | 'unprocessable' | 'request-refused' | 'rule-disabled' | 'too-large';

export type Decision =
  | { kind: 'send' }
  | { kind: 'skip'; reason: string }
  | { kind: 'dead-letter'; reason: DeadLetterReason; error: string }
  | { kind: 'disable'; reason: string }
  /** `estimate`: waitMs is when a busy endpoint or a rate limit should have room, best met by the nearest retry topic. */
  | { kind: 'defer'; waitMs: number; cause: DeferralCause; reason: string; estimate?: true };

/** Before sending: go, wait, or end the delivery here. `rule` is the current version, undefined when deleted. */
export function decide(command: DeliveryCommand, rule: EventRule | undefined, endpoint: EndpointState, now: number, settings: PolicySettings): Decision {
  if (!rule) return { kind: 'skip', reason: 'the rule was deleted' };
  // An operator's Test tries a rule before it goes live (or while it is off); matched events wait for it to be on.
  if (!rule.enabled && !command.sample) return { kind: 'skip', reason: `the rule is disabled${rule.disabledReason ? ` (${rule.disabledReason})` : ''}` };
  const expired = expiry(command, now, settings);
  if (expired) return expired;
  const failing = rule.enabled ? failingTooLong(endpoint.failingSince, now, settings) : undefined;
  if (failing) return { kind: 'disable', reason: failing };
  if (activeSecrets(rule, now).length === 0) {
    return { kind: 'dead-letter', reason: 'unsigned', error: 'every signing secret of the rule has expired; add one (rules rotate-secret) and replay' };
  }
  if (endpoint.breaker.state === 'open') return deferral(command, now, endpoint.breaker.openForMs, 'breaker_open', 'circuit breaker open for the endpoint', settings);
  // A short wait paces the rule in place; a backlog longer than the first retry delay goes to the retry path.
  if (endpoint.rateLimitWaitMs > settings.retry.delays[0]!) {
    return { kind: 'defer', waitMs: endpoint.rateLimitWaitMs, cause: 'rate_limited', reason: `rate limit of ${rule.rateLimitPerSecond}/s reached`, estimate: true };
  }
  return { kind: 'send' };
}

/**
 * The dispatcher's rules table has not read the rule version the command was matched on yet: wait, along the
 * schedule, until the delivery's maximum age — a version the table never reaches (a recreated or mirrored rules
 * topic, a crafted command) ends the delivery as expired rather than deferring it for ever.
 */
export function ruleVersionPending(command: DeliveryCommand, now: number, settings: PolicySettings): Decision {
  const expired = expiry(command, now, settings);
  if (expired?.kind === 'dead-letter') {
    return { ...expired, error: `${expired.error}; the rule version it was matched on (${formatVersion(command)}) never reached this dispatcher's rules table` };
  }
  return deferral(command, now, settings.retry.delays[0]!, 'rule_version_pending', `the rules table has not read the rule version this delivery was matched on (${formatVersion(command)}) yet`, settings);
}

const formatVersion = ({ ruleVersion }: DeliveryCommand) => (ruleVersion ? `partition ${ruleVersion.partition}, offset ${ruleVersion.offset}` : 'none');

/**
 * A saturated endpoint (its in-flight and waiting bounds full): back to the retry path — until it should have room
 * again when its pace tells (a slow endpoint), else until its requests in flight have had their answer or timed out.
 */
export function saturated(command: DeliveryCommand, now: number, detail: string, retryInMs: number | undefined, settings: PolicySettings): Decision {
  if (retryInMs !== undefined) return { kind: 'defer', waitMs: retryInMs, cause: 'endpoint_saturated', reason: `endpoint saturated: ${detail}`, estimate: true };
  return deferral(command, now, settings.attemptTimeoutMs, 'endpoint_saturated', `endpoint saturated: ${detail}`, settings);
}

/** The breaker opened while the command waited for the endpoint's slot. */
export function breakerOpened(command: DeliveryCommand, now: number, retryInMs: number, settings: PolicySettings): Decision {
  return deferral(command, now, retryInMs, 'breaker_open', 'circuit breaker open for the endpoint', settings);
}

/** How an attempt's result bears on the endpoint's circuit breaker. */
export type BreakerVerdict = 'healthy' | 'unhealthy' | 'inconclusive';

/**
 * Any answer but 429 and 5xx means the endpoint is up (a 401 too: it answered); a timeout or a connection error means
 * it may not be; a request that never left (blocked address, refused by the client) says nothing about it, nor does a
 * failed TLS handshake, which is about one rule's certificate or CA: other rules on the same origin must not pay.
 */
export function breakerVerdict(result: SendResult): BreakerVerdict {
  if (result.kind === 'blocked' || result.kind === 'refused' || result.kind === 'tls') return 'inconclusive';
  if (result.kind !== 'response') return 'unhealthy';
  return result.status >= 500 || result.status === 429 ? 'unhealthy' : 'healthy';
}

export type FollowUp =
  | { kind: 'none' }
  | { kind: 'retry'; topicDelayMs: number; notBefore: number }
  | { kind: 'dead-letter'; reason: DeadLetterReason; error: string }
  | { kind: 'disable'; reason: string };

export interface Verdict {
  outcome: 'delivered' | 'retrying' | 'failed' | 'dead_lettered' | 'blocked';
  httpStatus: number | null;
  error: string | null;
  /** Whether the rule's endpoint succeeded (2xx), failed, or the attempt says nothing about it. */
  ruleHealth: 'success' | 'failure' | 'none';
  followUp: FollowUp;
}

/** After an attempt: what its result means for the delivery and the rule. */
export function judge(command: DeliveryCommand, result: SendResult, failingSince: number | undefined, now: number, settings: PolicySettings): Verdict {
  if (result.kind === 'blocked') {
    return { outcome: 'blocked', httpStatus: null, error: result.error, ruleHealth: 'none', followUp: { kind: 'none' } };
  }
  if (result.kind === 'refused') {
    // The HTTP client would not even build the request: the rule's fault, never the endpoint's; retrying cannot help.
    const error = `the HTTP client refused the request: ${result.error}`;
    return { outcome: 'dead_lettered', httpStatus: null, error, ruleHealth: 'none', followUp: { kind: 'dead-letter', reason: 'request-refused', error } };
  }
  const status = result.kind === 'response' ? result.status : null;
  if (status !== null && status >= 200 && status < 300) {
    return { outcome: 'delivered', httpStatus: status, error: null, ruleHealth: 'success', followUp: { kind: 'none' } };
  }
  if (status === 410) {
    const reason = `the endpoint answered 410 Gone at ${new Date(now).toISOString()}`;
    return { outcome: 'failed', httpStatus: 410, error: '410 Gone: the rule was disabled', ruleHealth: 'failure', followUp: { kind: 'disable', reason } };
  }
  const error = result.kind === 'response' ? `HTTP ${result.status}` : result.error;
  const failing = failingTooLong(failingSince ?? now, now, settings);
  if (failing) return { outcome: 'dead_lettered', httpStatus: status, error: `${error}; the rule was disabled: ${failing}`, ruleHealth: 'failure', followUp: { kind: 'disable', reason: failing } };
  // 429/502/504 ask us to slow down: honour Retry-After, else wait at least twice the scheduled delay.
  const slowDown = status === 429 || status === 502 || status === 504;
  const attempt = scheduleAttempt(command);
  const scheduled = settings.retry.delays[attempt - 1] ?? 0;
  const retryAfterMs = result.kind === 'response' ? (result.retryAfterMs ?? (slowDown ? 2 * scheduled : undefined)) : undefined;
  const next = settings.retry.afterFailure(attempt, retryAfterMs, now);
  const deadLetter = (reason: DeadLetterReason, text: string): Verdict =>
    ({ outcome: 'dead_lettered', httpStatus: status, error, ruleHealth: 'failure', followUp: { kind: 'dead-letter', reason, error: text } });
  if (!next) return deadLetter('exhausted', `gave up after ${attempt} attempts${attempt === command.attempt ? '' : ` (from attempt ${command.firstAttempt})`}; last: ${error}`);
  if (next.notBefore - command.createdAt > settings.maxAgeMs) return deadLetter('expired', `the next attempt would pass the maximum age of ${formatDuration(settings.maxAgeMs)}; last: ${error}`);
  return { outcome: 'retrying', httpStatus: status, error, ruleHealth: 'failure', followUp: { kind: 'retry', ...next } };
}

/**
 * A deferral waits at least `minimumMs`, and at least until the delivery's next scheduled time counted from its
 * creation (the schedule's cumulative delays, then steps of its last delay): so however long an endpoint stays down,
 * one delivery yields about one deferral per step of the schedule before it expires, not one per breaker cool-down.
 */
function deferral(command: DeliveryCommand, now: number, minimumMs: number, cause: DeferralCause, reason: string, settings: PolicySettings): Decision {
  const age = now - command.createdAt;
  const { delays } = settings.retry;
  let boundary = 0;
  // Past the schedule's end, steps of its last delay: the delivery expires within a few more.
  for (let step = 0; boundary <= age; step += 1) boundary += delays[Math.min(step, delays.length - 1)]!;
  return { kind: 'defer', waitMs: Math.max(minimumMs, boundary - age), cause, reason };
}

function expiry(command: DeliveryCommand, now: number, settings: PolicySettings): Decision | undefined {
  const age = now - command.createdAt;
  if (age <= settings.maxAgeMs) return undefined;
  return { kind: 'dead-letter', reason: 'expired', error: `not delivered within the maximum age of ${formatDuration(settings.maxAgeMs)} (created ${new Date(command.createdAt).toISOString()})` };
}

function failingTooLong(failingSince: number | undefined, now: number, settings: PolicySettings): string | undefined {
  if (failingSince === undefined || now - failingSince < settings.disableAfterMs) return undefined;
  return `the endpoint has failed without a single success since ${new Date(failingSince).toISOString()} (limit ${formatDuration(settings.disableAfterMs)})`;
}
