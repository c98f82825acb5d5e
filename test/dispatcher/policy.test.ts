/** The delivery policy and the isolation state it reads: data in, decisions out — no broker, no HTTP. */
import { describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { checkRule } from '../../services/common/rules.ts';
import { newDeliveryCommand, sentAgain } from '../../services/common/deliveries.ts';
import { AttemptRunner } from '../../services/dispatcher/attempt-runner.ts';
import { sign } from '../../services/dispatcher/signing.ts';
import { CircuitBreakers, RateLimiter } from '../../services/dispatcher/isolation.ts';
import { RuleHealth } from '../../services/dispatcher/rule-health.ts';
import { breakerVerdict, decide, judge, ruleVersionPending, saturated, type EndpointState, type PolicySettings } from '../../services/dispatcher/policy.ts';
import { RetryPolicy } from '../../services/dispatcher/retry-policy.ts';
import type { SendResult } from '../../services/dispatcher/sender.ts';
import { defaultMaxAgeMs } from '../../services/dispatcher/dispatcher.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { newSecret, rule as ruleInput } from '../fixtures/rules.ts';
import { valid } from '../helpers.ts';

const MINUTE = 60_000;
const settings: PolicySettings = { maxAgeMs: 60 * MINUTE, disableAfterMs: 24 * 60 * MINUTE, attemptTimeoutMs: 15_000, retry: new RetryPolicy([5000, 5 * MINUTE, 30 * MINUTE], 0) };
const T0 = Date.parse('2026-11-24T10:00:00Z');
const validRule = (overrides: Parameters<typeof ruleInput>[2] = {}) => {
  const checked = checkRule({ ...ruleInput('r1', 'app', { url: 'https://hooks.example.com/in', ...overrides }), updatedAt: T0 - 1000 });
  if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
  return checked.rule;
};
const command = (createdAt = T0, attempt = 1) => ({ ...newDeliveryCommand(valid(contracts.workflowEvent, harnessEvent('workflow_started')), 'r1', createdAt), attempt });
const healthy: EndpointState = { breaker: { state: 'closed', openForMs: 0 }, rateLimitWaitMs: 0, failingSince: undefined };
const response = (status: number, retryAfterMs?: number): SendResult => ({ kind: 'response', status, retryAfterMs, latencyMs: 3, response: { headers: {}, body: '', bodyTruncated: false, bodyBytes: 0, bodySha256: null } });

describe('policy: before sending', () => {
  it('sends to an enabled rule with a closed breaker, skips a deleted or disabled rule', () => {
    expect(decide(command(), validRule(), healthy, T0, settings)).toEqual({ kind: 'send' });
    expect(decide(command(), undefined, healthy, T0, settings)).toEqual({ kind: 'skip', reason: 'the rule was deleted' });
    expect(decide(command(), validRule({ enabled: false, disabledReason: '410 Gone' }), healthy, T0, settings)).toEqual({ kind: 'skip', reason: 'the rule is disabled (410 Gone)' });
  });

  it('an operator\'s Test goes out to a disabled rule (tried before it goes live), and never disables it again', () => {
    const sample = { ...command(), sample: true };
    const off = validRule({ enabled: false, disabledReason: 'disabled by an operator' });
    expect(decide(sample, off, healthy, T0, settings)).toEqual({ kind: 'send' });
    expect(decide(sample, off, { ...healthy, failingSince: T0 - 25 * 60 * MINUTE }, T0, settings)).toEqual({ kind: 'send' });
    expect(decide(sample, undefined, healthy, T0, settings)).toEqual({ kind: 'skip', reason: 'the rule was deleted' });
  });

  it('deferrals never end: a delivery past its maximum age is dead-lettered as expired, whatever defers it', () => {
    const old = command(T0 - 61 * MINUTE);
    const open: EndpointState = { ...healthy, breaker: { state: 'open', openForMs: 30_000 } };
    for (const endpoint of [healthy, open, { ...healthy, rateLimitWaitMs: 60_000 }]) {
      expect(decide(old, validRule(), endpoint, T0, settings)).toMatchObject({ kind: 'dead-letter', reason: 'expired' });
    }
    expect(saturated(command(T0 - 59 * MINUTE), T0, 'busy', undefined, settings)).toMatchObject({ kind: 'defer', cause: 'endpoint_saturated' });
    // A slow endpoint that will have room in ~6 s: back then, not at the schedule's next step.
    // When it should have room is an estimate: the delivery goes to the retry topic nearest it (RetryPolicy.waitAbout).
    expect(saturated(command(T0), T0, 'behind', 6000, settings)).toMatchObject({ kind: 'defer', cause: 'endpoint_saturated', waitMs: 6000, estimate: true });
  });

  it('a resend or replay starts a new age: an expired or exhausted delivery gets the whole schedule again, same delivery id', () => {
    const expired = command(T0 - 61 * MINUTE, 3);
    expect(decide(expired, validRule(), healthy, T0, settings)).toMatchObject({ kind: 'dead-letter', reason: 'expired' });
    const again = sentAgain(expired, 3, T0);
    // The attempt numbers go on (attempt 4), the schedule starts over.
    expect(again).toMatchObject({ deliveryId: expired.deliveryId, attempt: 4, firstAttempt: 4, notBefore: T0, createdAt: T0 });
    expect(decide(again, validRule(), healthy, T0, settings)).toEqual({ kind: 'send' });
    expect(judge(again, response(503), undefined, T0, settings)).toMatchObject({ outcome: 'retrying', followUp: { kind: 'retry', topicDelayMs: 5000, notBefore: T0 + 5000 } });
    const last = { ...again, attempt: 6 };
    expect(judge(last, response(503), undefined, T0, settings)).toMatchObject({ outcome: 'retrying', followUp: { kind: 'retry', topicDelayMs: 30 * MINUTE } });
    expect(judge({ ...again, attempt: 7 }, response(503), undefined, T0, settings)).toMatchObject({ outcome: 'dead_lettered', followUp: { reason: 'exhausted', error: 'gave up after 4 attempts (from attempt 4); last: HTTP 503' } });
  });

  it('deferrals never end: an open breaker defers to the next step of the schedule counted from creation, so deferrals per delivery are bounded by the schedule', () => {
    const open: EndpointState = { ...healthy, breaker: { state: 'open', openForMs: 30_000 } };
    // Created just now: at least the breaker's cool-down.
    expect(decide(command(T0), validRule(), open, T0, settings)).toMatchObject({ kind: 'defer', cause: 'breaker_open', waitMs: 30_000 });
    // Ten minutes old: not back every 30 s, but at the schedule's next step (5 s + 5 min + 30 min after creation).
    expect(decide(command(T0 - 10 * MINUTE), validRule(), open, T0, settings)).toMatchObject({ kind: 'defer', waitMs: 25 * MINUTE + 5000 });
    // Count the deferrals of a delivery to an endpoint whose breaker never closes: a handful, then it expires.
    let now = T0;
    let deferrals = 0;
    for (;;) {
      const decision = decide(command(T0), validRule(), open, now, settings);
      if (decision.kind !== 'defer') {
        expect(decision).toMatchObject({ kind: 'dead-letter', reason: 'expired' });
        break;
      }
      deferrals += 1;
      now += decision.waitMs;
    }
    expect(deferrals).toBeLessThanOrEqual(settings.retry.delays.length + 2);
  });

  it('deferrals never end: a rule whose endpoint failed without a success for the set time is disabled with the reason', () => {
    const decision = decide(command(), validRule(), { ...healthy, failingSince: T0 - 25 * 60 * MINUTE }, T0, settings);
    expect(decision).toMatchObject({ kind: 'disable' });
    expect((decision as { reason: string }).reason).toMatch(/failed without a single success since 2026-11-23T09:00:00.000Z \(limit 1d\)/);
    expect(decide(command(), validRule(), { ...healthy, failingSince: T0 - 23 * 60 * MINUTE }, T0, settings)).toEqual({ kind: 'send' });
  });

  it('unsigned requests: a rule whose secrets have all expired is never sent, the delivery is dead-lettered', () => {
    const expiring = validRule({ secrets: [{ secret: ruleInput('x', 'y').secrets[0]!.secret, notAfter: T0 - 1 }] });
    expect(decide(command(), expiring, healthy, T0, settings)).toMatchObject({ kind: 'dead-letter', reason: 'unsigned' });
  });

  it('rate limiter: a short wait paces in place, a long one defers — and deciding reserves no turn', () => {
    const limited = validRule({ rateLimitPerSecond: 1 });
    const limiter = new RateLimiter();
    limiter.reserve('r1', 1, T0);
    const state = (now: number): EndpointState => ({ ...healthy, rateLimitWaitMs: limiter.waitFor('r1', now) });
    expect(decide(command(), limited, state(T0), T0, settings)).toEqual({ kind: 'send' });
    for (let index = 0; index < 10; index += 1) limiter.reserve('r1', 1, T0);
    expect(decide(command(), limited, state(T0), T0, settings)).toMatchObject({ kind: 'defer', cause: 'rate_limited', waitMs: 11_000 });
    // Deciding (and deferring) many commands took no turns: the next free turn is unchanged.
    for (let index = 0; index < 100; index += 1) decide(command(), limited, state(T0), T0, settings);
    expect(limiter.waitFor('r1', T0)).toBe(11_000);
  });
});

describe('policy: after an attempt', () => {
  it('2xx delivers; other answers retry on schedule with the next attempt, 429/502/504 and Retry-After slow down', () => {
    expect(judge(command(), response(204), undefined, T0, settings)).toMatchObject({ outcome: 'delivered', ruleHealth: 'success', followUp: { kind: 'none' } });
    expect(judge(command(), response(500), undefined, T0, settings)).toMatchObject({ outcome: 'retrying', error: 'HTTP 500', followUp: { kind: 'retry', topicDelayMs: 5000, notBefore: T0 + 5000 } });
    expect(judge(command(), response(503, 5 * MINUTE), undefined, T0, settings)).toMatchObject({ followUp: { kind: 'retry', topicDelayMs: 5 * MINUTE } });
    expect(judge(command(), response(429), undefined, T0, settings)).toMatchObject({ followUp: { kind: 'retry', topicDelayMs: 5 * MINUTE } });
    expect(judge(command(T0, 4), response(500), undefined, T0, settings)).toMatchObject({ outcome: 'dead_lettered', followUp: { kind: 'dead-letter', reason: 'exhausted' } });
  });

  it('410 disables the rule; a retry that would pass the maximum age expires instead', () => {
    expect(judge(command(), response(410), undefined, T0, settings)).toMatchObject({ outcome: 'failed', followUp: { kind: 'disable' } });
    expect(judge(command(T0 - 50 * MINUTE, 3), response(500), undefined, T0, settings)).toMatchObject({ outcome: 'dead_lettered', followUp: { kind: 'dead-letter', reason: 'expired' } });
  });

  it('a failure past the disable time disables the rule and keeps the delivery in the dead-letter topic', () => {
    expect(judge(command(), response(500), T0 - 25 * 60 * MINUTE, T0, settings)).toMatchObject({ outcome: 'dead_lettered', followUp: { kind: 'disable' } });
  });

  it('headers undici refuses: the request refused by the client is the rule\'s fault, dead-lettered, not the endpoint\'s', () => {
    const refused: SendResult = { kind: 'refused', error: 'invalid expect header', latencyMs: 0 };
    expect(judge(command(), refused, undefined, T0, settings)).toMatchObject({ outcome: 'dead_lettered', ruleHealth: 'none', followUp: { kind: 'dead-letter', reason: 'request-refused' } });
    expect(breakerVerdict(refused)).toBe('inconclusive');
  });
});

describe('breaker stuck half-open', () => {
  const outcomes: Array<[string, SendResult]> = [
    ['2xx', response(200)], ['3xx', response(302)], ['401', response(401)], ['404', response(404)], ['410', response(410)],
    ['429', response(429)], ['5xx', response(503)], ['network', { kind: 'network', error: 'ECONNREFUSED', latencyMs: 1 }],
    ['timeout', { kind: 'timeout', error: 'timed out', latencyMs: 15_000 }], ['blocked', { kind: 'blocked', error: 'private address', latencyMs: 0 }],
  ];
  for (const [name, result] of outcomes) {
    it(`a half-open trial answered ${name} closes or re-opens the breaker`, () => {
      const breakers = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
      breakers.failure('e', 0);
      expect(breakers.admit('e', 1000)).toEqual({ ok: true }); // the trial
      breakers.report('e', breakerVerdict(result), 1000);
      const state = breakers.state('e', 1000);
      expect(state).not.toBe('half-open');
      // And the breaker is usable again: closed admits at once, re-opened admits a new trial after the cool-down.
      expect(breakers.admit('e', state === 'closed' ? 1000 : 2000)).toEqual({ ok: true });
    });
  }
});

describe('rule health and defaults', () => {
  it('tracks failure without success per rule, and forgets a changed rule', () => {
    const health = new RuleHealth();
    const r = { id: 'r', url: 'https://a.example/hook', updatedAt: 0 };
    expect(health.report(r, 'failure', 1)).toEqual({ ruleId: 'r', value: { ruleId: 'r', url: r.url, failingSince: 1, pool: '' } });
    expect(health.report(r, 'failure', 5)).toBeUndefined(); // only the clock's start is written
    expect(health.failingSince(r)).toBe(1);
    health.report(r, 'none', 6);
    expect(health.failingSince(r)).toBe(1);
    expect(health.report(r, 'success', 7)).toEqual({ ruleId: 'r', value: null });
    expect(health.failingSince(r)).toBeUndefined();
    expect(health.report(r, 'success', 7)).toBeUndefined();
    health.report(r, 'failure', 8);
    health.forget('r');
    expect(health.failingSince(r)).toBeUndefined();
  });

  it('item 8: a clock saved by an earlier dispatcher goes on, unless the rule changed since or points elsewhere', () => {
    const saved = new Map([['r', { ruleId: 'r', url: 'https://a.example/hook', failingSince: 1000, pool: 'default' }]]);
    const health = new RuleHealth(saved);
    const r = { id: 'r', url: 'https://a.example/hook', updatedAt: 500 };
    expect(health.failingSince(r)).toBe(1000);
    // Still failing: nothing new to write, the saved start stays the clock's.
    expect(health.report(r, 'failure', 9000)).toBeUndefined();
    expect(health.failingSince(r)).toBe(1000);
    // What this dispatcher saw itself outranks the table (an edit reaches it as a rule change, which forgets it).
    expect(health.failingSince({ ...r, url: 'https://b.example/hook' })).toBe(1000);
    const fresh = new RuleHealth(saved);
    expect(fresh.failingSince({ ...r, updatedAt: 2000 })).toBeUndefined(); // edited after the clock started
    expect(fresh.failingSince({ ...r, url: 'https://b.example/hook' })).toBeUndefined();
    // Recovered: a tombstone, and the saved entry no longer counts until the table reads it back.
    expect(fresh.report(r, 'success', 9500)).toEqual({ ruleId: 'r', value: null });
    expect(fresh.failingSince(r)).toBeUndefined();
  });

  it('the default maximum age is the schedule plus a quarter, at least an hour more', () => {
    const svix = [5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
    const total = svix.reduce((a, b) => a + b);
    expect(defaultMaxAgeMs(svix)).toBe(total + total / 4);
    expect(defaultMaxAgeMs([1000])).toBe(1000 + 3_600_000);
  });
});

describe('attempt runner', () => {
  it('poison record crash loop: anything thrown rendering or signing one command comes back as data, not as a throw', () => {
    const runner = new AttemptRunner({ sender: undefined as never, breakers: undefined as never, slots: undefined as never, wire: undefined as never, userAgent: 'test', describeLimits: '', logBodyBytes: 1024 });
    // A secret that escaped validation (written by an older version, say): signing throws.
    const broken = { ...validRule(), secrets: [{ secret: 'whsec_not-base64!', notAfter: null }] };
    expect(runner.prepare(command(), broken, T0)).toEqual({ ok: false, error: 'could not render or sign the payload: cannot sign with a malformed secret' });
    const unrenderable = { ...command(), event: { ...command().event, occurredAt: 9e15 } };
    expect(runner.prepare(unrenderable, validRule(), T0)).toMatchObject({ ok: false, error: expect.stringMatching(/^could not render or sign the payload: /) });
  });

  it('records the request with the signature and every rule-supplied header value masked', () => {
    const runner = new AttemptRunner({ sender: undefined as never, breakers: undefined as never, slots: undefined as never, wire: undefined as never, userAgent: 'test', describeLimits: '', logBodyBytes: 1024 });
    const one = command();
    const prepared = runner.prepare(one, validRule({ headers: { authorization: 'Bearer s3cret' } }), T0);
    if (!prepared.ok) throw new Error(prepared.error);
    expect(prepared.attempt.headers.authorization).toBe('Bearer s3cret');
    expect(prepared.attempt.request.headers).toMatchObject({ authorization: '••••', 'webhook-signature': 'v1,••••', 'webhook-id': one.deliveryId, 'content-type': 'application/json' });
    expect(JSON.stringify(prepared.attempt.request)).not.toContain('s3cret');
    expect(prepared.attempt.request.body).toBe(prepared.attempt.body);
  });

  it("signs with the secrets active at each attempt, though a rule version's send plan is computed once", () => {
    const runner = new AttemptRunner({ sender: undefined as never, breakers: undefined as never, slots: undefined as never, wire: undefined as never, userAgent: 'test', describeLimits: '', logBodyBytes: 1024 });
    const [rotated, current] = [newSecret(), newSecret()];
    const rule = validRule({ secrets: [{ secret: rotated, notAfter: T0 + 1000 }, { secret: current, notAfter: null }] });
    const one = command();
    const prepare = (now: number) => {
      const prepared = runner.prepare(one, rule, now);
      if (!prepared.ok) throw new Error(prepared.error);
      return prepared.attempt;
    };
    expect(prepare(T0).headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(prepare(T0 + 999).headers['webhook-signature']!.split(' ')).toHaveLength(2);
    // Past the rotated secret's notAfter, only the current one signs; the log shows one masked signature.
    const later = prepare(T0 + 1000);
    expect(later.headers['webhook-signature']).toBe(sign(one.deliveryId, later.body, [current], T0 + 1000)['webhook-signature']);
    expect(later.request.headers['webhook-signature']).toBe('v1,••••');
    // A plan made for a later time is not used for an earlier one (a clock set back, a test's own clock).
    expect(prepare(T0).headers['webhook-signature']!.split(' ')).toHaveLength(2);
  });
});

describe('deferrals that never end (item 4)', () => {
  it('waiting for a rule version the table never reaches defers along the schedule, then dead-letters as expired', () => {
    const matched = { ...command(), ruleVersion: { partition: 2, offset: 99 } };
    const young = ruleVersionPending(matched, T0 + 1000, settings);
    expect(young).toMatchObject({ kind: 'defer', cause: 'rule_version_pending', reason: expect.stringMatching(/partition 2, offset 99/) });
    expect((young as { waitMs: number }).waitMs).toBeGreaterThanOrEqual(4000);
    expect(ruleVersionPending(matched, T0 + 61 * MINUTE, settings)).toMatchObject({ kind: 'dead-letter', reason: 'expired', error: expect.stringMatching(/never reached/) });
  });

  it('a retry record due later than its topic\'s delay allows is held to that bound; an unreadable one is due when written', () => {
    const retry = new RetryPolicy([1000, 60_000], 0.1);
    const written = T0;
    expect(retry.dueAt(written + 900, written, 1000)).toBe(written + 900);
    // 2^31 ms ahead overflows a timer: held to the delay, its jitter and the clock slack.
    expect(retry.dueAt(written + 2 ** 31 + 1, written, 1000)).toBe(written + 1100 + 5000);
    expect(retry.dueAt(Number.NaN, written, 1000)).toBe(written);
  });

  it('a schedule with a zero delay is refused, not looped on', () => {
    expect(() => new RetryPolicy([5000, 0])).toThrow(RangeError);
    expect(() => new RetryPolicy([])).toThrow(RangeError);
  });
});
