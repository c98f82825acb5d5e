/**
 * The chaos run's strikes: when they fall (drawn from a seed, so that a run's plan can be replayed with `--seed`) and
 * carrying them out — kill a victim, keep it down a moment, bring it back, record what it cost.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export type Target = 'matcher' | 'dispatcher' | 'broker';

export interface Strike {
  /** Milliseconds after publishing began. */
  atMs: number;
  /** How long the victim stays down before it is started again. */
  pauseMs: number;
}

export interface StrikeRecord {
  target: Target;
  /** When the victim died, ms after publishing began. */
  atMs: number;
  /** Pairs delivered by then: more than 0 and fewer than expected means it struck mid-run. */
  deliveredPairs: number;
  /** From death to ready again. */
  downMs: number;
}

/** The least time a restarted victim works before it is struck again. */
const MIN_UP_MS = 5000;

/** mulberry32: a small, good-enough seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * `count` strikes within `windowMs`: one at a random moment of each of `count` equal slots, away from the slot edges,
 * so they are random but never bunched (a kill -9'd group member holds its partitions until the 10 s session timeout;
 * kills closer than that only stack stalls). Each victim stays down 0.5–3 s.
 */
export function strikePlan(count: number, windowMs: number, random: () => number): Strike[] {
  return Array.from({ length: count }, (_, slot) => ({
    atMs: Math.round(((slot + 0.15 + 0.7 * random()) * windowMs) / count),
    pauseMs: Math.round(500 + 2500 * random()),
  }));
}

export class Striker {
  readonly records: StrikeRecord[] = [];
  readonly #elapsed: () => number;
  readonly #deliveredPairs: () => number;
  readonly #progress: (line: string) => void;
  readonly #flowing: Promise<void>;
  #brokerBack: Promise<unknown> = Promise.resolve();

  /** `elapsed`: ms since publishing began; `deliveredPairs`: pairs delivered so far. */
  constructor(elapsed: () => number, deliveredPairs: () => number, progress: (line: string) => void) {
    this.#elapsed = elapsed;
    this.#deliveredPairs = deliveredPairs;
    this.#progress = progress;
    // Strikes wait for the first delivery, so that every one of them falls mid-flow even on a slow start.
    this.#flowing = (async () => {
      while (deliveredPairs() === 0) await sleep(50);
    })();
  }

  count(target: Target): number {
    return this.records.filter((record) => record.target === target).length;
  }

  /** Strikes `target` at each planned moment: `kill` ends it, `revive` brings it back and resolves once it is ready. */
  async run(target: Target, plan: Strike[], kill: () => Promise<void>, revive: () => Promise<unknown>): Promise<void> {
    await this.#flowing;
    let upAt = 0;
    for (const { atMs, pauseMs } of plan) {
      // A moment that passed while the victim was still coming back waits until it has worked a while: kills in a
      // row would only stack stalls.
      await sleep(Math.max(0, atMs - this.#elapsed(), upAt + MIN_UP_MS - this.#elapsed()));
      // A service killed while the broker is down has nothing in flight to lose: it is struck once the broker is back.
      if (target !== 'broker') await this.#brokerBack;
      const outage = kill().then(async (): Promise<StrikeRecord> => {
        const diedAt = this.#elapsed();
        const deliveredPairs = this.#deliveredPairs();
        await sleep(pauseMs);
        await revive();
        return { target, atMs: Math.round(diedAt), deliveredPairs, downMs: Math.round(this.#elapsed() - diedAt) };
      });
      if (target === 'broker') this.#brokerBack = outage;
      const record = await outage;
      upAt = this.#elapsed();
      this.records.push(record);
      const what = target === 'broker' ? 'killed the broker' : `kill -9 ${target}`;
      this.#progress(`${(record.atMs / 1000).toFixed(1)} s: ${what} (${record.deliveredPairs} pairs delivered); ready again after ${(record.downMs / 1000).toFixed(1)} s`);
    }
  }
}
