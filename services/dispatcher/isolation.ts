/**
 * Per-endpoint isolation: a circuit breaker (opens after N consecutive failures, lets one trial through after a
 * cool-down), bounded in-flight requests and waiting lists, and per-rule pacing, so a slow or dead endpoint cannot take
 * the capacity healthy ones need. An endpoint is a URL's origin.
 */
import type { BreakerVerdict } from './policy.ts';

export interface BreakerSettings {
  failureThreshold: number;
  openMs: number;
}

type BreakerState = { failures: number; openUntil: number; trial: boolean };

export class CircuitBreakers {
  readonly #settings: BreakerSettings;
  readonly #states = new Map<string, BreakerState>();

  constructor(settings: BreakerSettings) {
    this.#settings = settings;
  }

  /** 'open' while refusing, 'half-open' while one trial request is allowed, else 'closed'. */
  state(endpoint: string, now = Date.now()): 'closed' | 'open' | 'half-open' {
    const state = this.#states.get(endpoint);
    if (!state || state.failures < this.#settings.failureThreshold) return 'closed';
    return now < state.openUntil ? 'open' : 'half-open';
  }

  /** How long an open breaker stays open (0 when it is not open). */
  openFor(endpoint: string, now = Date.now()): number {
    return Math.max(0, (this.#states.get(endpoint)?.openUntil ?? 0) - now);
  }

  /** Whether a request may go now; half-open admits a single trial until it reports back. */
  admit(endpoint: string, now = Date.now()): { ok: true } | { ok: false; retryInMs: number } {
    const state = this.#states.get(endpoint);
    switch (this.state(endpoint, now)) {
      case 'closed':
        return { ok: true };
      case 'open':
        return { ok: false, retryInMs: state!.openUntil - now };
      case 'half-open':
        if (state!.trial) return { ok: false, retryInMs: this.#settings.openMs };
        state!.trial = true;
        return { ok: true };
    }
  }

  /**
   * Every attempt reports back, so a half-open breaker always leaves that state: a healthy answer closes it, an
   * unhealthy one re-opens it, and an inconclusive one (the request never reached the endpoint) re-opens its cool-down.
   */
  report(endpoint: string, verdict: BreakerVerdict, now = Date.now()): void {
    if (verdict === 'healthy') return this.success(endpoint);
    if (verdict === 'unhealthy') return this.failure(endpoint, now);
    const state = this.#states.get(endpoint);
    if (state?.trial) {
      state.trial = false;
      state.openUntil = now + this.#settings.openMs;
    }
  }

  success(endpoint: string): void {
    this.#states.delete(endpoint);
  }

  failure(endpoint: string, now = Date.now()): void {
    const state = this.#states.get(endpoint) ?? { failures: 0, openUntil: 0, trial: false };
    state.failures += 1;
    state.trial = false;
    if (state.failures >= this.#settings.failureThreshold) state.openUntil = now + this.#settings.openMs;
    this.#states.set(endpoint, state);
  }

  /** Endpoints whose breaker is not closed, for metrics. */
  *notClosed(now = Date.now()): Generator<[string, 'open' | 'half-open']> {
    for (const endpoint of this.#states.keys()) {
      const state = this.state(endpoint, now);
      if (state !== 'closed') yield [endpoint, state];
    }
  }
}

/**
 * Counting semaphores per endpoint, with waiting lists. A caller past an endpoint's waiting list (`maxWaiting`) still
 * waits while the endpoint keeps answering (within `slowMs`, or it became busy less than `slowMs` ago) — that is
 * back-pressure on a busy, healthy endpoint, and a burst to an idle one is not turned away before its first answer
 * could arrive — unless the waiting room is under pressure (half of `maxWaitingTotal` taken) and, at the endpoint's
 * recent pace, the caller's turn would come later than `maxQueueWaitMs` and over twice as late as at the typical
 * busy endpoint: then a slow endpoint's backlog goes to the retry path instead of taking the room healthy ones need.
 * An endpoint that stops answering (nothing for `slowMs`, or four of its usual request times) holds no waiters at all:
 * the next caller or sweep() sends them elsewhere, rather than let them wait out its requests' timeouts.
 */
export class EndpointSlots {
  readonly #perEndpoint: number;
  readonly #maxWaiting: number;
  readonly #maxWaitingTotal: number;
  readonly #maxQueueWaitMs: number;
  readonly #slowMs: number;
  readonly #maxWaitingBytes: number;
  readonly #slots = new Map<string, Slot>();
  #waitingTotal = 0;
  /** The median expected wait of endpoints with waiters, as of the last sweep(). */
  #typicalWaitMs = 0;

  constructor(perEndpoint: number, maxWaiting: number, { maxWaitingTotal = Number.POSITIVE_INFINITY, maxQueueWaitMs = Number.POSITIVE_INFINITY, slowMs = 1000, maxWaitingBytes = Number.POSITIVE_INFINITY } = {}) {
    this.#maxWaitingBytes = maxWaitingBytes;
    this.#perEndpoint = perEndpoint;
    this.#maxWaiting = maxWaiting;
    this.#maxWaitingTotal = maxWaitingTotal;
    this.#maxQueueWaitMs = maxQueueWaitMs;
    this.#slowMs = slowMs;
  }

  /**
   * Resolves with a release function once a slot is free, or with why the caller should go elsewhere (and for how
   * long). `bytes`: what the caller holds while it waits (its rendered body), bounded per endpoint by `maxWaitingBytes`.
   */
  acquire(endpoint: string, now = Date.now(), bytes = 0): Promise<(() => void) | Refusal> {
    let slot = this.#slots.get(endpoint);
    // An endpoint becoming busy has `slowMs` to answer (an idle one has no slot: it is forgotten when its last request ends).
    if (!slot) this.#slots.set(endpoint, (slot = { inFlight: 0, waiting: [], waitingBytes: 0, lastDoneAt: now, perSecond: undefined, windowStart: now, windowDone: 0 }));
    const current = slot;
    const granted = () => {
      const since = Date.now();
      return () => {
        const done = Date.now();
        current.holdMs = done - since;
        current.lastDoneAt = done;
        // The pace at which the waiting list drains: answers per second, over windows of at least a second.
        current.windowDone += 1;
        if (done - current.windowStart >= PACE_WINDOW_MS) {
          current.perSecond = (current.windowDone * 1000) / (done - current.windowStart);
          current.windowStart = done;
          current.windowDone = 0;
        }
        const next = current.waiting.shift();
        if (next) {
          this.#waitingTotal -= 1;
          current.waitingBytes -= next.bytes;
          next.wake(true);
        } else if (--current.inFlight === 0) this.#slots.delete(endpoint);
      };
    };
    if (current.inFlight < this.#perEndpoint) {
      current.inFlight += 1;
      return Promise.resolve(granted());
    }
    if (this.#stalled(current, now)) {
      this.#evictWaiters(current);
      return Promise.resolve(NOT_ANSWERING);
    }
    if (current.waiting.length >= this.#maxWaiting) {
      const expected = this.#expectedWaitMs(current);
      // Behind the others, not merely busy: when every endpoint drains slowly the dispatcher itself is the bottleneck,
      // and sending work to the retry path would only add to it.
      if (this.#waitingTotal >= this.#maxWaitingTotal / 2 && expected > this.#maxQueueWaitMs && expected > 2 * this.#typicalWaitMs) {
        return Promise.resolve({ reason: `is behind: ${current.waiting.length} waiting would take ~${Math.round(expected / 1000)} s at its pace`, retryInMs: expected });
      }
    }
    // However many may wait, what they hold may not grow without bound: 256 kB events render to bodies up to ~6× that.
    if (current.waiting.length > 0 && current.waitingBytes + bytes > this.#maxWaitingBytes) {
      return Promise.resolve({ reason: `holds ${Math.round(current.waitingBytes / 1024)} kB of bodies waiting` });
    }
    this.#waitingTotal += 1;
    current.waitingBytes += bytes;
    return new Promise((resolve) => current.waiting.push({ bytes, wake: (ok) => resolve(ok ? granted() : NOT_ANSWERING) }));
  }

  /** Sends the waiters of endpoints that stopped answering elsewhere; notes the typical wait. */
  sweep(now = Date.now()): void {
    const waits: number[] = [];
    for (const slot of this.#slots.values()) {
      if (this.#stalled(slot, now)) this.#evictWaiters(slot);
      else if (slot.waiting.length > 0) waits.push(this.#expectedWaitMs(slot));
    }
    waits.sort((a, b) => a - b);
    this.#typicalWaitMs = waits[Math.floor((waits.length - 1) / 2)] ?? 0;
  }

  /** Callers waiting for a slot, over all endpoints. */
  get waiting(): number {
    return this.#waitingTotal;
  }

  inFlight(): number {
    let total = 0;
    for (const slot of this.#slots.values()) total += slot.inFlight;
    return total;
  }

  /** How long a newcomer would wait at the endpoint's recent pace (0 until a pace is known: a new burst is not judged). */
  #expectedWaitMs(slot: Slot): number {
    return slot.perSecond === undefined ? 0 : ((slot.waiting.length + 1) * 1000) / slot.perSecond;
  }

  /** No answer for `slowMs`, or for four of its usual request times if those are longer (a loaded machine answers late). */
  #stalled(slot: Slot, now: number): boolean {
    return now - slot.lastDoneAt > Math.max(this.#slowMs, 4 * (slot.holdMs ?? 0));
  }

  /** Waiting for an endpoint that stopped answering only holds room until its requests time out: send them elsewhere. */
  #evictWaiters(slot: Slot): void {
    const evicted = slot.waiting.splice(0);
    this.#waitingTotal -= evicted.length;
    slot.waitingBytes = 0;
    for (const waiter of evicted) waiter.wake(false);
  }
}

/** Why a caller should go elsewhere; `retryInMs`: when the endpoint should have room again, if that can be told. */
export interface Refusal {
  reason: string;
  retryInMs?: number;
}

const NOT_ANSWERING: Refusal = { reason: 'is not answering' };
const PACE_WINDOW_MS = 1000;

interface Slot {
  inFlight: number;
  waiting: Array<{ bytes: number; wake: (granted: boolean) => void }>;
  waitingBytes: number;
  lastDoneAt: number;
  /** How long the last request held its slot: a loaded machine answers later, which is not a stall. */
  holdMs?: number;
  /** Answers per second over the last full window; undefined until a window has passed. */
  perSecond: number | undefined;
  windowStart: number;
  windowDone: number;
}

/** A counting semaphore: at most `limit` holders; the others wait in arrival order. */
export class Semaphore {
  readonly #limit: number;
  #held = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  get held(): number {
    return this.#held;
  }

  /** Resolves once a place is free (at once when one is); call release() when done with it. */
  acquire(): Promise<void> | undefined {
    if (this.#held < this.#limit) {
      this.#held += 1;
      return undefined;
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next(); // the place passes straight to the next waiter
    else this.#held -= 1;
  }
}

/** Per-rule pacing: requests of one key are spaced 1/rate apart; each caller learns how long to wait for its turn. */
export class RateLimiter {
  readonly #nextFree = new Map<string, number>();

  /** How long a request of `key` would wait now, without reserving anything (a deferred command must not hold a turn). */
  waitFor(key: string, now = Date.now()): number {
    return Math.max(0, (this.#nextFree.get(key) ?? now) - now);
  }

  /** Reserves the next slot for `key` at `perSecond`; returns the wait in ms (0 = go now). */
  reserve(key: string, perSecond: number, now = Date.now()): number {
    const slot = Math.max(now, this.#nextFree.get(key) ?? now);
    this.#nextFree.set(key, slot + 1000 / perSecond);
    return slot - now;
  }

  /** Forgets keys whose reservations are all in the past, so idle rules cost nothing. */
  prune(now = Date.now()): void {
    for (const [key, nextFree] of this.#nextFree) if (nextFree <= now) this.#nextFree.delete(key);
  }
}
