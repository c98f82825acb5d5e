import { describe, expect, it, vi } from 'vitest';
import { CircuitBreakers, EndpointSlots, type Refusal } from '../../services/dispatcher/isolation.ts';
import { RetryPolicy } from '../../services/dispatcher/retry-policy.ts';

/** A slot that must have been granted (a refusal fails the test with its reason). */
async function grant(acquired: Promise<(() => void) | Refusal>): Promise<() => void> {
  const release = await acquired;
  if (typeof release !== 'function') throw new Error(`refused: ${release.reason}`);
  return release;
}
import { retryAfter } from '../../services/dispatcher/sender.ts';

describe('circuit breaker', () => {
  it('opens after N consecutive failures, lets one trial through after the cool-down, closes on success', () => {
    const breakers = new CircuitBreakers({ failureThreshold: 3, openMs: 1000 });
    const e = 'https://hooks.example';
    breakers.failure(e, 0);
    breakers.failure(e, 0);
    expect(breakers.admit(e, 10)).toEqual({ ok: true });
    breakers.failure(e, 100);
    expect(breakers.state(e, 200)).toBe('open');
    expect(breakers.admit(e, 200)).toEqual({ ok: false, retryInMs: 900 });
    expect(breakers.state(e, 1100)).toBe('half-open');
    expect(breakers.admit(e, 1100)).toEqual({ ok: true });
    expect(breakers.admit(e, 1101).ok).toBe(false); // one trial at a time
    breakers.failure(e, 1200);
    expect(breakers.state(e, 1300)).toBe('open');
    breakers.success(e);
    expect(breakers.state(e, 1300)).toBe('closed');
  });

  it('bounds in-flight requests per endpoint; past the wait list, only an endpoint that answers (or is new) makes callers wait', async () => {
    const pending = Symbol('pending');
    const state = <T>(promise: Promise<T>) => Promise.race([promise, new Promise<typeof pending>((resolve) => setImmediate(() => resolve(pending)))]);
    const slots = new EndpointSlots(1, 1, { slowMs: 1000 });
    const start = Date.now();
    const first = await grant(slots.acquire('a', start));
    const queued = slots.acquire('a', start);
    // Past the wait list, but 'a' was first seen just now: a burst waits for its first answer instead of being deferred.
    const overflow = slots.acquire('a', start);
    expect(await state(overflow)).toBe(pending);
    expect(await slots.acquire('b', start)).toBeTypeOf('function');
    slots.sweep(start + 900);
    expect(await state(overflow)).toBe(pending); // still within its first second
    // No answer for over a second: every waiter goes elsewhere (they would only wait out its timeouts), newcomers too.
    slots.sweep(start + 1100);
    expect(await overflow).toEqual({ reason: 'is not answering' });
    expect(await queued).toEqual({ reason: 'is not answering' });
    expect(await slots.acquire('a', start + 1100)).toEqual({ reason: 'is not answering' });
    expect(slots.waiting).toBe(0);
    first();
    // 'a' answered just now: a full wait list means back-pressure, not deferral.
    const held = await grant(slots.acquire('a'));
    const waiting = [slots.acquire('a'), slots.acquire('a')];
    slots.sweep();
    expect(await state(waiting[1]!)).toBe(pending);
    held();
    expect(await waiting[0]).toBeTypeOf('function');
    expect(slots.inFlight()).toBe(2);
  });
});

describe('retry policy', () => {
  const policy = new RetryPolicy([5000, 300_000, 1_800_000], 0.1);
  it('follows the schedule with positive jitter, picks the topic of the delay, and ends after the last delay', () => {
    const decision = policy.afterFailure(1, undefined, 0)!;
    expect(decision.topicDelayMs).toBe(5000);
    expect(decision.notBefore).toBeGreaterThanOrEqual(5000);
    expect(decision.notBefore).toBeLessThan(5500);
    expect(policy.afterFailure(3, undefined, 0)!.topicDelayMs).toBe(1_800_000);
    expect(policy.afterFailure(4, undefined, 0)).toBeUndefined();
    expect(policy.maxAttempts).toBe(4);
  });
  // A busy endpoint due to have room in ~24 s waited 5 min: the smallest topic that fits was the next one past it.
  it('waits about an estimate in the nearest topic (log scale), not the next one past it', () => {
    expect(policy.wait(24_000, 0).topicDelayMs).toBe(300_000);
    expect(policy.waitAbout(24_000, 0)).toMatchObject({ topicDelayMs: 5000 });
    expect(policy.waitAbout(24_000, 0).notBefore).toBeLessThan(5500);
    expect(policy.waitAbout(60_000, 0).topicDelayMs).toBe(300_000);
    expect(policy.waitAbout(0, 0).topicDelayMs).toBe(5000);
    expect(policy.waitAbout(10 * 3_600_000, 0).topicDelayMs).toBe(1_800_000);
  });
  it('honours Retry-After by moving to a longer delay, never past the longest', () => {
    expect(policy.afterFailure(1, 60_000, 0)!.topicDelayMs).toBe(300_000);
    expect(policy.afterFailure(1, 10 * 3_600_000, 0)!.topicDelayMs).toBe(1_800_000);
    expect(retryAfter('120')).toBe(120_000);
    expect(retryAfter(new Date(Date.now() + 60_000).toUTCString())).toBeGreaterThan(58_000);
    expect(retryAfter('soon')).toBeUndefined();
  });
});

describe('endpoint slots', () => {
  it('capacity and isolation share one pool: past its waiting list, a slow endpoint queues only what it will reach within the queue wait, a fast one keeps queueing', async () => {
    const pending = Symbol('pending');
    const state = <T>(promise: Promise<T>) => Promise.race([promise, new Promise<typeof pending>((resolve) => setImmediate(() => resolve(pending)))]);
    // The slots read the clock to learn each endpoint's pace: set it, so the test does not depend on this machine's speed.
    vi.useFakeTimers({ toFake: ['Date'], now: 0 });
    try {
      // A waiting room of 2: under pressure as soon as one command waits.
      const slots = new EndpointSlots(2, 1, { maxWaitingTotal: 2, maxQueueWaitMs: 2500, slowMs: 60_000 });
      // Over a first second, the slow endpoint answers once, the fast one a hundred times.
      const [slowHeld, slowDone] = [await grant(slots.acquire('slow')), await grant(slots.acquire('slow'))];
      const fastHeld = await grant(slots.acquire('fast'));
      vi.setSystemTime(500);
      for (let index = 0; index < 99; index += 1) (await grant(slots.acquire('fast')))();
      const fastLast = await grant(slots.acquire('fast'));
      vi.setSystemTime(1000);
      slowDone();
      fastLast();
      const holders = [slowHeld, fastHeld, await grant(slots.acquire('slow')), await grant(slots.acquire('fast'))];
      // A hundred answers a second: fifty waiting are half a second of work, back-pressure rather than deferral.
      const fastQueue = Array.from({ length: 50 }, () => slots.acquire('fast'));
      expect(await state(fastQueue.at(-1)!)).toBe(pending);
      // At one answer a second: the waiting list (1), then a turn 2 s away waits; one 3 s away — past the queue wait,
      // and far behind the typical endpoint's half second — goes elsewhere.
      const slowQueue = Array.from({ length: 2 }, () => slots.acquire('slow'));
      slots.sweep(1000);
      expect(await state(slowQueue.at(-1)!)).toBe(pending);
      expect(await slots.acquire('slow')).toEqual({ reason: 'is behind: 2 waiting would take ~3 s at its pace', retryInMs: 3000 });
      expect(slots.waiting).toBe(52);
      holders.forEach((release) => release());
    } finally {
      vi.useRealTimers();
    }
  });

  it('item 3: bounds the bytes of bodies waiting for one endpoint; past it, its overflow goes elsewhere while others still wait', async () => {
    const slots = new EndpointSlots(1, 1000, { slowMs: 60_000, maxWaitingBytes: 1000 });
    const now = Date.now();
    const first = await grant(slots.acquire('slow', now, 10));
    const waiting = [slots.acquire('slow', now, 600), slots.acquire('slow', now, 300)];
    // 900 bytes wait for 'slow'; 200 more would pass its 1,000: refused although its count bound is far away.
    expect(await slots.acquire('slow', now, 200)).toEqual({ reason: 'holds 1 kB of bodies waiting' });
    expect(await grant(slots.acquire('other', now, 5000))).toBeTypeOf('function');
    expect(slots.waiting).toBe(2);
    first();
    (await grant(waiting[0]!))();
    // The granted waiter's bytes left the waiting room: room again.
    const next = slots.acquire('slow', now, 600);
    (await grant(waiting[1]!))();
    expect(await next).toBeTypeOf('function');
  });
});
