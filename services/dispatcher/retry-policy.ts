/**
 * When to try again. Each delay of the schedule has its own retry topic, where records wait in arrival order; a record
 * is written to the topic of the delay it needs, never with a due time beyond that topic's delay, so every topic stays
 * ordered by due time and pausing a partition at its first not-yet-due record is always right.
 */

/** Clock skew allowed between the writer of a retry record and its reader. */
const DUE_SLACK_MS = 5000;

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
    // A zero delay would make every deferral step in place forever; config.ts refuses one with the variable named.
    if (delays.length === 0 || delays.some((delay) => !(delay > 0))) throw new RangeError(`retry delays must be positive, got [${delays.join(', ')}]`);
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

  /**
   * When a record of the retry topic of `topicDelayMs`, written at `writtenAt` with `notBefore`, is due. A record is
   * never written due later than its topic's delay plus jitter, so a later `notBefore` (a crafted or corrupt header,
   * a topic mirrored from elsewhere) is held to that bound: the record is then judged by its age, never held for ever.
   */
  dueAt(notBefore: number, writtenAt: number, topicDelayMs: number): number {
    const latest = writtenAt + Math.ceil(topicDelayMs * (1 + this.#jitter)) + DUE_SLACK_MS;
    return Number.isFinite(notBefore) ? Math.min(notBefore, latest) : writtenAt;
  }

  /** A wait of at least `minimumMs` (capped at the longest delay), in the smallest retry topic that fits. */
  wait(minimumMs: number, now = Date.now()): RetryDecision {
    return this.#in(this.#topicDelays.find((delay) => delay >= minimumMs) ?? this.#topicDelays.at(-1)!, now);
  }

  /**
   * A wait of about `estimateMs` (when a busy endpoint should have room): in the retry topic whose delay is nearest
   * on a log scale. The smallest that fits may be far later — with the default schedule, 5 min for a 24 s estimate —
   * while one that comes back early costs a second look, at most a few.
   */
  waitAbout(estimateMs: number, now = Date.now()): RetryDecision {
    const distance = (delay: number) => Math.abs(Math.log(delay / Math.max(estimateMs, 1)));
    return this.#in(this.#topicDelays.reduce((best, delay) => (distance(delay) < distance(best) ? delay : best)), now);
  }

  #in(topicDelayMs: number, now: number): RetryDecision {
    const jitterMs = Math.floor(Math.random() * this.#jitter * topicDelayMs);
    return { topicDelayMs, notBefore: now + topicDelayMs + jitterMs };
  }
}
