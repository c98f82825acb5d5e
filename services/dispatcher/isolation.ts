/**
 * Per-endpoint isolation: a circuit breaker (opens after N consecutive failures, lets one trial through after a
 * cool-down) and bounded in-flight requests, so a slow or dead endpoint cannot take the capacity healthy ones need.
 * An endpoint is a URL's origin.
 */

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
 * Counting semaphores per endpoint, with a wait list. Past the wait list, a caller still waits while the endpoint keeps
 * answering (a request finished within `slowMs`, or it became busy less than `slowMs` ago): that is back-pressure on
 * a busy, healthy endpoint, and a burst to an endpoint that was idle is not turned away before its first answer could
 * arrive (our own event loop may be busy with that very burst). An endpoint that stops answering gets no such waiters:
 * new ones are told at once to go elsewhere (the retry path), and those already waiting past the wait list are sent
 * there too (by the next caller or sweep()), so a hanging endpoint holds the dispatcher's capacity for `slowMs` at most.
 */
export class EndpointSlots {
  readonly #perEndpoint: number;
  readonly #maxWaiting: number;
  readonly #slowMs: number;
  readonly #slots = new Map<string, { inFlight: number; waiting: Array<(granted: boolean) => void>; lastDoneAt: number }>();

  constructor(perEndpoint: number, maxWaiting: number, slowMs = 1000) {
    this.#perEndpoint = perEndpoint;
    this.#maxWaiting = maxWaiting;
    this.#slowMs = slowMs;
  }

  /** Resolves with a release function once a slot is free, or with undefined when the caller should go elsewhere. */
  acquire(endpoint: string, now = Date.now()): Promise<(() => void) | undefined> {
    let slot = this.#slots.get(endpoint);
    // An endpoint becoming busy has `slowMs` to answer (an idle one has no slot: it is forgotten when its last request ends).
    if (!slot) this.#slots.set(endpoint, (slot = { inFlight: 0, waiting: [], lastDoneAt: now }));
    const current = slot;
    const release = () => {
      current.lastDoneAt = Date.now();
      const next = current.waiting.shift();
      if (next) next(true);
      else if (--current.inFlight === 0) this.#slots.delete(endpoint);
    };
    if (current.inFlight < this.#perEndpoint) {
      current.inFlight += 1;
      return Promise.resolve(release);
    }
    if (current.waiting.length >= this.#maxWaiting && this.#stalled(current, now)) {
      this.#evictOverflow(current);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => current.waiting.push((granted) => resolve(granted ? release : undefined)));
  }

  /** Sends the waiters past the wait list of endpoints that stopped answering elsewhere. */
  sweep(now = Date.now()): void {
    for (const slot of this.#slots.values()) if (this.#stalled(slot, now)) this.#evictOverflow(slot);
  }

  inFlight(): number {
    let total = 0;
    for (const slot of this.#slots.values()) total += slot.inFlight;
    return total;
  }

  #stalled(slot: { lastDoneAt: number }, now: number): boolean {
    return now - slot.lastDoneAt > this.#slowMs;
  }

  #evictOverflow(slot: { waiting: Array<(granted: boolean) => void> }): void {
    for (const waiter of slot.waiting.splice(this.#maxWaiting)) waiter(false);
  }
}

/** Per-rule pacing: requests of one key are spaced 1/rate apart; each caller learns how long to wait for its turn. */
export class RateLimiter {
  readonly #nextFree = new Map<string, number>();

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
