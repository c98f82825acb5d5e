/**
 * The console's JSON API as an OpenAPI 3.1 document, served at /api/openapi.json. A test checks that every /api route
 * the server registers is described here, and nothing else.
 */
import { DELIVERY_OUTCOMES, EVENT_TYPES, PAYLOAD_FORMATS } from '../../schemas/index.ts';
import { HEADER_MASK } from './rule-view.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const errors = {
  401: { $ref: '#/components/responses/Unauthorized' },
  403: { $ref: '#/components/responses/Forbidden' },
};
const notFound = { 404: json(ref('Error'), 'Not found') };
const invalid = { 422: json(ref('InvalidRule'), 'Invalid rule; nothing was published') };
/** Rule writes are conditional on the copy they were made from (see RuleWriter.change). */
const conflict = { 409: json(ref('Error'), 'The rule was changed or deleted by someone else meanwhile; nothing was applied') };
const body = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const op = (summary: string, tag: string, extra: object) => ({ summary, tags: [tag], ...extra });
const nullable = (schema: object) => ({ oneOf: [schema, { type: 'null' }] });

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Workflow webhooks console API',
    version: '1',
    description: 'Event rules, tests, webhook logs and dead letters. Authenticate with `Authorization: Bearer <admin token>` (scripts) or a session cookie from POST /api/session plus the `x-csrf-token` header on every write (the console\'s own pages). Rule changes go to the compacted event-rules topic; a change is answered once the console has applied it.',
  },
  security: [{ bearer: [] }, { session: [] }],
  paths: {
    '/api/session': {
      post: op('Log in with the admin token', 'Session', { security: [], requestBody: body({ type: 'object', required: ['token'], properties: { token: { type: 'string' } } }), responses: { 201: json({ type: 'object', properties: { csrfToken: { type: 'string' } } }, 'Logged in; sets the HttpOnly session cookie'), 401: json(ref('Error'), 'Wrong token'), 429: json(ref('Error'), 'Too many failed logins; see Retry-After') } }),
      get: op('The session\'s CSRF token', 'Session', { responses: { 200: json({ type: 'object', properties: { csrfToken: nullable({ type: 'string' }) } }), ...errors } }),
      delete: op('Log out', 'Session', { responses: { 204: { description: 'Logged out' }, ...errors } }),
    },
    '/api/openapi.json': { get: op('This document', 'Meta', { responses: { 200: json({ type: 'object' }) } }) },
    '/api/catalog': { get: op('Event types, payload formats and applications, for forms', 'Meta', { responses: { 200: json({ type: 'object', properties: { eventTypes: { type: 'array', items: { type: 'string' } }, payloadFormats: { type: 'array', items: { type: 'string' } }, applications: { type: 'array', items: { type: 'string' } } } }), ...errors } }) },
    '/api/rules': {
      get: op('List event rules', 'Rules', { responses: { 200: json({ type: 'object', properties: { rules: { type: 'array', items: ref('Rule') } } }), ...errors } }),
      post: op('Create a rule (disabled unless `enabled: true`) signing with `secret` if given, else a generated secret, which is in this response only', 'Rules', { requestBody: body({ allOf: [ref('RuleInput'), { type: 'object', properties: { secret: { type: 'string', description: 'A signing secret of your own (whsec_ + base64 of 24–64 bytes), as ShareRing\'s signing key; generated when left out' } } }] }), responses: { 201: json({ type: 'object', properties: { rule: ref('Rule'), secret: { type: 'string', description: 'The generated whsec_…, shown once; absent when the request gave its own' }, warnings: ref('Warnings') } }, 'Created'), ...invalid, ...conflict, ...errors } }),
    },
    '/api/rules/{id}': {
      parameters: [idParam],
      get: op('One rule', 'Rules', { responses: { 200: json(ref('Rule')), ...notFound, ...errors } }),
      put: op('Update a rule; its secrets stay, `enabled` and `headers` stay unless given. With `If-Match` (the ETag GET gives), refused with 409 once someone else changed it', 'Rules', { parameters: [{ name: 'If-Match', in: 'header', required: false, schema: { type: 'string', examples: ['"1796394621152"'] } }], requestBody: body(ref('RuleInput')), responses: { 200: json(ref('SavedRule')), ...invalid, ...notFound, ...conflict, ...errors } }),
      delete: op('Delete a rule (a tombstone on the event-rules topic)', 'Rules', { responses: { 204: { description: 'Deleted' }, ...notFound, ...conflict, ...errors } }),
    },
    '/api/rules/{id}/enable': { parameters: [idParam], post: op('Enable a rule', 'Rules', { responses: { 200: json(ref('SavedRule')), ...notFound, ...conflict, ...errors } }) },
    '/api/rules/{id}/disable': { parameters: [idParam], post: op('Disable a rule', 'Rules', { responses: { 200: json(ref('SavedRule')), ...notFound, ...conflict, ...errors } }) },
    '/api/rules/{id}/rotate-secret': {
      parameters: [idParam],
      post: op('Add a new signing secret; the old ones keep signing for the overlap', 'Rules', { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { overlap: { type: 'string', default: '24h', examples: ['1h', '24h', '7d'] }, secret: { type: 'string', description: 'The new secret, your own; generated when left out' } } } } } }, responses: { 200: json({ type: 'object', properties: { rule: ref('Rule'), secret: { type: 'string', description: 'The generated whsec_…, shown once; absent when the request gave its own' } } }), ...invalid, ...notFound, ...conflict, ...errors } }),
    },
    '/api/rules/{id}/test': {
      parameters: [idParam],
      post: op('Send a sample event to this rule only and wait (up to 30 s) for its delivery-log record', 'Rules', { responses: { 200: json({ type: 'object', properties: { deliveryId: { type: 'string' }, pool: { type: 'string' }, entry: nullable(ref('Attempt')) } }), 409: json(ref('Error'), 'No dispatcher pool fits the rule\'s selectors'), ...notFound, ...errors } }),
    },
    '/api/applications/{application}/rules': {
      parameters: [{ name: 'application', in: 'path', required: true, schema: { type: 'string' } }],
      delete: op('Delete every rule of an application', 'Rules', { responses: { 200: json({ type: 'object', properties: { deleted: { type: 'array', items: { type: 'string' } } } }), ...conflict, ...errors } }),
    },
    '/api/logs': {
      get: op('Delivery attempts, newest first, from the console\'s window of the delivery log', 'Webhook logs', {
        parameters: ['rule', 'endpoint', 'eventType', 'eventId', 'deliveryId'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })).concat(
          { name: 'outcome', in: 'query', schema: { type: 'string', enum: DELIVERY_OUTCOMES } } as never,
          ...['since', 'until'].map((name) => ({ name, in: 'query', schema: { type: 'integer', description: 'ms since the epoch' } }) as never),
          { name: 'limit', in: 'query', schema: { type: 'integer', default: 200, maximum: 1000 } } as never),
        responses: { 200: json({ type: 'object', properties: { window: ref('LogWindow'), entries: { type: 'array', items: ref('Attempt') } } }), ...errors },
      }),
    },
    '/api/logs/{deliveryId}/{attempt}': {
      parameters: [{ name: 'deliveryId', in: 'path', required: true, schema: { type: 'string' } }, { name: 'attempt', in: 'path', required: true, schema: { type: 'integer' } }],
      get: op('One attempt with its request and response', 'Webhook logs', { responses: { 200: json(ref('Attempt')), ...notFound, ...errors } }),
    },
    '/api/stats': { get: op('Deliveries per second, success rate and latency per rule and endpoint (last 5 min)', 'Webhook logs', { responses: { 200: json({ type: 'object' }), ...errors } }) },
    '/api/deliveries/{deliveryId}/resend': {
      parameters: [{ name: 'deliveryId', in: 'path', required: true, schema: { type: 'string' } }],
      post: op('Deliver a recent delivery again (same delivery id, attempt 1)', 'Webhook logs', { responses: { 200: json({ type: 'object', properties: { pool: { type: 'string' } } }), 409: json(ref('Error'), 'No pool fits'), ...notFound, ...errors } }),
    },
    '/api/dead-letters': { get: op('Every dead-letter topic with its latest records and their reasons', 'Dead letters', { responses: { 200: json({ type: 'object' }), ...errors } }) },
    '/api/dead-letters/replay': {
      post: op('Replay dead-lettered deliveries (same delivery id, attempt 1) chosen by position, rule or delivery id', 'Dead letters', {
        requestBody: body({ type: 'object', properties: { positions: { type: 'array', items: { type: 'string', description: 'topic:partition:offset' } }, ruleId: { type: 'string' }, deliveryId: { type: 'string' } } }),
        responses: { 200: json({ type: 'object', properties: { replayed: { type: 'integer' }, refused: { type: 'array', items: { type: 'object', properties: { position: { type: 'string' }, why: { type: 'string' } } } } } }), 400: json(ref('Error'), 'Nothing selected'), ...notFound, ...errors },
      }),
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'The admin token (CONSOLE_TOKEN or the generated console-token file)' },
      session: { type: 'apiKey', in: 'cookie', name: 'console_session', description: 'From POST /api/session; writes also need the x-csrf-token header' },
    },
    responses: {
      Unauthorized: json(ref('Error'), 'No session and no bearer token'),
      Forbidden: json(ref('Error'), 'A write without the session\'s x-csrf-token'),
    },
    schemas: {
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
      InvalidRule: { type: 'object', properties: { error: { type: 'string' }, issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string', examples: ['url', 'scope.ids', 'headers.X-Team'] }, reason: { type: 'string' } } } } } },
      RuleInput: {
        type: 'object',
        description: 'EventRule fields (schemas/event-rule.avsc) except secrets and updatedAt; validated by the same checks as the CLI and the services.',
        required: ['application', 'name', 'url', 'scope'],
        properties: {
          id: { type: 'string', description: 'Derived from the name when left out (create only)' },
          application: { type: 'string' },
          name: { type: 'string' },
          enabled: { type: 'boolean', default: false },
          scope: { type: 'object', properties: { kind: { enum: ['everything', 'workflows', 'pipelines'] }, ids: nullable({ type: 'array', items: { type: 'string' } }) } },
          eventTypes: nullable({ type: 'array', items: { enum: EVENT_TYPES } }),
          url: { type: 'string', format: 'uri' },
          headers: { type: 'object', additionalProperties: { type: 'string' }, description: `Write-only values: a rule shows each as ${HEADER_MASK}; sent back as ${HEADER_MASK}, a header keeps its value` },
          delegateSelectors: { type: 'array', items: { type: 'string' } },
          payloadFormat: { enum: PAYLOAD_FORMATS },
          includeUserData: { type: 'boolean', default: true },
          rateLimitPerSecond: nullable({ type: 'integer', minimum: 1 }),
        },
      },
      Rule: {
        allOf: [ref('RuleInput'), { type: 'object', properties: {
          disabledReason: nullable({ type: 'string' }),
          updatedAt: { type: 'integer' },
          secrets: { type: 'array', items: { type: 'object', properties: { fingerprint: { type: 'string', description: 'First 12 hex digits of the secret\'s SHA-256; never the secret' }, notAfter: nullable({ type: 'integer' }) } } },
        } }],
      },
      Warnings: { type: 'array', items: { type: 'string' }, description: 'Why the saved rule will not be delivered as the announced pools stand (no pool has its delegate selectors, or its pool may not dial the URL), naming the setting; empty when nothing stands in the way. The rule is saved either way.' },
      SavedRule: { allOf: [ref('Rule'), { type: 'object', properties: { warnings: ref('Warnings') } }] },
      Attempt: { type: 'object', description: 'A DeliveryLog record (schemas/delivery-log.avsc): request headers with the signature and rule-supplied values masked, request and response bodies up to DISPATCHER_LOG_BODY_BYTES each, with the whole body\'s size and SHA-256.' },
      LogWindow: { type: 'object', properties: { capacity: { type: 'integer' }, held: { type: 'integer' }, oldestAt: nullable({ type: 'integer' }), newestAt: nullable({ type: 'integer' }) } },
    },
  },
};
