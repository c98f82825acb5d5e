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
 * Failed logins per client: after `freeFailures` failures within `windowMs`, every further attempt must wait —
 * 1 s after the fifth failure, doubling per failure up to 15 min — and is refused unheard until then.
 */
export class LoginLimiter {
  readonly #clients = new Map<string, { failures: number; firstAt: number; blockedUntil: number }>();
  readonly #freeFailures: number;
  readonly #windowMs: number;

  constructor({ freeFailures = 5, windowMs = 15 * 60_000 } = {}) {
    this.#freeFailures = freeFailures;
    this.#windowMs = windowMs;
  }

  /** Milliseconds `client` must still wait before its next attempt is heard (0: go ahead). */
  waitMs(client: string, now = Date.now()): number {
    const entry = this.#clients.get(client);
    return entry ? Math.max(0, entry.blockedUntil - now) : 0;
  }

  failed(client: string, now = Date.now()): void {
    let entry = this.#clients.get(client);
    if (!entry || now - entry.firstAt > this.#windowMs) {
      entry = { failures: 0, firstAt: now, blockedUntil: 0 };
      this.#clients.set(client, entry);
    }
    entry.failures += 1;
    const over = entry.failures - this.#freeFailures;
    if (over >= 0) entry.blockedUntil = now + Math.min(1000 * 2 ** over, 15 * 60_000);
  }

  succeeded(client: string): void {
    this.#clients.delete(client);
  }
}
