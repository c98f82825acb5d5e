/**
 * The console over HTTP (fastify): the login page, the pages, the JSON API under /api (described by
 * /api/openapi.json) and the ops endpoints. Nothing but the login page (with its assets), POST /api/session and
 * /healthz answers without a session cookie or an `Authorization: Bearer <admin token>` header; every write with a
 * session needs its CSRF token in `x-csrf-token`.
 */
import cookie from '@fastify/cookie';
import fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { DELIVERY_OUTCOMES, EVENT_TYPES, PAYLOAD_FORMATS, type DeliveryOutcome, type EventRule } from '../../schemas/index.ts';
import type { Logger } from '../common/logger.ts';
import { RuleValidationError } from '../common/rule-writer.ts';
import { GuessLimiter, sameSecret, Sessions, type Session } from './auth.ts';
import type { Console } from './console.ts';
import { ApiError } from './console.ts';
import { openApiDocument } from './openapi.ts';
import { RuleInputError } from './rule-input.ts';
import { ruleView } from './rule-view.ts';

export interface WebSettings {
  httpHost: string;
  httpPort: number;
  /** The admin token a login must present. */
  adminToken: string;
  /** Mark the session cookie Secure (set it when TLS terminates in front of the console). */
  secureCookie?: boolean;
}

export interface WebServer {
  port: number;
  /** `METHOD /api/path/{param}` of every API route, as the OpenAPI document names them. */
  apiRoutes: string[];
  close(): Promise<void>;
}

const SESSION_COOKIE = 'console_session';
const OUTCOMES = new Set<DeliveryOutcome>(DELIVERY_OUTCOMES);
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const file = (path: string | URL, type: string) => ({ type, body: readFileSync(path) });
const web = (name: string, type: string) => file(new URL(`./web/${name}`, import.meta.url), type);
const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
/** Served without a session: the login page and what it needs. */
const publicAssets: Record<string, { type: string; body: Buffer }> = {
  '/login': web('login.html', HTML),
  '/assets/console.css': web('console.css', 'text/css; charset=utf-8'),
  '/assets/login.js': web('login.js', JS),
  '/assets/logo.svg': web('logo.svg', 'image/svg+xml'),
};
const privateAssets: Record<string, { type: string; body: Buffer }> = {
  '/': web('app.html', HTML),
  '/assets/app.js': web('app.js', JS),
  '/vendor/chart.umd.min.js': file(new URL('./chart.umd.min.js', import.meta.resolve('chart.js')), JS),
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

declare module 'fastify' {
  interface FastifyRequest {
    session: Session | undefined;
  }
}

export async function startWebServer(console: Console, settings: WebSettings, logger: Logger): Promise<WebServer> {
  const sessions = new Sessions();
  const guesses = new GuessLimiter();
  const app = fastify({ bodyLimit: 256 * 1024, logger: false });
  await app.register(cookie);
  app.decorateRequest('session', undefined);
  const apiRoutes: string[] = [];
  app.addHook('onRoute', ({ method, url }) => {
    if (url.startsWith('/api/') && method !== 'HEAD') apiRoutes.push(`${String(method)} ${url.replace(/:(\w+)/g, '{$1}')}`);
  });

  const deny = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });
  /**
   * Whether `given` is the admin token, for the login and a bearer alike; when not, `reply` is sent (401, or 429 while
   * the limiter hears no token). A wrong token is audited, and answered only when the limiter lets it.
   */
  const admitted = async (given: unknown, request: FastifyRequest, reply: FastifyReply, via: 'login' | 'bearer'): Promise<boolean> => {
    if (guesses.saturated) {
      reply.code(429).header('retry-after', String(guesses.retryAfterSeconds)).send({ error: `too many wrong tokens are being tried; try again in ${guesses.retryAfterSeconds} s` });
      return false;
    }
    if (typeof given === 'string' && sameSecret(given, settings.adminToken)) return true;
    logger.warn({ audit: { action: 'login failed', via, ip: request.ip } }, 'audit: login failed');
    await guesses.failed();
    deny(reply, 401, 'wrong token');
    return false;
  };
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    const path = request.url.split('?')[0]!;
    if (path === '/healthz' || publicAssets[path] || (path === '/api/session' && request.method === 'POST')) return;
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) {
      // Scripts present the token itself: no cookie is involved, so no CSRF token is needed either.
      if (await admitted(bearer, request, reply, 'bearer')) return;
      return reply;
    }
    request.session = sessions.get(request.cookies[SESSION_COOKIE]);
    if (!request.session) {
      if (path.startsWith('/api/') || path === '/metrics' || path === '/readyz') return deny(reply, 401, 'log in first (POST /api/session) or send Authorization: Bearer <token>');
      return reply.redirect('/login', 303);
    }
    if (UNSAFE.has(request.method) && !sameSecret(String(request.headers['x-csrf-token'] ?? ''), request.session.csrfToken)) {
      return deny(reply, 403, 'missing or wrong x-csrf-token header');
    }
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    if (error instanceof RuleValidationError || error instanceof RuleInputError) return reply.code(422).send({ error: 'invalid rule, nothing published', issues: error.issues });
    if (error instanceof ApiError) return deny(reply, error.status, error.message);
    if (error.statusCode && error.statusCode < 500) return deny(reply, error.statusCode, error.message);
    logger.error({ err: error, method: request.method, url: request.url.split('?')[0] }, 'console request failed');
    return deny(reply, 500, 'internal error; see the console log');
  });

  const serve = (assets: Record<string, { type: string; body: Buffer }>) => {
    for (const [path, { type, body }] of Object.entries(assets)) app.get(path, (_, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  };
  serve(publicAssets);
  serve(privateAssets);

  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', (_, reply) => {
    const reason = console.ready;
    return reason === undefined ? { status: 'ready' } : reply.code(503).send({ status: 'not ready', reason });
  });
  app.get('/metrics', async (_, reply) => reply.type(console.metrics.contentType).send(await console.metrics.metrics()));

  // Session
  app.post('/api/session', async (request, reply) => {
    if (!(await admitted((request.body as { token?: unknown } | undefined)?.token, request, reply, 'login'))) return reply;
    const session = sessions.create();
    logger.info({ audit: { action: 'login', ip: request.ip } }, 'audit: login');
    reply.setCookie(SESSION_COOKIE, session.id, { path: '/', httpOnly: true, sameSite: 'strict', secure: settings.secureCookie ?? false, maxAge: sessions.maxAgeMs / 1000 });
    return reply.code(201).send({ csrfToken: session.csrfToken });
  });
  app.get('/api/session', (request) => ({ csrfToken: request.session?.csrfToken ?? null }));
  app.delete('/api/session', (request, reply) => {
    if (request.session) sessions.delete(request.session.id);
    return reply.clearCookie(SESSION_COOKIE, { path: '/' }).code(204).send();
  });
  app.get('/api/openapi.json', () => openApiDocument);

  // Rules
  const id = (request: FastifyRequest) => (request.params as { id: string }).id;
  const ifMatch = (request: FastifyRequest): number | undefined => {
    const given = request.headers['if-match'];
    if (given === undefined) return undefined;
    const version = /^"(\d+)"$/.exec(given.trim())?.[1];
    if (version === undefined) throw new ApiError(400, 'If-Match: must be the rule\'s ETag as GET /api/rules/{id} gives it, a quoted version number');
    return Number(version);
  };
  app.get('/api/catalog', () => ({ eventTypes: EVENT_TYPES, payloadFormats: PAYLOAD_FORMATS, applications: [...new Set([...console.rules.values()].map((rule) => rule.application))].sort() }));
  app.get('/api/rules', () => ({ rules: [...console.rules.values()].sort((a, b) => a.application.localeCompare(b.application) || a.name.localeCompare(b.name)).map(ruleView) }));
  // A rule's ETag is its version: an update sent with If-Match is refused (409) once someone else changed the rule.
  app.get('/api/rules/:id', (request, reply) => {
    const rule = console.rule(id(request));
    return reply.header('etag', `"${rule.updatedAt}"`).send(ruleView(rule));
  });
  // A saved rule comes back with why it will not be delivered, if it will not: the operator hears it at once.
  const saved = async (rule: EventRule) => ({ ...ruleView(rule), warnings: await console.warnings(rule) });
  app.post('/api/rules', async (request, reply) => {
    const { rule, secret } = await console.createRule(request.body);
    return reply.code(201).send({ rule: ruleView(rule), secret, warnings: await console.warnings(rule) });
  });
  app.put('/api/rules/:id', async (request) => saved(await console.updateRule(id(request), request.body, ifMatch(request))));
  app.post('/api/rules/:id/enable', async (request) => saved(await console.setEnabled(id(request), true)));
  app.post('/api/rules/:id/disable', async (request) => saved(await console.setEnabled(id(request), false)));
  app.post('/api/rules/:id/rotate-secret', async (request) => {
    const { overlap = '24h', secret: given } = (request.body ?? {}) as { overlap?: unknown; secret?: unknown };
    if (given !== undefined && typeof given !== 'string') throw new RuleInputError([{ field: 'secret', reason: 'must be a string: whsec_ followed by base64 of 24 to 64 random bytes' }]);
    const { rule, secret } = await console.rotateSecret(id(request), String(overlap), given?.trim() || undefined);
    return { rule: ruleView(rule), secret };
  });
  app.post('/api/rules/:id/test', (request) => console.testRule(id(request)));
  app.delete('/api/rules/:id', async (request, reply) => {
    await console.deleteRule(id(request));
    return reply.code(204).send();
  });
  app.delete('/api/applications/:application/rules', async (request) => ({ deleted: await console.deleteApplication((request.params as { application: string }).application) }));

  // Webhook logs
  app.get('/api/logs', (request) => {
    const query = request.query as Record<string, string | undefined>;
    const time = (name: string) => (query[name] ? Number(query[name]) : undefined);
    const outcome = query.outcome as DeliveryOutcome | undefined;
    const entries = console.logs.query({
      ruleId: query.rule || undefined, outcome: outcome && OUTCOMES.has(outcome) ? outcome : undefined, url: query.endpoint || undefined,
      eventType: query.eventType || undefined, eventId: query.eventId || undefined, deliveryId: query.deliveryId || undefined,
      since: time('since'), until: time('until'), limit: Math.min(Number(query.limit) || 200, 1000),
    });
    return { window: console.logs.window, entries };
  });
  app.get('/api/logs/:deliveryId/:attempt', (request) => {
    const { deliveryId, attempt } = request.params as { deliveryId: string; attempt: string };
    const entry = console.logs.find(deliveryId, Number(attempt));
    if (!entry) throw new ApiError(404, `no attempt ${attempt} of delivery ${deliveryId} in the console's window`);
    return entry;
  });
  app.get('/api/stats', () => console.logs.stats());
  app.post('/api/deliveries/:deliveryId/resend', (request) => console.resend((request.params as { deliveryId: string }).deliveryId));

  // Dead letters
  app.get('/api/dead-letters', () => ({ capacity: console.deadLetters.capacity, topics: console.deadLetters.topics().map((topic) => ({ ...topic, records: topic.records.slice(-500).reverse() })) }));
  app.post('/api/dead-letters/replay', (request) => console.replay((request.body ?? {}) as { positions?: string[]; ruleId?: string; deliveryId?: string }));

  await app.listen({ host: settings.httpHost, port: settings.httpPort });
  const address = app.server.address();
  return { port: typeof address === 'object' && address ? address.port : settings.httpPort, apiRoutes, close: () => app.close() };
}
