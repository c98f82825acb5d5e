/**
 * Who may use the console: one admin token (CONSOLE_TOKEN, or generated once into a 0600 file), sessions after a
 * login, a CSRF token per session, and a limiter that slows down guessing. Pure state and decisions; the HTTP
 * wiring (cookies, status codes) is the server's.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../common/config.ts';

/** The shortest admin token accepted (a generated one has 43 characters: 32 random bytes, base64url). */
export const ADMIN_TOKEN_MIN_LENGTH = 32;

export interface AdminToken {
  token: string;
  /** Set when the token was generated now: the caller prints it, once. */
  generatedInto?: string;
}

/**
 * CONSOLE_TOKEN when set (its length is checked with the other settings); otherwise the token in `file`, generated
 * there (mode 0600) on the first start. A file holding a token shorter than ADMIN_TOKEN_MIN_LENGTH (an empty one, say)
 * is a configuration error naming the file: it must not let `{"token":""}` in. Synchronous: it runs once, at start,
 * before anything else.
 */
export function loadAdminToken(configured: string | undefined, file: string): AdminToken {
  if (configured) return { token: configured };
  let token: string | undefined;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`Invalid configuration:\n  CONSOLE_TOKEN_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (token !== undefined) {
    if (token.length < ADMIN_TOKEN_MIN_LENGTH) {
      // The length only, never the text: a wrong file could hold another secret.
      throw new ConfigError(`Invalid configuration:\n  CONSOLE_TOKEN_FILE: ${file} holds a token of ${token.length} characters; the admin token must have at least ${ADMIN_TOKEN_MIN_LENGTH} (delete the file to have one generated, or set CONSOLE_TOKEN)`);
    }
    return { token };
  }
  const generated = randomBytes(32).toString('base64url');
  mkdirSync(dirname(file), { recursive: true });
  // 'wx': two consoles starting at once must not overwrite each other's token.
  writeFileSync(file, `${generated}\n`, { mode: 0o600, flag: 'wx' });
  return { token: generated, generatedInto: file };
}

/** Equal strings, in time that does not depend on where they differ (both are hashed to the same length first). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

export interface Session {
  id: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

export class Sessions {
  readonly #sessions = new Map<string, Session>();
  readonly #idleMs: number;
  readonly #maxAgeMs: number;

  constructor({ idleMs = 2 * 3_600_000, maxAgeMs = 12 * 3_600_000 } = {}) {
    this.#idleMs = idleMs;
    this.#maxAgeMs = maxAgeMs;
  }

  get maxAgeMs(): number {
    return this.#maxAgeMs;
  }

  create(now = Date.now()): Session {
    this.#sweep(now);
    const session = { id: randomBytes(32).toString('base64url'), csrfToken: randomBytes(32).toString('base64url'), createdAt: now, lastSeenAt: now };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id (its idle timer restarts), or undefined. */
  get(id: string | undefined, now = Date.now()): Session | undefined {
    const session = id ? this.#sessions.get(id) : undefined;
    if (!session) return undefined;
    if (now - session.lastSeenAt > this.#idleMs || now - session.createdAt > this.#maxAgeMs) {
      this.#sessions.delete(session.id);
      return undefined;
    }
    session.lastSeenAt = now;
    return session;
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }

  #sweep(now: number): void {
    for (const session of this.#sessions.values()) {
      if (now - session.lastSeenAt > this.#idleMs || now - session.createdAt > this.#maxAgeMs) this.#sessions.delete(session.id);
    }
  }
}

/**
 * Slows down guessing the admin token, on every path that takes it (the login and `Authorization: Bearer`), for all
 * clients together: behind the loopback bind or a TLS proxy every client has the same address, so counting per
 * address would let any local process lock the admin out. Every token presented is checked, so the right one never
 * waits; a wrong one is answered only after `failureDelayMs` and once it has taken a credit from a token bucket
 * (`burst` credits, refilled at `perSecond`), in arrival order. At most `maxPending` wrong answers wait at a time;
 * while that many do, further tokens are refused unheard (429), the right one too, which bounds the guesses checked
 * to `burst` + `perSecond` per second + `maxPending` whatever the number of connections. It lasts only as long as a
 * flood of that size does: nothing is locked after it.
 */
export class GuessLimiter {
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #maxPending: number;
  readonly #failureDelayMs: number;
  /** When the bucket would be full again (GCRA's theoretical arrival time): each failure moves it one interval on. */
  #fullAt = 0;
  #pending = 0;

  constructor({ burst = 10, perSecond = 2, maxPending = 32, failureDelayMs = 500 } = {}) {
    this.#intervalMs = 1000 / perSecond;
    this.#burst = burst;
    this.#maxPending = maxPending;
    this.#failureDelayMs = failureDelayMs;
  }

  /** Whether a token presented now is refused unheard: `maxPending` wrong ones are waiting already. */
  get saturated(): boolean {
    return this.#pending >= this.#maxPending;
  }

  /** Seconds until the next waiting answer goes out, so a token is heard again. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.#intervalMs / 1000));
  }

  /** A wrong token was presented: resolves when it may be answered. */
  async failed(now = Date.now()): Promise<void> {
    const waitMs = Math.max(this.#failureDelayMs, this.#waitMs(now));
    this.#fullAt = Math.max(this.#fullAt, now) + this.#intervalMs;
    this.#pending += 1;
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    this.#pending -= 1;
  }

  /** How long a failure at `now` waits for its credit. */
  #waitMs(now: number): number {
    return Math.max(0, Math.max(this.#fullAt, now) + this.#intervalMs - now - this.#burst * this.#intervalMs);
  }
}
