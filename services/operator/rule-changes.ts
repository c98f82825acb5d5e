/**
 * What each operator action does to a rule, as pure functions shared by the rules CLI and the console, so both write
 * exactly the same rule for the same action. Publishing is the caller's (RuleWriter); nothing here has side effects
 * beyond generating a secret.
 */
import { randomUUID } from 'node:crypto';
import { contracts, type EventRule, type WorkflowEvent, type WorkflowEventInput } from '../../schemas/index.ts';
import { generateSigningKey, signingKey } from '../common/signing-keys.ts';
import { RuleInputError, type RuleDraft, type RulePut } from './rule-input.ts';
import { HEADER_MASK } from './rule-view.ts';

export interface ResolvedPut {
  draft: RuleDraft;
  /** Set when an HMAC secret was generated: shown to the operator once, never again (a v1a key is never shown). */
  generatedSecret?: string;
}

/** A generated key as the operator sees it: an HMAC secret once, an ed25519 key never (its public key is on the rule). */
export const shownOnce = (key: string): string | undefined => (signingKey(key)?.scheme === 'v1' ? key : undefined);

/**
 * A put as operators mean it: a new rule starts disabled (unless it says otherwise) with a generated key of its
 * scheme (v1 unless it says v1a); an update keeps the rule's secrets, scheme, header values, TLS settings and enabled
 * state (with the reason it was disabled) unless the put sets them.
 */
export function resolvePut(put: RulePut, existing: EventRule | undefined): ResolvedPut {
  const enabled = put.enabled ?? existing?.enabled ?? false;
  const disabledReason = put.enabled === undefined ? existing?.disabledReason ?? null : put.disabledReason ?? null;
  const signatureScheme = put.signatureScheme ?? existing?.signatureScheme ?? 'v1';
  const stated = { ...put, enabled, disabledReason, signatureScheme, headers: resolveHeaders(put.headers, existing), tls: resolveTls(put.tls, existing) };
  if (put.secrets) return { draft: { ...stated, secrets: put.secrets } };
  if (existing) return { draft: { ...stated, secrets: existing.secrets } };
  const generated = generateSigningKey(signatureScheme);
  return { draft: { ...stated, secrets: [{ secret: generated, notAfter: null }] }, generatedSecret: shownOnce(generated) };
}

/**
 * Header values are write-only (shown as HEADER_MASK), so a put keeps them as secrets are kept: none sent, the rule's
 * own; one sent as the mask, the value the rule has under that name (HTTP names ignore case). Anything that is not a
 * map of strings is left for checkRule to refuse, naming the field.
 */
function resolveHeaders(given: RulePut['headers'], existing: EventRule | undefined): Record<string, string> {
  if (given === undefined) return existing?.headers ?? {};
  if (typeof given !== 'object' || given === null) return given;
  const current = new Map(Object.entries(existing?.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
  const unknown = Object.keys(given).filter((name) => given[name] === HEADER_MASK && !current.has(name.toLowerCase()));
  if (unknown.length) {
    throw new RuleInputError(unknown.map((name) => ({ field: `headers.${name}`, reason: `is ${HEADER_MASK}, which keeps the value the rule has, but it has no such header; give its value` })));
  }
  return Object.fromEntries(Object.entries(given).map(([name, value]) => [name, value === HEADER_MASK ? current.get(name.toLowerCase())! : value]));
}

/** The client key is write-only too: none sent keeps the rule's TLS settings, the mask keeps its key. */
function resolveTls(given: RulePut['tls'], existing: EventRule | undefined): RulePut['tls'] {
  if (given === undefined) return existing?.tls ?? null;
  if (typeof given !== 'object' || given === null || given.clientKey !== HEADER_MASK) return given;
  const kept = existing?.tls?.clientKey;
  if (!kept) throw new RuleInputError([{ field: 'tls.clientKey', reason: `is ${HEADER_MASK}, which keeps the key the rule has, but it has none; give the key` }]);
  return { ...given, clientKey: kept };
}

// A change is a new version: the drafts below drop the rule's updatedAt, so the writer stamps it now. Kept, a reader
// waiting for "updatedAt at least the written one" would take the old copy for the change.
export function withEnabled({ updatedAt: _, ...rule }: EventRule, enabled: boolean): RuleDraft {
  return { ...rule, enabled, disabledReason: enabled ? null : 'disabled by an operator' };
}

/**
 * A new key that signs from now on; the old ones keep signing for the overlap (so receivers can switch), expired ones
 * go. The rule's scheme becomes the new key's: rotating to a `whsk_` key moves a v1 rule to v1a, with both signatures
 * on every request during the overlap.
 */
export function withRotatedSecret({ updatedAt: _, ...rule }: EventRule, fresh: string, overlapMs: number, now = Date.now()): RuleDraft {
  const kept = rule.secrets.filter(({ notAfter }) => notAfter === null || notAfter > now).map(({ secret, notAfter }) => ({ secret, notAfter: notAfter ?? now + overlapMs }));
  return { ...rule, signatureScheme: signingKey(fresh)?.scheme ?? rule.signatureScheme, secrets: [...kept, { secret: fresh, notAfter: null }] };
}

/** The Harness seed's Test button: a sample event this rule selects (its first event type, inside its scope). */
export function sampleEvent(rule: EventRule, now = Date.now()): WorkflowEvent {
  const type = rule.eventTypes?.[0] ?? 'workflow_started';
  const scoped = rule.scope.ids?.[0] ?? 'sample';
  const sample: WorkflowEventInput = {
    eventId: `test-${randomUUID()}`,
    type,
    occurredAt: now,
    application: { id: rule.application, name: null },
    workflow: rule.scope.kind === 'pipelines' && type.startsWith('pipeline_') ? null : { id: rule.scope.kind === 'workflows' ? scoped : 'sample-workflow', name: 'Sample workflow' },
    pipeline: rule.scope.kind === 'pipelines' || type.startsWith('pipeline_') ? { id: rule.scope.kind === 'pipelines' ? scoped : 'sample-pipeline', name: 'Sample pipeline' } : null,
    workflowExecutionId: `test-run-${randomUUID().slice(0, 8)}`,
    task: type.startsWith('task_') ? { id: 'sample-task', name: 'Sample task', runId: `test-taskrun-${randomUUID().slice(0, 8)}` } : null,
    status: type.endsWith('failed') ? 'FAILED' : type.endsWith('completed') ? 'SUCCESS' : 'RUNNING',
  };
  return contracts.workflowEvent.type.clone(sample, { wrapUnions: false }) as WorkflowEvent;
}
