/**
 * When to try again. Each delay of the schedule has its own retry topic, where records wait in arrival order; a record
 * is written to the topic of the delay it needs, never with a due time beyond that topic's delay, so every topic stays
 * ordered by due time and pausing a partition at its first not-yet-due record is always right.
 */

export interface RetryDecision {
  /** The retry topic's delay. */
  topicDelayMs: number;
  notBefore: number;
}

export class RetryPolicy {
  readonly delays: readonly number[];
  readonly #jitter: number;
  readonly #topicDelays: readonly number[];

  /** `jitter` is the fraction of a delay added at random (0.1 = up to +10 %), so retries of one outage spread out. */
  constructor(delays: readonly number[], jitter = 0.1) {
    this.delays = delays;
    this.#jitter = jitter;
    this.#topicDelays = [...new Set(delays)].sort((a, b) => a - b);
  }

  /** Attempts in all: the first plus one per delay. */
  get maxAttempts(): number {
    return this.delays.length + 1;
  }

  /** After failed attempt `attempt` (1-based): when to retry, or undefined when the schedule is exhausted. */
  afterFailure(attempt: number, retryAfterMs?: number, now = Date.now()): RetryDecision | undefined {
    const scheduled = this.delays[attempt - 1];
    if (scheduled === undefined) return undefined;
    return this.wait(Math.max(scheduled, retryAfterMs ?? 0), now);
  }

  /** A wait of at least `minimumMs` (capped at the longest delay), in the smallest retry topic that fits. */
  wait(minimumMs: number, now = Date.now()): RetryDecision {
    const topicDelayMs = this.#topicDelays.find((delay) => delay >= minimumMs) ?? this.#topicDelays.at(-1)!;
    const jitterMs = Math.floor(Math.random() * this.#jitter * topicDelayMs);
    return { topicDelayMs, notBefore: now + topicDelayMs + jitterMs };
  }
}
