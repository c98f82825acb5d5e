/**
 * Keeps the history within its age and size: every minute, and again at once while there was more to delete, the
 * oldest attempts go in steps of a few thousand rows, each its own short transaction, so the feed's writes and the
 * page's queries are never held up for long.
 */
import type { Logger } from '../../common/logger.ts';
import type { HistoryStore } from './store.ts';

export interface RetentionSettings {
  /** Attempts older than this are deleted. */
  maxAgeMs: number;
  /** Beyond this, the oldest attempts are deleted whatever their age. */
  maxBytes: number;
}

/** 30 days, 10 GB: the console's and CONSOLE_HISTORY_RETENTION / CONSOLE_HISTORY_MAX_SIZE's defaults. */
export const DEFAULT_RETENTION: RetentionSettings = { maxAgeMs: 30 * 86_400_000, maxBytes: 10 * 1024 ** 3 };

const STEP_ROWS = 2000;

export class HistoryRetention {
  readonly settings: RetentionSettings;
  readonly #store: HistoryStore;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;

  constructor(store: HistoryStore, settings: RetentionSettings, logger: Logger, { now = Date.now, intervalMs = 60_000 } = {}) {
    this.settings = settings;
    this.#store = store;
    this.#logger = logger;
    this.#now = now;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#timer = setInterval(() => void this.run(), this.#intervalMs);
    this.#timer.unref();
    void this.run();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass (or the one already going): deletes until nothing is past the bounds; returns how many it deleted. */
  run(): Promise<number> {
    this.#running ??= this.#pass().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { maxAgeMs, maxBytes } = this.settings;
    let deleted = 0;
    try {
      await this.#store.pruneBuckets(this.#now());
      for (;;) {
        const step = await this.#store.prune(this.#now() - maxAgeMs, maxBytes, STEP_ROWS);
        deleted += step;
        if (step === 0) break;
        // Between steps, whatever waits for the database goes first.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'history retention failed; it tries again in a minute');
    }
    if (deleted > 0) this.#logger.info({ deleted }, 'history retention deleted the oldest attempts');
    return deleted;
  }
}
