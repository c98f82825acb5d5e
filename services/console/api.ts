/**
 * The console's authenticated JSON API as one encapsulated fastify plugin (registered under /api): its admission
 * hook is inside it, every route has the JSON schema fastify validates it by (api-schemas.ts, also the OpenAPI
 * document), and every change goes through the operator actions, as the rules CLI's do.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { EVENT_TYPES, PAYLOAD_FORMATS, SIGNATURE_SCHEMES, type DeliveryOutcome, type EventRule, type SignatureScheme } from '../../schemas/index.ts';
import { parseDuration } from '../common/duration.ts';
import { ActionError, type Actor, type OperatorActions, type Saved } from '../operator/actions.ts';
import type { DeadDelivery } from '../operator/dlq.ts';
import { RuleInputError, type RulePut } from '../operator/rule-input.ts';
import { ruleView } from '../operator/rule-view.ts';
import { deny, type Admission } from './admission.ts';
import { routeSchemas as schemas } from './api-schemas.ts';
import type { DeadLetterStore } from './dead-letter-store.ts';
import { endpointView } from './endpoint-view.ts';
import { overview, overviewStart } from './history/overview.ts';
import type { RetentionSettings } from './history/retention.ts';
import type { HistoryQuery, HistoryStore, StatusClass } from './history/store.ts';

/** What the API shows and acts on: the console's tables and windows, and the operator actions. */
export interface ConsoleState {
  readonly rules: { values(): Iterable<EventRule> };
  readonly history: HistoryStore;
  readonly retention: { readonly settings: RetentionSettings };
  readonly deadLetters: DeadLetterStore;
  readonly actions: OperatorActions;
  /** How long a Test waits for its sample's delivery-log record. */
  readonly testTimeoutMs: number;
}

interface ApiOptions {
  state: ConsoleState;
  admission: Admission;
}

type RuleBody = Omit<RulePut, 'id'> & { id?: string; secret?: string; secrets?: unknown };
type IdParams = { Params: { id: string } };

/** The logs page's filters, as /api/logs takes them in its query and bulk resends in their body. */
type LogFilters = {
  rule?: string; endpoint?: string; eventType?: string; eventId?: string; eventIdPrefix?: string; deliveryId?: string; outcome?: DeliveryOutcome; status?: StatusClass;
  since?: number; until?: number;
};

/** The history query of `filters`; an empty one is unset, as an HTML form sends it. */
function historyQuery({ rule, endpoint, eventType, eventId, eventIdPrefix, deliveryId, outcome, status, since, until }: LogFilters): HistoryQuery {
  return {
    ruleId: rule || undefined, outcome: outcome || undefined, url: endpoint || undefined, eventType: eventType || undefined, eventId: eventId || undefined,
    eventIdPrefix: eventIdPrefix || undefined, deliveryId: deliveryId || undefined, statusClass: status || undefined, since, until,
  };
}

/** At most this many deliveries go in one bulk resend (the rest are left for the next, `more` says so). */
const RESEND_LIMIT = 10_000;
/** A delivery given up on: what "resend everything that failed" resends (one still retrying is not given up yet). */
const GIVEN_UP = new Set<DeliveryOutcome>(['failed', 'dead_lettered']);

const actor = (request: FastifyRequest): Actor => ({ by: 'console', via: request.session ? 'session' : 'bearer' });
const view = ({ rule, warnings }: Saved) => ({ ...ruleView(rule), warnings });
const position = (entry: DeadDelivery) => `${entry.topic}:${entry.partition}:${entry.offset}`;

/** Secrets are given once, on create (`secret`), and changed only by rotation: a body never lists them. */
function refuseSecrets(body: RuleBody, creating: boolean): void {
  if (body.secrets !== undefined) throw new RuleInputError([{ field: 'secrets', reason: 'are not listed: give a new rule its own with secret, change them with rotate-secret' }]);
  if (!creating && body.secret !== undefined) throw new RuleInputError([{ field: 'secret', reason: 'is set when a rule is created; change it with rotate-secret' }]);
}

/** `If-Match: "<updatedAt>"` as a version, if given. */
function ifMatch(request: FastifyRequest): number | undefined {
  const given = request.headers['if-match'];
  if (given === undefined) return undefined;
  const version = /^"(\d+)"$/.exec(given.trim())?.[1];
  if (version === undefined) throw new ActionError('invalid', 'If-Match: must be the rule\'s ETag as GET /api/rules/{id} gives it, a quoted version number');
  return Number(version);
}

export const consoleApi: FastifyPluginAsync<ApiOptions> = async (api, { state, admission }) => {
  const { actions } = state;
  api.addHook('onRequest', admission.hook((reply) => deny(reply, 401, 'log in first (POST /api/session) or send Authorization: Bearer <token>')));

  api.get('/session', { schema: schemas.session }, (request) => ({ csrfToken: request.session?.csrfToken ?? null }));
  api.delete('/session', { schema: schemas.logout }, (request, reply) => admission.logout(request, reply));
  api.get('/openapi.json', { schema: schemas.openapi }, () => api.swagger());

  // Rules
  api.get('/catalog', { schema: schemas.catalog }, () => ({ eventTypes: EVENT_TYPES, payloadFormats: PAYLOAD_FORMATS, signatureSchemes: SIGNATURE_SCHEMES, applications: [...new Set([...state.rules.values()].map((rule) => rule.application))].sort() }));
  api.get('/rules', { schema: schemas.listRules }, () => ({ rules: [...state.rules.values()].sort((a, b) => a.application.localeCompare(b.application) || a.name.localeCompare(b.name)).map(ruleView) }));
  // A rule's ETag is its version: an update sent with If-Match is refused (409) once someone else changed the rule.
  api.get<IdParams>('/rules/:id', { schema: schemas.getRule }, async (request, reply) => {
    const rule = await actions.rule(request.params.id);
    return reply.header('etag', `"${rule.updatedAt}"`).send(ruleView(rule));
  });
  // A saved rule comes back with why it will not be delivered, if it will not: the operator hears it at once.
  api.post<{ Body: RuleBody }>('/rules', { schema: schemas.createRule }, async (request, reply) => {
    refuseSecrets(request.body, true);
    const { secret: own, secrets: _, id, ...fields } = request.body;
    const given = own?.trim();
    const input = { ...fields, ...(id?.trim() ? { id: id.trim() } : {}), ...(given ? { secrets: [{ secret: given, notAfter: null }] } : {}) };
    const { rule, warnings, secret } = await actions.create(actor(request), input);
    return reply.code(201).send({ rule: ruleView(rule), secret, warnings });
  });
  api.put<IdParams & { Body: RuleBody }>('/rules/:id', { schema: schemas.updateRule }, async (request) => {
    refuseSecrets(request.body, false);
    const { id } = request.params;
    if (request.body.id !== undefined && request.body.id !== id) throw new RuleInputError([{ field: 'id', reason: 'cannot change; create a new rule instead' }]);
    return view(await actions.update(actor(request), id, { ...request.body, id }, ifMatch(request)));
  });
  api.post<IdParams>('/rules/:id/enable', { schema: schemas.enableRule }, async (request) => view(await actions.setEnabled(actor(request), request.params.id, true)));
  api.post<IdParams>('/rules/:id/disable', { schema: schemas.disableRule }, async (request) => view(await actions.setEnabled(actor(request), request.params.id, false)));
  api.post<IdParams & { Body: { overlap?: string; secret?: string; scheme?: SignatureScheme } | null }>('/rules/:id/rotate-secret', { schema: schemas.rotateSecret }, async (request) => {
    const { overlap = '24h', secret: given, scheme } = request.body ?? {};
    let overlapMs: number;
    try {
      overlapMs = parseDuration(overlap);
    } catch (error) {
      throw new RuleInputError([{ field: 'overlap', reason: (error as Error).message }]);
    }
    const { rule, secret } = await actions.rotateSecret(actor(request), request.params.id, overlapMs, given?.trim() || undefined, scheme);
    return { rule: ruleView(rule), secret };
  });
  api.post<IdParams>('/rules/:id/test', { schema: schemas.testRule }, (request) => actions.test(actor(request), request.params.id, state.testTimeoutMs));
  api.delete<IdParams>('/rules/:id', { schema: schemas.deleteRule }, async (request, reply) => {
    await actions.delete(actor(request), request.params.id);
    return reply.code(204).send();
  });
  api.delete<{ Params: { application: string } }>('/applications/:application/rules', { schema: schemas.deleteApplication }, async (request) => ({ deleted: await actions.deleteApplication(actor(request), request.params.application) }));

  // Webhook logs
  api.get<{ Querystring: LogFilters & { limit?: number; cursor?: string } }>('/logs', { schema: schemas.logs }, async (request) => {
    const { limit, cursor } = request.query;
    const [page, holds] = await Promise.all([state.history.query({ ...historyQuery(request.query), limit, cursor: cursor || undefined }), state.history.holds()]);
    return { history: { ...holds, ...state.retention.settings }, ...page };
  });
  // Recover and bulk resend: the deliveries of a filtered view (or only those given up on), counted first with dryRun.
  api.post<{ Body: { filters: LogFilters; failedOnly?: boolean; dryRun?: boolean } }>('/deliveries/resend', { schema: schemas.resendMany }, async (request) => {
    const { filters, failedOnly = false, dryRun = false } = request.body;
    const found = await state.history.deliveries(historyQuery(filters), RESEND_LIMIT + 1);
    const chosen = (failedOnly ? found.filter(({ outcome }) => GIVEN_UP.has(outcome)) : found).slice(0, RESEND_LIMIT);
    const more = found.length > RESEND_LIMIT;
    if (dryRun) return { deliveries: chosen.length, more };
    const items = await Promise.all(chosen.map(async (delivery) => ({
      entry: delivery, command: await state.history.command(delivery.deliveryId), lastAttempt: delivery.lastAttempt,
      missing: 'its event is not in the console\'s history (older than its retention, or from before the console first started)',
    })));
    const { resent, refused } = await actions.resendAll(actor(request), items);
    return { resent, refused: refused.map(({ entry, why }) => ({ deliveryId: entry.deliveryId, why })), more };
  });
  api.get<{ Params: { deliveryId: string; attempt: number } }>('/logs/:deliveryId/:attempt', { schema: schemas.attempt }, async (request) => {
    const { deliveryId, attempt } = request.params;
    const entry = await state.history.find(deliveryId, attempt);
    if (!entry) throw new ActionError('not-found', `no attempt ${attempt} of delivery ${deliveryId} in the console's history`);
    return entry;
  });
  const overviewSeconds = 300;
  api.get('/stats', { schema: schemas.stats }, async () => {
    const now = Date.now();
    return overview(await state.history.summaries(overviewStart(now, overviewSeconds)), now, overviewSeconds);
  });
  api.get('/endpoints', { schema: schemas.endpoints }, async () => ({ endpoints: endpointView(await state.history.endpoints(Date.now()), state.rules.values()) }));
  api.post<{ Params: { deliveryId: string } }>('/deliveries/:deliveryId/resend', { schema: schemas.resend }, async (request) => {
    const { deliveryId } = request.params;
    const command = await state.history.command(deliveryId);
    if (!command) throw new ActionError('not-found', `delivery ${deliveryId} is not in the console's history (older than its retention, or from before the console first started); if it was dead-lettered, replay it from Dead letters`);
    const [delivery] = await state.history.deliveries({ deliveryId }, 1);
    return actions.resend(actor(request), command, delivery?.lastAttempt ?? command.attempt);
  });

  // Dead letters
  api.get('/dead-letters', { schema: schemas.deadLetters }, () => ({ capacity: state.deadLetters.capacity, topics: state.deadLetters.topics().map((topic) => ({ ...topic, records: topic.records.slice(-500).reverse() })) }));
  api.post<{ Body: { positions?: string[]; ruleId?: string; deliveryId?: string } }>('/dead-letters/replay', { schema: schemas.replay }, async (request) => {
    const { positions = [], ruleId, deliveryId } = request.body;
    if (positions.length === 0 && !ruleId && !deliveryId) throw new ActionError('invalid', 'say what to replay: positions, ruleId or deliveryId');
    const chosen = state.deadLetters.deliveries().filter((entry) => (positions.length === 0 || positions.includes(position(entry)))
      && (!ruleId || entry.command?.ruleId === ruleId) && (!deliveryId || entry.command?.deliveryId === deliveryId));
    if (chosen.length === 0) throw new ActionError('not-found', 'no dead-lettered delivery matches');
    const { replayed, refused } = await actions.replay(actor(request), chosen);
    return { replayed, refused: refused.map(({ entry, why }) => ({ position: position(entry), why })) };
  });
};

/** How an action's refusal answers over HTTP. */
export const actionStatus: Record<ActionError['kind'], number> = { 'not-found': 404, conflict: 409, invalid: 400 };
