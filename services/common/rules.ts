/**
 * What makes an EventRule valid beyond its Avro shape. The rules table refuses (and dead-letters) rule messages that
 * fail here, and the rules CLI refuses to publish them; both get the field and the reason.
 */
import { contracts, validate, type EventRule, type EventRuleInput, type ValidationIssue } from '../../schemas/index.ts';

/** Headers the dispatcher sets itself; a rule cannot override them. */
export const RESERVED_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length', 'host', 'user-agent', 'transfer-encoding', 'connection'];

const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_HEADER_BYTES = 8 * 1024;

export type CheckedRule = { ok: true; rule: EventRule } | { ok: false; issues: ValidationIssue[] };

/** The key bytes of a secret, or undefined when it is not `whsec_<base64>` of 24 to 64 bytes. */
export function secretKey(secret: string): Buffer | undefined {
  const match = SECRET.exec(secret);
  if (!match) return undefined;
  const key = Buffer.from(match[1]!, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : undefined;
}

export function checkRule(input: EventRuleInput | unknown): CheckedRule {
  const result = validate(contracts.eventRule, input);
  if (!result.ok) return result;
  const rule = result.value;
  const issues: ValidationIssue[] = [];
  const issue = (field: string, reason: string) => issues.push({ field, reason });

  if (!rule.id.trim()) issue('id', 'must not be empty');
  if (!rule.application.trim()) issue('application', 'must not be empty');
  if (!rule.name.trim()) issue('name', 'must not be empty');
  const url = URL.parse(rule.url);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) issue('url', `must be an absolute http(s) URL (got ${JSON.stringify(rule.url)})`);
  else if (url.username || url.password) issue('url', 'must not carry credentials; put them in a header');
  else if (url.hash) issue('url', 'must not have a #fragment');
  if (rule.scope.ids !== null) {
    if (rule.scope.kind === 'everything') issue('scope.ids', 'must be null when the scope is everything');
    else if (rule.scope.ids.length === 0) issue('scope.ids', `must list at least one ${rule.scope.kind.slice(0, -1)} id, or be null for all`);
    rule.scope.ids.forEach((id, index) => { if (!id.trim()) issue(`scope.ids.${index}`, 'must not be empty'); });
  }
  if (rule.eventTypes !== null) {
    if (rule.eventTypes.length === 0) issue('eventTypes', 'must list at least one event type, or be null for all');
    rule.eventTypes.forEach((type, index) => { if (type === 'unknown') issue(`eventTypes.${index}`, '"unknown" is not an event type a rule can select'); });
  }
  let headerBytes = 0;
  for (const [name, value] of Object.entries(rule.headers)) {
    headerBytes += name.length + value.length;
    if (!HEADER_NAME.test(name)) issue(`headers.${name}`, 'is not a valid HTTP header name');
    else if (RESERVED_HEADERS.includes(name.toLowerCase())) issue(`headers.${name}`, 'is set by the dispatcher and cannot be overridden');
    if (/[\r\n\0]/.test(value)) issue(`headers.${name}`, 'value must not contain CR, LF or NUL');
  }
  if (headerBytes > MAX_HEADER_BYTES) issue('headers', `must total at most ${MAX_HEADER_BYTES} bytes (got ${headerBytes})`);
  if (rule.secrets.length === 0) issue('secrets', 'needs at least one signing secret (whsec_<base64>)');
  rule.secrets.forEach(({ secret }, index) => {
    // Never echo a secret back: it would land in logs and dead-letter headers.
    if (!secretKey(secret)) issue(`secrets.${index}.secret`, 'must be whsec_ followed by base64 of 24 to 64 random bytes');
  });
  rule.delegateSelectors.forEach((selector, index) => { if (!selector.trim()) issue(`delegateSelectors.${index}`, 'must not be empty'); });
  if (rule.rateLimitPerSecond !== null && rule.rateLimitPerSecond <= 0) issue('rateLimitPerSecond', 'must be a positive number of requests per second, or null');
  return issues.length === 0 ? { ok: true, rule } : { ok: false, issues };
}

/** The secrets that sign a request at `now`: every one without an expiry, or whose overlap has not ended yet. */
export function activeSecrets(rule: EventRule, now = Date.now()): string[] {
  return rule.secrets.filter(({ notAfter }) => notAfter === null || notAfter > now).map(({ secret }) => secret);
}

/** A rule's URL as logs and the delivery log show it: no credentials, no query string (it may carry tokens). */
export function loggableUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}
