/**
 * One command, start to end: read it, find the rule version it was matched on, ask the policy, run the attempt, ask
 * the policy what the result means, and record. The decisions are the policy's; this module only carries them out.
 *
 * A command that cannot be read is dead-lettered as it is. Anything a decision, rendering or signing throws for one
 * command dead-letters that command and the pool goes on. Only a failed write of the records (or a registry that
 * cannot be reached) rejects — the one case where starting over from the last commit is right.
 */
import { contracts, type DeliveryCommand, type EventRule } from '../../schemas/index.ts';
import type { KafkaMessage } from '../common/kafka.ts';
import { MAX_COMMAND_BYTES } from '../common/limits.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import type { RulesTable } from '../common/rules-table.ts';
import type { AttemptRunner } from './attempt-runner.ts';
import { recordWait } from './attempt-trace.ts';
import type { CircuitBreakers, RateLimiter } from './isolation.ts';
import { breakerOpened, decide, judge, ruleVersionPending, saturated, type Decision, type PolicySettings } from './policy.ts';
import type { Recorder } from './recorder.ts';
import type { RuleHealth } from './rule-health.ts';

/** How long a command waits for the rules table to read the rule version it was matched on. */
const RULE_VERSION_WAIT_MS = 10_000;

export interface DeliveryHandlerParts {
  registry: SchemaRegistryClient;
  rules: RulesTable;
  runner: AttemptRunner;
  recorder: Recorder;
  breakers: CircuitBreakers;
  rateLimiter: RateLimiter;
  health: RuleHealth;
  policy: PolicySettings;
  onLatency: (ms: number) => void;
}

export class DeliveryHandler {
  readonly #parts: DeliveryHandlerParts;

  constructor(parts: DeliveryHandlerParts) {
    this.#parts = parts;
  }

  /** `hold(bytes)` counts what this command holds besides its record (its rendered body) against the source's bound. */
  async handle(topic: string, partition: number, message: KafkaMessage, hold: (bytes: number) => void = () => undefined): Promise<void> {
    let command: DeliveryCommand;
    try {
      command = await this.#parts.registry.decode(contracts.deliveryCommand, message.value, MAX_COMMAND_BYTES);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error; // the registry is unreachable: start over, skip nothing
      return this.#parts.recorder.deadLetterInput({ topic, partition, message }, error.reason, error.message);
    }
    recordWait(command, Number(message.timestamp), Date.now());
    const { rules, policy } = this.#parts;
    // The matcher and this dispatcher read the rules topic independently: never judge a rule by an older version.
    if (command.ruleVersion && !rules.reached(command.ruleVersion) && !(await rules.waitUntilReached(command.ruleVersion, RULE_VERSION_WAIT_MS))) {
      return this.#carryOut(command, rules.get(command.ruleId), ruleVersionPending(command, Date.now(), policy));
    }
    const rule = rules.get(command.ruleId);
    let decision: Decision;
    try {
      decision = this.#decide(command, rule, Date.now());
    } catch (error) {
      return this.#unprocessable(command, rule, error);
    }
    return this.#carryOut(command, rule, decision, hold);
  }

  #decide(command: DeliveryCommand, rule: EventRule | undefined, now: number): Decision {
    const { breakers, rateLimiter, health, runner, policy } = this.#parts;
    const endpoint = rule ? runner.endpointOf(rule) : '';
    return decide(command, rule, {
      breaker: { state: breakers.state(endpoint, now), openForMs: breakers.openFor(endpoint, now) },
      rateLimitWaitMs: rule?.rateLimitPerSecond ? rateLimiter.waitFor(rule.id, now) : 0,
      failingSince: rule ? health.failingSince(rule) : undefined,
    }, now, policy);
  }

  async #carryOut(command: DeliveryCommand, rule: EventRule | undefined, decision: Decision, hold: (bytes: number) => void = () => undefined): Promise<void> {
    const { recorder } = this.#parts;
    switch (decision.kind) {
      case 'skip':
        return recorder.record(command, rule, { outcome: 'skipped', error: decision.reason });
      case 'dead-letter':
        return recorder.record(command, rule, { outcome: 'dead_lettered', error: decision.error }, { kind: 'dead-letter', reason: decision.reason, error: decision.error });
      case 'disable':
        return recorder.record(command, rule, { outcome: 'dead_lettered', error: `the rule was disabled: ${decision.reason}` }, { kind: 'disable', reason: decision.reason, url: rule!.url, deadLetter: true });
      case 'defer': {
        const { retry } = this.#parts.policy;
        const next = decision.estimate ? retry.waitAbout(decision.waitMs) : retry.wait(decision.waitMs);
        return recorder.record(command, rule, { outcome: 'retrying', deferral: decision.cause, error: decision.reason, nextAttemptAt: next.notBefore }, { kind: 'retry', ...next, attempt: command.attempt });
      }
      case 'send':
        return this.#send(command, rule!, hold);
    }
  }

  async #send(command: DeliveryCommand, rule: EventRule, hold: (bytes: number) => void): Promise<void> {
    const { runner, recorder, rateLimiter, health, policy } = this.#parts;
    if (rule.rateLimitPerSecond !== null) {
      // Reserved only now that the command goes: a deferred one never holds a turn it will not use.
      const wait = rateLimiter.reserve(rule.id, rule.rateLimitPerSecond);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const prepared = runner.prepare(command, rule, Date.now());
    if (!prepared.ok) return recorder.record(command, rule, { outcome: 'dead_lettered', error: prepared.error }, { kind: 'dead-letter', reason: 'unrenderable', error: prepared.error });
    hold(prepared.attempt.request.bodyBytes ?? 0);
    const run = await runner.run(prepared.attempt);
    if (run.kind === 'saturated') return this.#carryOut(command, rule, saturated(command, Date.now(), run.detail, run.retryInMs, policy));
    if (run.kind === 'breaker-open') return this.#carryOut(command, rule, breakerOpened(command, Date.now(), run.retryInMs, policy));
    const { result } = run;
    this.#parts.onLatency(result.latencyMs);
    const now = Date.now();
    let verdict: ReturnType<typeof judge>;
    try {
      verdict = judge(command, result, health.failingSince(rule), now, policy);
    } catch (error) {
      return this.#unprocessable(command, rule, error);
    }
    const healthChange = health.report(rule, verdict.ruleHealth, now);
    const { followUp } = verdict;
    return recorder.record(command, rule, {
      outcome: verdict.outcome,
      httpStatus: verdict.httpStatus,
      error: verdict.error,
      latencyMs: result.latencyMs,
      nextAttemptAt: followUp.kind === 'retry' ? followUp.notBefore : null,
      request: prepared.attempt.request,
      response: result.kind === 'response' ? result.response : null,
    }, followUp.kind === 'retry' ? { ...followUp, attempt: command.attempt + 1 }
      : followUp.kind === 'disable' ? { ...followUp, url: rule.url, deadLetter: verdict.outcome === 'dead_lettered' }
      : followUp, healthChange);
  }

  /** A command the policy could not decide on (a bug, or data no code path expected): kept, with the error, and the pool goes on. */
  #unprocessable(command: DeliveryCommand, rule: EventRule | undefined, error: unknown): Promise<void> {
    const text = `could not process the command: ${(error as Error).message}`;
    return this.#parts.recorder.record(command, rule, { outcome: 'dead_lettered', error: text }, { kind: 'dead-letter', reason: 'unprocessable', error: text });
  }
}
