/**
 * Sends one signed POST with undici: one shared connection pool, capped connections per origin, a connect timeout and a
 * whole-attempt deadline, no redirects (a 3xx is a failure), the response body drained up to a cap, its start kept
 * for the delivery log with its size and hash. Every outcome comes back as data, never as a thrown error.
 *
 * It uses undici's low-level dispatch() rather than request(): no body stream, promise chain or abort listener per
 * request, which made up a third of the client's CPU per delivery. The attempt deadline is enforced by one sweep over
 * the requests in flight instead of a timer per request.
 */
import { createHash, hash, type Hash } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent, buildConnector, ProxyAgent, type Dispatcher } from 'undici';
import type { AttemptResponse, EndpointTls } from '../../schemas/index.ts';
import { CLIENT_CERTIFICATE_REFUSED } from '../common/tls-errors.ts';
import { utf8Prefix } from '../common/deliveries.ts';
import { BlockedAddressError, type AddressGuard } from '../common/ssrf.ts';

export interface SenderSettings {
  guard: AddressGuard;
  connectTimeoutMs: number;
  attemptTimeoutMs: number;
  connectionsPerOrigin: number;
  userAgent: string;
  /** Bytes of a response body kept for the delivery log. */
  logBodyBytes: number;
  /**
   * An HTTP(S) proxy every request goes through (a CONNECT tunnel, also for http:), so deliveries leave from its
   * address. It is dialled as configured, not judged by the guard; the target still is, before the request.
   */
  proxy?: URL;
}

/** The response as the delivery log keeps it: headers (credentials masked) and the body's start, size and hash. */
export type ResponseSummary = AttemptResponse;

/**
 * `refused`: the HTTP client would not build the request (a header it rejects, say) — the rule's fault, not the
 * endpoint's. `blocked`: the SSRF guard refused the address. `tls`: the TLS handshake failed — the endpoint refused the
 * rule's client certificate, or its certificate is not one the rule's CA (or the system's) vouches for.
 */
export type SendResult =
  | { kind: 'response'; status: number; retryAfterMs: number | undefined; latencyMs: number; response: ResponseSummary }
  | { kind: FailureKind; error: string; latencyMs: number };

type FailureKind = 'blocked' | 'refused' | 'tls' | 'timeout' | 'network';

/** Past this, a response body is not drained: the connection is closed instead. */
const RESPONSE_BODY_CAP = 64 * 1024;
/** undici's codes for a request it will not build (a header it rejects, an `expect` header): nothing was sent. */
const REFUSALS = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);
/** Response headers that may carry the endpoint's own credentials: recorded masked. */
const MASKED_RESPONSE_HEADERS = new Set(['set-cookie', 'authorization', 'proxy-authenticate', 'www-authenticate']);
const SWEEP_INTERVAL_MS = 100;
/** Node's codes for a failed TLS handshake or certificate check (ERR_SSL_…, ERR_TLS_…, CERT_HAS_EXPIRED, …). */
const TLS_FAILURE = /^ERR_SSL_|^ERR_TLS_|CERT|SELF_SIGNED|^UNABLE_TO_/;
/** Connection pools kept for rules with their own TLS settings; past it the oldest is closed. */
const MAX_TLS_AGENTS = 1000;

/** The headers the sender adds to every request; the delivery log shows them as sent. */
export const fixedHeaders = (userAgent: string): Record<string, string> => ({ 'user-agent': userAgent, 'content-type': 'application/json' });

class AttemptTimeoutError extends Error {
  override name = 'TimeoutError';
}

/** A request in flight: when it must be over, and how to end it then. */
interface Attempt {
  deadline: number;
  expire(): void;
}

export class Sender {
  readonly #agent: Dispatcher;
  /** A pool per distinct TLS setting (client certificate, CA), by its digest: a connection presents one certificate. */
  readonly #tlsAgents = new Map<string, Dispatcher>();
  readonly #pool: Agent.Options;
  readonly #settings: SenderSettings;
  readonly #fixedHeaders: Record<string, string>;
  /** In start order, which is deadline order: every attempt has the same limit. */
  readonly #inFlight = new Set<Attempt>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(settings: SenderSettings) {
    this.#settings = settings;
    this.#fixedHeaders = fixedHeaders(settings.userAgent);
    this.#pool = { connections: settings.connectionsPerOrigin, headersTimeout: settings.attemptTimeoutMs, bodyTimeout: settings.attemptTimeoutMs };
    this.#agent = this.#newAgent({});
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
  }

  /** `tls`: the rule's own TLS settings for its endpoint, if it has any. */
  send(url: URL, headers: Record<string, string>, body: string, tls: EndpointTls | null = null): Promise<SendResult> {
    const agent = tls ? this.#tlsAgent(tls) : this.#agent;
    const started = performance.now();
    const latency = () => Math.round((performance.now() - started) * 10) / 10;
    let status: number | undefined;
    let responseHeaders: Record<string, string | string[] | undefined> = {};
    const kept: Buffer[] = [];
    const keep = this.#settings.logBodyBytes;
    // The whole body's hash: at its end, in one call over the kept chunks while it fits in `keep` (a Hash object per
    // response cost more than the digest), as it arrives once it is larger.
    let hasher: Hash | undefined;
    let bodyBytes = 0;
    let abort: ((reason: Error) => void) | undefined;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: SendResult) => {
        if (settled) return;
        settled = true;
        this.#inFlight.delete(attempt);
        resolve(result);
      };
      // Once the status arrived, the attempt is that response however its body ends (too large, too slow, aborted).
      const outcome = (error: Error) => (status === undefined ? this.#failure(error, latency()) : response());
      // The hash is of the whole body: only a body read to its end has one.
      const response = (ended = false) => {
        const start = Buffer.concat(kept);
        const sha256 = !ended ? null : hasher ? hasher.digest('hex') : hash('sha256', start, 'hex');
        return this.#response(status!, responseHeaders, { start, bodyBytes, sha256 }, latency());
      };
      // At the deadline the attempt is over, whether undici already started it (abort it) or not (abort it at its start).
      let timeout: AttemptTimeoutError | undefined;
      const attempt: Attempt = {
        deadline: started + this.#settings.attemptTimeoutMs,
        expire: () => {
          timeout = new AttemptTimeoutError(`no complete answer within ${this.#settings.attemptTimeoutMs} ms`);
          settle(outcome(timeout));
          abort?.(timeout);
        },
      };
      this.#inFlight.add(attempt);
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (controller) => {
          abort = (reason) => controller.abort(reason);
          if (timeout) abort(timeout);
        },
        onResponseStart: (_controller, statusCode, headers) => {
          status = statusCode;
          responseHeaders = headers;
        },
        onResponseData: (controller, chunk) => {
          // Only the start is kept; past the cap, the connection is closed rather than drained.
          if (bodyBytes < keep) kept.push(chunk);
          bodyBytes += chunk.length;
          if (hasher) hasher.update(chunk);
          else if (bodyBytes > keep) {
            hasher = createHash('sha256');
            for (const part of kept) hasher.update(part);
            if (kept.at(-1) !== chunk) hasher.update(chunk);
          }
          if (bodyBytes > Math.max(RESPONSE_BODY_CAP, keep)) controller.abort(new Error('response body larger than the cap'));
        },
        onResponseEnd: () => settle(response(true)),
        onResponseError: (_controller, error) => settle(outcome(error)),
      };
      const dispatch = () => {
        try {
          agent.dispatch(
            { origin: url.origin, path: `${url.pathname}${url.search}`, method: 'POST', headers: { ...headers, ...this.#fixedHeaders }, body },
            handler,
          );
        } catch (error) {
          // undici reports most failures through the handler; one it throws (a closed agent, say) is a failure too.
          settle(outcome(error as Error));
        }
      };
      // Through a proxy the target's address is never dialled here, so it is judged before the request instead (the
      // proxy resolves the name again: see docs/security.md).
      if (this.#settings.proxy) this.#settings.guard.resolve(url.hostname).then(dispatch, (error: Error) => settle(outcome(error)));
      else dispatch();
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.all([this.#agent, ...this.#tlsAgents.values()].map((agent) => agent.close()));
  }

  #newAgent(tls: { cert?: string; key?: string; ca?: string }): Dispatcher {
    const settings = this.#settings;
    if (settings.proxy) return new ProxyAgent({ ...this.#pool, uri: settings.proxy.href, proxyTunnel: true, connectTimeout: settings.connectTimeoutMs, requestTls: tls });
    return guardedAgent(settings, this.#pool, tls);
  }

  #tlsAgent({ clientCertificate, clientKey, ca }: EndpointTls): Dispatcher {
    const key = createHash('sha256').update(JSON.stringify([clientCertificate, clientKey, ca])).digest('hex');
    let agent = this.#tlsAgents.get(key);
    if (!agent) {
      if (this.#tlsAgents.size >= MAX_TLS_AGENTS) {
        const [oldest, pool] = this.#tlsAgents.entries().next().value!;
        this.#tlsAgents.delete(oldest);
        void pool.close();
      }
      agent = this.#newAgent({ ...(clientCertificate ? { cert: clientCertificate } : {}), ...(clientKey ? { key: clientKey } : {}), ...(ca ? { ca } : {}) });
      this.#tlsAgents.set(key, agent);
    }
    return agent;
  }

  #response(status: number, headers: Record<string, string | string[] | undefined>, body: ReceivedBody, latencyMs: number): SendResult {
    return { kind: 'response', status, retryAfterMs: retryAfter(headers['retry-after']), latencyMs, response: summarize(headers, body, this.#settings.logBodyBytes) };
  }

  #failure(error: Error, latencyMs: number): SendResult {
    const failure = classifyFailure(error, this.#settings.attemptTimeoutMs);
    return { ...(this.#settings.proxy ? throughProxy(failure, error, this.#settings.proxy) : failure), latencyMs };
  }

  /** Ends attempts past their deadline; they are in deadline order, so the sweep stops at the first one still due. */
  #sweep(): void {
    const now = performance.now();
    for (const attempt of this.#inFlight) {
      if (attempt.deadline > now) return;
      attempt.expire();
    }
  }
}

/** Direct connections: each dials the address the SSRF guard checked, never a name resolved again. */
function guardedAgent(settings: SenderSettings, pool: Agent.Options, tls: { cert?: string; key?: string; ca?: string }): Agent {
  const connect = buildConnector({ timeout: settings.connectTimeoutMs, ...tls });
  return new Agent({
    ...pool,
    connect: (options, callback) => {
      settings.guard.resolve(options.hostname).then(
        ({ address }) => {
          // Dial the checked address; keep the name for TLS (SNI and certificate verification). An IP literal is
          // verified as such, and SNI may not carry one.
          const name = options.hostname.replace(/^\[|\]$/g, '');
          const servername = options.servername ?? (options.protocol === 'https:' && !isIP(name) ? name : undefined);
          try {
            connect({ ...options, hostname: address, ...(servername ? { servername } : {}) }, callback);
          } catch (error) {
            // A connector that throws (bad TLS options) must still answer, or the request would wait for its deadline.
            callback(error as Error, null);
          }
        },
        (error: Error) => callback(error, null),
      );
    },
  });
}

/**
 * What an attempt that got no response ran into. undici's own timeouts (connect, headers, body) count as timeouts as
 * much as the attempt deadline does; their codes are upper case (UND_ERR_HEADERS_TIMEOUT).
 */
export function classifyFailure(error: Error, attemptTimeoutMs: number): { kind: FailureKind; error: string } {
  const cause = causeOf(error);
  if (cause instanceof BlockedAddressError) return { kind: 'blocked', error: cause.message };
  const code = (cause as { code?: string }).code ?? '';
  if (REFUSALS.has(code)) return { kind: 'refused', error: cause.message };
  if (CLIENT_CERTIFICATE_REFUSED.test(cause.message)) return { kind: 'tls', error: `TLS: the endpoint refused the client certificate (${cause.message.trim()}): check the rule's tls.clientCertificate` };
  if (TLS_FAILURE.test(code)) {
    const untrusted = /CERT|SELF_SIGNED|UNABLE_TO_/.test(code) ? ": the endpoint's certificate is not one the system's CAs (or the rule's tls.ca) vouch for" : '';
    return { kind: 'tls', error: `TLS: ${code}: ${cause.message}${untrusted}` };
  }
  const timedOut = cause instanceof AttemptTimeoutError || /timeout/i.test(code);
  return { kind: timedOut ? 'timeout' : 'network', error: describe(cause, timedOut, attemptTimeoutMs) };
}

type Failure = ReturnType<typeof classifyFailure>;

/**
 * A failure through the proxy, saying whether the proxy itself failed — refused the tunnel (answered CONNECT with
 * something else than 200), or could not be reached — or the endpoint behind it. Either way it stays a network
 * failure (or a timeout), so the attempt is retried. The proxy is named without its credentials.
 */
export function throughProxy(failure: Failure, error: Error, proxy: URL): Failure {
  if (failure.kind === 'blocked' || failure.kind === 'refused') return failure;
  const name = proxy.origin;
  const port = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
  for (let current: (Error & { code?: string; port?: number; cause?: unknown }) | undefined = error; current; current = current.cause instanceof Error ? current.cause : undefined) {
    const refusal = /^Proxy response \((\d+)\)/.exec(current.message);
    if (refusal) return { kind: 'network', error: `the proxy ${name} refused the tunnel: it answered ${refusal[1]} to CONNECT` };
    if (current.code === 'UND_ERR_PRX_CONN' || current.code === 'UND_ERR_PRX_TLS' || (current.port === port && current.code?.startsWith('E'))) {
      return { ...failure, error: `the proxy ${name} could not be reached: ${failure.error}` };
    }
  }
  return { ...failure, error: `${failure.error} (through the proxy ${name})` };
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

/** What arrived of a response body: its start, its size, and its hash when it was read to its end. */
interface ReceivedBody {
  start: Buffer;
  bodyBytes: number;
  sha256: string | null;
}

function summarize(headers: Record<string, string | string[] | undefined>, { start, bodyBytes, sha256 }: ReceivedBody, keep: number): ResponseSummary {
  const recorded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) recorded[name] = MASKED_RESPONSE_HEADERS.has(name) ? '••••' : Array.isArray(value) ? value.join(', ') : value;
  }
  return { headers: recorded, body: utf8Prefix(start, keep), bodyTruncated: bodyBytes > keep, bodyBytes, bodySha256: sha256 };
}

/** Retry-After in ms: delta-seconds or an HTTP date. */
export function retryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
