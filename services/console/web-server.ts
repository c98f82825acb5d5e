/**
 * The console over HTTP (fastify): the login page, the pages, the JSON API under /api (consoleApi, described by
 * /api/openapi.json) and the ops endpoints. Nothing but the login page (with its assets), POST /api/session and
 * /healthz answers without a session cookie or an `Authorization: Bearer <admin token>` header (see Admission); every
 * write with a session needs its CSRF token in `x-csrf-token`.
 */
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormats from 'ajv-formats';
import fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.ts';
import { RuleValidationError } from '../common/rule-writer.ts';
import { ActionError } from '../operator/actions.ts';
import { RuleInputError } from '../operator/rule-input.ts';
import { HistoryQueryError } from './history/store.ts';
import { Admission, deny, type AdmissionSettings } from './admission.ts';
import { actionStatus, consoleApi, type ConsoleState } from './api.ts';
import { openApiFrame, routeSchemas, sharedSchemas } from './api-schemas.ts';

export interface WebSettings extends AdmissionSettings {
  httpHost: string;
  httpPort: number;
}

/** What the server shows besides the API: readiness and metrics. */
export interface ServedConsole extends ConsoleState {
  /** Why the console is not ready, if it is not. */
  readonly ready: string | undefined;
  readonly metrics: Registry;
}

export interface WebServer {
  port: number;
  /** `METHOD /api/path/{param}` of every API route, as the OpenAPI document names them. */
  apiRoutes: string[];
  close(): Promise<void>;
}

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

/**
 * Requests are validated by ajv as fastify would, except that a body is taken as sent: no type coercion (a rule's
 * `"enabled": "yes"` is refused, not read as true) and no defaults filled in (an update keeps what it leaves out).
 * Query strings and path parameters are text, so they are coerced.
 */
function validateLikeSchemas(app: FastifyInstance): void {
  const options: AjvOptions = { allErrors: true, removeAdditional: false, strict: false };
  const body = addFormats.default(new Ajv({ ...options, coerceTypes: false, useDefaults: false }));
  const text = addFormats.default(new Ajv({ ...options, coerceTypes: 'array', useDefaults: true }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema));
  // Responses are serialized as they are: the views decide what is shown, response schemas only document it.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}

/** Each failed check of a request as the rule form shows issues: the field (`scope.kind`, `limit`) and why. */
const validationIssues = (error: FastifyError) => (error.validation ?? []).map(({ instancePath, message, params }) => {
  const path = instancePath.split('/').filter(Boolean);
  if (typeof params.missingProperty === 'string') path.push(params.missingProperty);
  return { field: path.join('.') || `(${error.validationContext ?? 'request'})`, reason: message ?? 'is invalid' };
});

export async function startWebServer(state: ServedConsole, settings: WebSettings, logger: Logger): Promise<WebServer> {
  const admission = new Admission(settings, logger);
  const app = fastify({ bodyLimit: 256 * 1024, logger: false });
  validateLikeSchemas(app);
  await app.register(cookie);
  // Only the API's routes are tagged, so only they are in the document.
  await app.register(swagger, { openapi: openApiFrame, hideUntagged: true, refResolver: { buildLocalReference: (json, _, __, index) => String(json.$id ?? `schema-${index}`) } });
  for (const schema of sharedSchemas) app.addSchema(schema);
  app.decorateRequest('session', undefined);
  const apiRoutes: string[] = [];
  app.addHook('onRoute', ({ method, url }) => {
    if (url.startsWith('/api/') && method !== 'HEAD') apiRoutes.push(`${String(method)} ${url.replace(/:(\w+)/g, '{$1}')}`);
  });
  app.addHook('onRequest', async (_, reply) => {
    reply.headers(SECURITY_HEADERS);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const issues = validationIssues(error);
      const summary = issues.map(({ field, reason }) => `${field}: ${reason}`).join('; ');
      return error.validationContext === 'body' ? reply.code(422).send({ error: `invalid request body, nothing was changed: ${summary}`, issues }) : reply.code(400).send({ error: `invalid ${error.validationContext}: ${summary}`, issues });
    }
    if (error instanceof RuleValidationError || error instanceof RuleInputError) return reply.code(422).send({ error: 'invalid rule, nothing published', issues: error.issues });
    if (error instanceof ActionError) return deny(reply, actionStatus[error.kind], error.message);
    if (error instanceof HistoryQueryError) return reply.code(400).send({ error: `invalid querystring: ${error.message}`, issues: [{ field: error.field, reason: error.message.slice(error.field.length + 2) }] });
    if (error.statusCode && error.statusCode < 500) return deny(reply, error.statusCode, error.message);
    logger.error({ err: error, method: request.method, url: request.url.split('?')[0] }, 'console request failed');
    return deny(reply, 500, 'internal error; see the console log');
  });

  const serve = (on: FastifyInstance, assets: Record<string, { type: string; body: Buffer }>) => {
    for (const [path, { type, body }] of Object.entries(assets)) on.get(path, (_, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  };
  serve(app, publicAssets);
  app.get('/healthz', () => ({ status: 'ok' }));
  app.post<{ Body: { token: string } }>('/api/session', { schema: routeSchemas.login }, (request, reply) => admission.login(request, reply));

  await app.register(async (pages) => {
    pages.addHook('onRequest', admission.hook((reply) => reply.redirect('/login', 303)));
    serve(pages, privateAssets);
  });
  await app.register(async (ops) => {
    ops.addHook('onRequest', admission.hook((reply) => deny(reply, 401, 'log in first (POST /api/session) or send Authorization: Bearer <token>')));
    ops.get('/readyz', (_, reply) => {
      const reason = state.ready;
      return reason === undefined ? { status: 'ready' } : reply.code(503).send({ status: 'not ready', reason });
    });
    ops.get('/metrics', async (_, reply) => reply.type(state.metrics.contentType).send(await state.metrics.metrics()));
  });
  await app.register(consoleApi, { prefix: '/api', state, admission });

  await app.listen({ host: settings.httpHost, port: settings.httpPort });
  const address = app.server.address();
  return { port: typeof address === 'object' && address ? address.port : settings.httpPort, apiRoutes, close: () => app.close() };
}
