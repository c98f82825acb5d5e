/**
 * Sends one signed POST with undici: one shared connection pool, capped connections per origin, a connect timeout and a
 * whole-attempt deadline, no redirects (a 3xx is a failure), the response body drained up to a cap and never kept.
 * Every outcome comes back as data, never as a thrown error.
 */
import { Agent, buildConnector, request } from 'undici';
import { BlockedAddressError, type AddressGuard } from './ssrf.ts';

export interface SenderSettings {
  guard: AddressGuard;
  connectTimeoutMs: number;
  attemptTimeoutMs: number;
  connectionsPerOrigin: number;
  userAgent: string;
}

export type SendResult =
  | { kind: 'response'; status: number; retryAfterMs: number | undefined; latencyMs: number }
  | { kind: 'blocked' | 'timeout' | 'network'; error: string; latencyMs: number };

const RESPONSE_BODY_CAP = 64 * 1024;

export class Sender {
  readonly #agent: Agent;
  readonly #settings: SenderSettings;

  constructor(settings: SenderSettings) {
    this.#settings = settings;
    const connect = buildConnector({ timeout: settings.connectTimeoutMs });
    this.#agent = new Agent({
      connections: settings.connectionsPerOrigin,
      headersTimeout: settings.attemptTimeoutMs,
      bodyTimeout: settings.attemptTimeoutMs,
      connect: (options, callback) => {
        settings.guard.resolve(options.hostname).then(
          ({ address }) => {
            // Dial the checked address; keep the name for TLS (SNI and certificate verification).
            const servername = options.servername ?? (options.protocol === 'https:' ? options.hostname : undefined);
            connect({ ...options, hostname: address, ...(servername ? { servername } : {}) }, callback);
          },
          (error: Error) => callback(error, null),
        );
      },
    });
  }

  async send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = performance.now();
    const latency = () => Math.round((performance.now() - started) * 10) / 10;
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: { ...headers, 'user-agent': this.#settings.userAgent, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.#settings.attemptTimeoutMs),
      });
      await response.body.dump({ limit: RESPONSE_BODY_CAP }).catch(() => undefined);
      return { kind: 'response', status: response.statusCode, retryAfterMs: retryAfter(response.headers['retry-after']), latencyMs: latency() };
    } catch (error) {
      const cause = causeOf(error);
      if (cause instanceof BlockedAddressError) return { kind: 'blocked', error: cause.message, latencyMs: latency() };
      const timedOut = cause.name === 'TimeoutError' || cause.name === 'AbortError' || /Timeout/.test((cause as { code?: string }).code ?? '');
      return { kind: timedOut ? 'timeout' : 'network', error: describe(cause, timedOut, this.#settings.attemptTimeoutMs), latencyMs: latency() };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

function causeOf(error: unknown): Error {
  let current = error as Error & { cause?: unknown };
  while (current.cause instanceof Error && !(current instanceof BlockedAddressError)) current = current.cause as Error & { cause?: unknown };
  return current;
}

function describe(error: Error, timedOut: boolean, attemptTimeoutMs: number): string {
  const code = (error as { code?: string }).code;
  if (timedOut) return `timed out (${code ?? error.name}; attempt limit ${attemptTimeoutMs} ms)`;
  return `${code ? `${code}: ` : ''}${error.message}`;
}

/** Retry-After in ms: delta-seconds or an HTTP date. */
export function retryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
