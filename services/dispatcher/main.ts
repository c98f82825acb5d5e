/** npm run dispatcher — the dispatcher service as a process: settings from the environment, SIGTERM stops it cleanly. */
import { z } from 'zod';
import { baseSettings, byteSize, duration, integer, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { runService } from '../common/service.ts';
import { POOL_NAME, poolGroupId } from '../common/pools.ts';
import { DEFAULT_POOL, topicNames } from '../common/topics.ts';
import { defaultMaxAgeMs, Dispatcher } from './dispatcher.ts';

export const dispatcherSettings = {
  /** Defaults to the install's own group: `<TOPIC_PREFIX>dispatcher` for the default pool, `<TOPIC_PREFIX>dispatcher.<pool>` for others. */
  DISPATCHER_GROUP_ID: z.string().min(1).optional(),
  DISPATCHER_POOL: z.string().regex(POOL_NAME, 'lower-case letters, digits and dashes').default(DEFAULT_POOL),
  /** The pool's tags, comma-separated: a rule's delegate selectors must all be among them. */
  DISPATCHER_TAGS: z.string().default('').transform((text) => text.split(',').map((tag) => tag.trim()).filter(Boolean)),
  DISPATCHER_HTTP_HOST: z.string().default('127.0.0.1'),
  DISPATCHER_HTTP_PORT: integer(0, 65535).default(9402),
  /** The SSRF guard's allowlist: CIDRs and host names, comma-separated. Empty: public addresses only. */
  DISPATCHER_ALLOW_NETWORKS: z.string().default('').transform((text) => text.split(',').map((entry) => entry.trim()).filter(Boolean)),
  /** An HTTP(S) proxy every request of this pool goes through (CONNECT), e.g. for a fixed egress address; credentials as user:pass@. */
  DISPATCHER_PROXY_URL: z.string().optional().refine((text) => text === undefined || /^https?:$/.test(URL.parse(text)?.protocol ?? ''), 'must be an http:// or https:// URL of the proxy (it is not quoted: it may hold credentials)')
    .transform((text) => (text ? new URL(text) : undefined)),
  DISPATCHER_CONNECT_TIMEOUT: duration('5s'),
  DISPATCHER_ATTEMPT_TIMEOUT: duration('15s'),
  DISPATCHER_MAX_IN_FLIGHT: integer(1, 100_000).default(2000),
  DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT: integer(1, 10_000).default(50),
  DISPATCHER_MAX_WAITING_PER_ENDPOINT: integer(0, 100_000).default(500),
  /** Commands waiting for an endpoint or the wire, over all endpoints: past it, reading waits. */
  DISPATCHER_MAX_QUEUED: integer(1, 1_000_000).default(2500),
  /** Bytes of commands and their rendered bodies held at once (in flight, waiting, being recorded): past it, reading waits. */
  DISPATCHER_MAX_HELD_BYTES: byteSize('256MB').pipe(z.number().min(1024 * 1024, 'at least 1MB')),
  /** Bytes of rendered bodies that may wait for one endpoint's slot: past it, that endpoint's overflow goes to the retry path. */
  DISPATCHER_MAX_WAITING_BYTES_PER_ENDPOINT: byteSize('32MB').pipe(z.number().min(64 * 1024, 'at least 64kB')),
  /** With the waiting room half full, a command past an endpoint's waiting list waits only if, at the endpoint's recent pace, its turn comes within this. */
  DISPATCHER_MAX_QUEUE_WAIT: duration('10s'),
  /** A delivery not ended this long after it was created is dead-lettered as expired. Unset or 0: the retry schedule's total plus a quarter (at least 1h). */
  DISPATCHER_MAX_AGE: duration('0ms').transform((ms) => ms || undefined),
  /** A rule whose endpoint has failed without a single success this long is disabled, with the reason (like Svix). */
  DISPATCHER_DISABLE_AFTER: duration('5d'),
  DISPATCHER_BREAKER_FAILURES: integer(1, 10_000).default(5),
  DISPATCHER_BREAKER_OPEN: duration('30s'),
  DISPATCHER_CONCURRENCY: integer(1, 256).default(6),
  /** Bytes of each request and response body the delivery log keeps; the whole body's size and SHA-256 are kept too. */
  DISPATCHER_LOG_BODY_BYTES: integer(0, 256 * 1024).default(16 * 1024),
};

export const dispatcherGroupId = (config: { DISPATCHER_GROUP_ID?: string | undefined; DISPATCHER_POOL: string; TOPIC_PREFIX: string }) =>
  config.DISPATCHER_GROUP_ID ?? poolGroupId(topicNames(config.TOPIC_PREFIX), config.DISPATCHER_POOL);

if (import.meta.main) {
  const config = loadConfig({ ...baseSettings, ...dispatcherSettings });
  const logger = createLogger('dispatcher', config.LOG_LEVEL, { format: config.LOG_FORMAT });
  await runService(logger, (fatal) => new Dispatcher(config, {
    groupId: dispatcherGroupId(config),
    pool: config.DISPATCHER_POOL,
    tags: config.DISPATCHER_TAGS,
    httpHost: config.DISPATCHER_HTTP_HOST,
    httpPort: config.DISPATCHER_HTTP_PORT,
    allowNetworks: config.DISPATCHER_ALLOW_NETWORKS,
    proxy: config.DISPATCHER_PROXY_URL,
    connectTimeoutMs: config.DISPATCHER_CONNECT_TIMEOUT,
    attemptTimeoutMs: config.DISPATCHER_ATTEMPT_TIMEOUT,
    maxInFlight: config.DISPATCHER_MAX_IN_FLIGHT,
    maxInFlightPerEndpoint: config.DISPATCHER_MAX_IN_FLIGHT_PER_ENDPOINT,
    maxWaitingPerEndpoint: config.DISPATCHER_MAX_WAITING_PER_ENDPOINT,
    maxQueued: config.DISPATCHER_MAX_QUEUED,
    maxHeldBytes: config.DISPATCHER_MAX_HELD_BYTES,
    maxWaitingBytesPerEndpoint: config.DISPATCHER_MAX_WAITING_BYTES_PER_ENDPOINT,
    maxQueueWaitMs: config.DISPATCHER_MAX_QUEUE_WAIT,
    maxAgeMs: config.DISPATCHER_MAX_AGE ?? defaultMaxAgeMs(config.RETRY_SCHEDULE),
    disableAfterMs: config.DISPATCHER_DISABLE_AFTER,
    breakerFailures: config.DISPATCHER_BREAKER_FAILURES,
    breakerOpenMs: config.DISPATCHER_BREAKER_OPEN,
    concurrency: config.DISPATCHER_CONCURRENCY,
    userAgent: 'workflow-webhooks/0.1 (+Standard Webhooks)',
    logBodyBytes: config.DISPATCHER_LOG_BODY_BYTES,
  }, logger, fatal), { tracing: 'dispatcher' });
}
