/**
 * The JSON schemas of the console's API: fastify validates each request against its route's schema, and
 * @fastify/swagger builds /api/openapi.json from the same schemas, so the document cannot drift from the routes.
 * Enumerations come from the Avro contracts. Responses are documented only: the views (ruleView, the masked log
 * records) decide what is shown, never a serializer's filter.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { DELIVERY_OUTCOMES, EVENT_TYPES, PAYLOAD_FORMATS, SIGNATURE_SCHEMES } from '../../schemas/index.ts';
import { HEADER_MASK } from '../operator/rule-view.ts';
import { STATUS_CLASSES } from './history/store.ts';

/** The logs page's filters: /api/logs's query, a bulk resend's body. */
const logFilters = {
  rule: { type: 'string' }, endpoint: { type: 'string', description: 'The target URL as logged' }, eventType: { type: 'string' },
  eventId: { type: 'string', description: 'Exactly this event id' }, eventIdPrefix: { type: 'string', description: 'Event ids that start with this' },
  deliveryId: { type: 'string', description: 'The delivery id, which is the webhook-id header the endpoint got' },
  outcome: { enum: [...DELIVERY_OUTCOMES, ''] }, status: { enum: [...STATUS_CLASSES, ''], description: 'The HTTP status class the endpoint answered' },
  since: { type: 'integer', description: 'ms since the epoch' }, until: { type: 'integer', description: 'ms since the epoch' },
};
const nullable = (schema: object) => ({ anyOf: [schema, { type: 'null' }] });
const ref = (name: string) => ({ $ref: `${name}#` });
const string = { type: 'string' };
const SECRET = 'whsec_ followed by base64 of 24 to 64 random bytes, or for v1a whsk_ followed by base64 of a 32-byte ed25519 seed';
const scheme = { enum: SIGNATURE_SCHEMES, description: 'v1: HMAC-SHA256 with a secret the receiver shares; v1a: ed25519, the receiver holds only the public key (whpk_…)' };

/** Shared schemas, registered with app.addSchema; the OpenAPI document lists them as components. */
export const sharedSchemas = [
  { $id: 'Error', type: 'object', required: ['error'], properties: { error: string } },
  {
    $id: 'Invalid', type: 'object', description: 'What is wrong, field by field; nothing was changed',
    properties: { error: string, issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string', examples: ['url', 'scope.ids', 'headers.X-Team'] }, reason: string } } } },
  },
  {
    $id: 'Rule', type: 'object', description: 'An EventRule (schemas/event-rule.avsc) as shown: secrets as fingerprints, header values masked',
    properties: {
      id: string, application: string, name: string, enabled: { type: 'boolean' }, disabledReason: nullable(string),
      scope: { type: 'object', properties: { kind: { enum: ['everything', 'workflows', 'pipelines'] }, ids: nullable({ type: 'array', items: string }) } },
      eventTypes: nullable({ type: 'array', items: { enum: EVENT_TYPES } }),
      url: string,
      headers: { type: 'object', additionalProperties: { const: HEADER_MASK } },
      delegateSelectors: { type: 'array', items: string },
      payloadFormat: { enum: PAYLOAD_FORMATS },
      includeUserData: { type: 'boolean' },
      rateLimitPerSecond: nullable({ type: 'integer' }),
      updatedAt: { type: 'integer', description: 'The version: ms since the epoch of the last change; the ETag of GET /api/rules/{id}' },
      signatureScheme: scheme,
      tls: nullable({ type: 'object', properties: { clientCertificate: nullable(string), clientKey: nullable({ const: HEADER_MASK }), ca: nullable(string) } }),
      secrets: { type: 'array', items: { type: 'object', properties: {
        fingerprint: { type: 'string', description: 'First 12 hex digits of the key\'s SHA-256; never the key' },
        notAfter: nullable({ type: 'integer' }),
        publicKey: { type: 'string', description: 'For an ed25519 (v1a) key: whpk_… that receivers verify with; it cannot sign' },
      } } },
    },
  },
  { $id: 'Warnings', type: 'array', items: string, description: 'Why the saved rule will not be delivered as the announced pools stand (no pool has its delegate selectors, or its pool may not dial the URL), naming the setting; empty when nothing stands in the way. The rule is saved either way.' },
  { $id: 'SavedRule', allOf: [ref('Rule'), { type: 'object', properties: { warnings: ref('Warnings') } }] },
  { $id: 'Attempt', type: 'object', description: 'A DeliveryLog record (schemas/delivery-log.avsc): request headers with the signature and rule-supplied values masked, request and response bodies up to DISPATCHER_LOG_BODY_BYTES each, with the whole body\'s size and SHA-256.', additionalProperties: true },
  { $id: 'History', type: 'object', description: 'What the console\'s delivery history holds', properties: {
    attempts: { type: 'integer' }, oldestAt: nullable({ type: 'integer' }), newestAt: nullable({ type: 'integer' }), bytes: { type: 'integer', description: 'Its size on disk' },
    usedBytes: { type: 'integer', description: 'What its attempts and indexes take of that' },
    maxAgeMs: { type: 'integer', description: 'Attempts older than this are deleted (CONSOLE_HISTORY_RETENTION)' },
    maxBytes: { type: 'integer', description: 'Past this size the oldest attempts are deleted (CONSOLE_HISTORY_MAX_SIZE)' },
  } },
] as const;

/**
 * A rule's fields as a request gives them (EventRule without secrets and updatedAt). Types only: the rule's checks
 * (checkRule, shared with the CLI and the services) judge the rest, and name unknown fields rather than drop them.
 */
const ruleInput = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Derived from the name when left out (create only)' },
    application: string,
    name: string,
    enabled: { type: 'boolean', default: false },
    scope: { type: 'object', properties: { kind: string, ids: nullable({ type: 'array', items: string }) } },
    eventTypes: nullable({ type: 'array', items: string }),
    url: string,
    headers: { type: 'object', additionalProperties: string, description: `Write-only values: a rule shows each as ${HEADER_MASK}; sent back as ${HEADER_MASK}, a header keeps its value` },
    delegateSelectors: { type: 'array', items: string },
    payloadFormat: string,
    includeUserData: { type: 'boolean', default: true },
    rateLimitPerSecond: nullable({ type: 'integer', minimum: 1 }),
    tls: nullable({ type: 'object', description: 'Mutual TLS and a CA of its own for an https:// endpoint', properties: {
      clientCertificate: nullable({ type: 'string', description: 'PEM certificate (chain) presented to the endpoint' }),
      clientKey: nullable({ type: 'string', description: `Its unencrypted PEM private key; write-only: a rule shows it as ${HEADER_MASK}, and ${HEADER_MASK} sent back keeps it` }),
      ca: nullable({ type: 'string', description: 'PEM CA certificate(s) trusted for the endpoint instead of the system\'s' }),
    } }),
    signatureScheme: { ...scheme, description: `${scheme.description}. A new rule gets a key of its scheme; an update keeps it (switch with rotate-secret)` },
  },
};

const json = (schema: object, description = 'OK') => ({ description, ...schema });
const error = (description: string) => ({ description, ...ref('Error') });
const denied = { 401: error('No session and no bearer token'), 403: error('A write with a session but without its x-csrf-token') };
const notFound = { 404: error('Not found') };
const conflict = { 409: error('The rule was changed or deleted by someone else meanwhile, or no dispatcher pool fits it; nothing was applied') };
const invalid = { 422: { description: 'Invalid; nothing was changed', ...ref('Invalid') } };
const idParams = { type: 'object', required: ['id'], properties: { id: string } };
const route = (tag: string, summary: string, schema: object) => ({ tags: [tag], summary, ...schema });

export const routeSchemas = {
  login: route('Session', 'Log in with the admin token', {
    security: [],
    body: { type: 'object', required: ['token'], properties: { token: string } },
    response: { 201: json({ type: 'object', properties: { csrfToken: string } }, 'Logged in; sets the HttpOnly session cookie'), 401: error('Wrong token'), 429: error('Too many wrong tokens are being tried; see Retry-After') },
  }),
  session: route('Session', 'The session\'s CSRF token', { response: { 200: json({ type: 'object', properties: { csrfToken: nullable(string) } }), ...denied } }),
  logout: route('Session', 'Log out', { response: { 204: { description: 'Logged out', type: 'null' }, ...denied } }),
  openapi: route('Meta', 'This document', { response: { 200: json({ type: 'object', additionalProperties: true }) } }),
  catalog: route('Meta', 'Event types, payload formats and applications, for forms', {
    response: { 200: json({ type: 'object', properties: { eventTypes: { type: 'array', items: string }, payloadFormats: { type: 'array', items: string }, signatureSchemes: { type: 'array', items: string }, applications: { type: 'array', items: string } } }), ...denied },
  }),
  listRules: route('Rules', 'List event rules', { response: { 200: json({ type: 'object', properties: { rules: { type: 'array', items: ref('Rule') } } }), ...denied } }),
  createRule: route('Rules', 'Create a rule (disabled unless `enabled: true`) signing with `secret` if given, else a generated secret, which is in this response only', {
    body: { ...ruleInput, properties: { ...ruleInput.properties, secret: { type: 'string', description: `A signing secret of your own (${SECRET}), as ShareRing's signing key; generated when left out` } } },
    response: { 201: json({ type: 'object', properties: { rule: ref('Rule'), secret: { type: 'string', description: 'A generated whsec_…, shown once; absent when the request gave its own, and for v1a (the rule shows the public key)' }, warnings: ref('Warnings') } }, 'Created'), ...invalid, ...conflict, ...denied },
  }),
  getRule: route('Rules', 'One rule; its ETag is its version', { params: idParams, response: { 200: json(ref('Rule')), ...notFound, ...denied } }),
  updateRule: route('Rules', 'Update a rule; its secrets stay, `enabled` and `headers` stay unless given. With `If-Match` (the ETag GET gives), refused with 409 once someone else changed it', {
    params: idParams,
    headers: { type: 'object', properties: { 'if-match': { type: 'string', description: 'The rule\'s ETag as GET /api/rules/{id} gives it: a quoted version number', examples: ['"1796394621152"'] } } },
    body: ruleInput,
    response: { 200: json(ref('SavedRule')), 400: error('If-Match is not an ETag of this API'), ...invalid, ...notFound, ...conflict, ...denied },
  }),
  deleteRule: route('Rules', 'Delete a rule (a tombstone on the event-rules topic)', { params: idParams, response: { 204: { description: 'Deleted', type: 'null' }, ...notFound, ...conflict, ...denied } }),
  enableRule: route('Rules', 'Enable a rule', { params: idParams, response: { 200: json(ref('SavedRule')), ...notFound, ...conflict, ...denied } }),
  disableRule: route('Rules', 'Disable a rule', { params: idParams, response: { 200: json(ref('SavedRule')), ...notFound, ...conflict, ...denied } }),
  rotateSecret: route('Rules', 'Add a new signing secret; the old ones keep signing for the overlap', {
    params: idParams,
    body: nullable({ type: 'object', properties: {
      overlap: { type: 'string', default: '24h', examples: ['1h', '24h', '7d'] },
      secret: { type: 'string', description: `The new key, your own (${SECRET}); generated when left out` },
      scheme: { ...scheme, description: `The generated key's scheme, the rule's own when left out; a v1 rule rotated to v1a signs both ways during the overlap` },
    } }),
    response: { 200: json({ type: 'object', properties: { rule: ref('Rule'), secret: { type: 'string', description: 'A generated whsec_…, shown once; absent when the request gave its own, and for v1a (the rule shows the public key)' } } }), ...invalid, ...notFound, ...conflict, ...denied },
  }),
  testRule: route('Rules', 'Send a sample event to this rule only (also while it is disabled) and wait (up to 30 s) for its delivery-log record', {
    params: idParams,
    response: { 200: json({ type: 'object', properties: { deliveryId: string, pool: string, entry: nullable(ref('Attempt')) } }), ...notFound, 409: error('No dispatcher pool fits the rule\'s selectors'), ...denied },
  }),
  deleteApplication: route('Rules', 'Delete every rule of an application', {
    params: { type: 'object', required: ['application'], properties: { application: string } },
    response: { 200: json({ type: 'object', properties: { deleted: { type: 'array', items: string } } }), ...conflict, ...denied },
  }),
  logs: route('Webhook logs', 'Delivery attempts, newest first, from the console\'s delivery history, a page at a time', {
    querystring: {
      type: 'object',
      properties: {
        ...logFilters,
        limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
        cursor: { type: 'string', description: 'The `next` of the previous page' },
      },
    },
    response: { 200: json({ type: 'object', properties: {
      history: ref('History'), entries: { type: 'array', items: ref('Attempt') },
      count: { type: 'integer', description: 'Attempts matching the filters in the whole history, counted up to 10,000' },
      countCapped: { type: 'boolean', description: 'More match than `count`: the count stopped at 10,000 (the unfiltered count is always exact)' },
      next: nullable({ type: 'string', description: 'The cursor of the next (older) page; null on the last one' }),
    } }), 400: error('A query parameter out of its range'), ...denied },
  }),
  attempt: route('Webhook logs', 'One attempt with its request and response', {
    params: { type: 'object', required: ['deliveryId', 'attempt'], properties: { deliveryId: string, attempt: { type: 'integer', minimum: 1 } } },
    response: { 200: json(ref('Attempt')), ...notFound, ...denied },
  }),
  stats: route('Webhook logs', 'Deliveries per second, success rate and latency per rule and endpoint (last 5 min)', { response: { 200: json({ type: 'object', additionalProperties: true }), ...denied } }),
  endpoints: route('Endpoints', 'Every target URL: success rate and latency over 5 min, 1 h, 24 h and 7 d, failing since, last success and error, circuit breaker, the rules that use it', {
    response: {
      200: json({
        type: 'object',
        properties: {
          endpoints: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                url: string,
                rules: { type: 'array', items: { type: 'object', properties: { id: string, name: string, application: string, enabled: { type: 'boolean' }, disabledReason: nullable(string) } } },
                windows: { type: 'object', additionalProperties: { type: 'object', properties: { sent: { type: 'integer' }, delivered: { type: 'integer' }, successRate: nullable({ type: 'number' }), p50Ms: nullable({ type: 'number' }), p95Ms: nullable({ type: 'number' }) } } },
                failingSince: nullable({ type: 'integer' }), lastSuccessAt: nullable({ type: 'integer' }), lastErrorAt: nullable({ type: 'integer' }), lastError: nullable(string),
                breaker: { enum: ['open', 'closed', null], description: 'As the delivery log last showed it: open when the newest word of the endpoint is a deferral for its open breaker' },
                breakerOpenAt: nullable({ type: 'integer' }),
              },
            },
          },
        },
      }),
      ...denied,
    },
  }),
  resendMany: route('Webhook logs', 'Recover: send again every delivery with an attempt the filters match (with failedOnly, only those given up on: failed or dead-lettered as their newest record says), at most 10,000 at a time; dryRun counts them and sends nothing', {
    body: { type: 'object', required: ['filters'], properties: { filters: { type: 'object', additionalProperties: false, properties: logFilters }, failedOnly: { type: 'boolean', default: false }, dryRun: { type: 'boolean', default: false } } },
    response: {
      200: json({
        type: 'object',
        properties: {
          deliveries: { type: 'integer', description: 'dryRun: how many it would send' }, resent: { type: 'integer' },
          refused: { type: 'array', items: { type: 'object', properties: { deliveryId: string, why: string } } },
          more: { type: 'boolean', description: 'More than 10,000 matched: send again for the rest' },
        },
      }),
      ...invalid, ...denied,
    },
  }),
  resend: route('Webhook logs', 'Deliver a delivery again: same delivery id, the attempt after its last, the whole retry schedule and a new age', {
    params: { type: 'object', required: ['deliveryId'], properties: { deliveryId: string } },
    response: { 200: json({ type: 'object', properties: { pool: string, attempt: { type: 'integer', description: 'The number the resent attempt has' } } }), ...notFound, 409: error('No pool fits'), ...denied },
  }),
  deadLetters: route('Dead letters', 'Every dead-letter topic with its latest records and their reasons', { response: { 200: json({ type: 'object', additionalProperties: true }), ...denied } }),
  replay: route('Dead letters', 'Replay dead-lettered deliveries (same delivery id, the attempt after its last, the whole retry schedule and a new age) chosen by position, rule or delivery id', {
    body: { type: 'object', properties: { positions: { type: 'array', items: { type: 'string', description: 'topic:partition:offset' } }, ruleId: string, deliveryId: string } },
    response: {
      200: json({ type: 'object', properties: { replayed: { type: 'integer' }, refused: { type: 'array', items: { type: 'object', properties: { position: string, why: string } } } } }),
      400: error('Nothing selected'), ...notFound, ...invalid, ...denied,
    },
  }),
};

/** The document's frame; @fastify/swagger adds the paths and components from the routes and shared schemas. */
export const openApiFrame: NonNullable<FastifyDynamicSwaggerOptions['openapi']> = {
  openapi: '3.1.0',
  info: {
    title: 'Workflow webhooks console API',
    version: '1',
    description: 'Event rules, tests, webhook logs and dead letters. Authenticate with `Authorization: Bearer <admin token>` (scripts) or a session cookie from POST /api/session plus the `x-csrf-token` header on every write (the console\'s own pages). Rule changes go to the compacted event-rules topic; a change is answered once the console has applied it.',
  },
  security: [{ bearer: [] }, { session: [] }],
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'The admin token (CONSOLE_TOKEN or the generated console-token file)' },
      session: { type: 'apiKey', in: 'cookie', name: 'console_session', description: 'From POST /api/session; writes also need the x-csrf-token header' },
    },
  },
};
