/**
 * The two records of a delivery, each built here and nowhere else: the command that asks for it (matcher, rules CLI,
 * console) and the delivery-log record of one attempt or decision (dispatcher, matcher).
 */
import type { AttemptRequest, AttemptResponse, DeliveryCommand, DeliveryLog, DeliveryOutcome, EventRule, RuleVersion, WorkflowEvent } from '../../schemas/index.ts';
import { deliveryId } from './delivery-id.ts';
import { loggableUrl } from './rules.ts';

/** A first attempt of delivering `event` to `rule`, due now. `ruleVersion` is where the matched rule sits on its topic. */
export function newDeliveryCommand(event: WorkflowEvent, ruleId: string, now: number, ruleVersion: RuleVersion | null = null): DeliveryCommand {
  return { deliveryId: deliveryId(event.eventId, ruleId), ruleId, event, attempt: 1, notBefore: now, createdAt: now, ruleVersion };
}

/**
 * The Kafka key of a delivery's commands (first attempt and retries). By delivery id, so one busy rule's commands
 * spread over the pool's partitions and dispatchers; commands are handled concurrently anyway, so the only order kept
 * is a delivery's own. A rule with a rate limit, or one the caller does not know (a one-off resend), is keyed by rule
 * id: one dispatcher then paces its first attempts (each retry topic is assigned on its own, so its retries may be
 * paced by another).
 */
export function commandKey(command: Pick<DeliveryCommand, 'deliveryId' | 'ruleId'>, rule: Pick<EventRule, 'rateLimitPerSecond'> | undefined): string {
  return rule && rule.rateLimitPerSecond === null ? command.deliveryId : command.ruleId;
}

export interface AttemptEntry {
  outcome: DeliveryOutcome;
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
    request: entry.request ?? null,
    response: entry.response ?? null,
  };
}
