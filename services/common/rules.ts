/**
 * What makes an EventRule valid beyond its Avro shape. The rules table refuses (and dead-letters) rule messages that
 * fail here, and the rules CLI refuses to publish them; both get the field and the reason.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { REDACTED } from './dead-letter.ts';
import { signingKey } from './signing-keys.ts';
import { contracts, validate, type EventRule, type EventRuleInput, type ValidationIssue } from '../../schemas/index.ts';

/** Headers the dispatcher sets itself; a rule cannot override them. */
export const RESERVED_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length', 'host', 'user-agent', 'transfer-encoding', 'connection'];

/**
 * Headers the HTTP client (undici) manages per connection and refuses, or that only make sense hop by hop; a rule
 * carrying one would fail every attempt (as a "network error" that opens the endpoint's breaker) or confuse proxies.
 */
const HOP_BY_HOP_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/** An RFC 9110 token, as undici's isValidHTTPToken checks header names. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** undici's isValidHeaderValue (from Node's _http_common): tab, visible ASCII, space and obs-text (Latin-1) only. */
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const MAX_HEADER_BYTES = 8 * 1024;
/** Fields whose values are credentials or may carry them (a URL's `user:pass@` or query): never echoed in a validation issue. */
const CONCEALED_FIELDS = /^(secrets|headers|url|tls)(\.|$)/;

/**
 * Why a rule header cannot go on a webhook request, or undefined when it can: undici's own checks (request.js
 * processHeader) plus the headers the dispatcher owns. The dispatcher applies the same rule before sending.
 */
export function headerProblem(name: string, value: string): string | undefined {
  if (!HEADER_NAME.test(name)) return 'is not a valid HTTP header name';
  const lower = name.toLowerCase();
  if (RESERVED_HEADERS.includes(lower)) return 'is set by the dispatcher and cannot be overridden';
  if (HOP_BY_HOP_HEADERS.includes(lower)) return 'is a hop-by-hop header the HTTP client manages; a webhook request cannot carry it';
  if (lower === 'expect') return 'is not supported by the HTTP client (no Expect: 100-continue)';
  if (INVALID_HEADER_VALUE.test(value)) return 'value may only hold tabs, spaces, visible ASCII and Latin-1 characters (no control characters, nothing above U+00FF)';
  return undefined;
}

export type CheckedRule = { ok: true; rule: EventRule } | { ok: false; issues: ValidationIssue[] };

/**
 * Checks a rule from any source: its shape against the contract (defaults filled in), then ruleIssues, then what a
 * new write is refused for although a rule already on the topic keeps working with it (a header named twice).
 */
export function checkRule(input: EventRuleInput | unknown): CheckedRule {
  const result = validate(contracts.eventRule, input, { conceal: (field) => CONCEALED_FIELDS.test(field) });
  if (!result.ok) return result;
  const issues = [...ruleIssues(result.value), ...repeatedHeaders(result.value.headers)];
  return issues.length === 0 ? { ok: true, rule: result.value } : { ok: false, issues };
}

/** HTTP header names ignore case: `X-A` and `x-a` are one header, and a request would carry two values for it. */
function repeatedHeaders(headers: Record<string, string>): ValidationIssue[] {
  const byName = Map.groupBy(Object.keys(headers), (name) => name.toLowerCase());
  return [...byName.values()].filter((names) => names.length > 1)
    .map((names) => ({ field: `headers.${names[1]}`, reason: `names the same header as ${names.filter((name) => name !== names[1]).join(', ')} (header names ignore case); keep one` }));
}

/**
 * What is wrong with a rule that already has the contract's shape, beyond that shape. A value the registry codec
 * decoded has it by construction, so the rules table runs only this (the shape walk was a fifth of loading a million).
 */
export function ruleIssues(rule: EventRule): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const issue = (field: string, reason: string) => issues.push({ field, reason });

  if (!rule.id.trim()) issue('id', 'must not be empty');
  if (!rule.application.trim()) issue('application', 'must not be empty');
  if (!rule.name.trim()) issue('name', 'must not be empty');
  // Never quote the URL: its query or `user:pass@` may hold credentials, and issues are logged and dead-lettered.
  const url = URL.parse(rule.url);
  if (!url) issue('url', 'must be an absolute http(s) URL (this one does not parse; it is not quoted, as it may hold credentials)');
  else if (url.protocol !== 'https:' && url.protocol !== 'http:') issue('url', `must be an absolute http(s) URL (its scheme is ${url.protocol})`);
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
    const problem = headerProblem(name, value);
    if (problem) issue(`headers.${name}`, problem);
  }
  if (headerBytes > MAX_HEADER_BYTES) issue('headers', `must total at most ${MAX_HEADER_BYTES} bytes (got ${headerBytes})`);
  if (rule.secrets.length === 0) issue('secrets', 'needs at least one signing key (whsec_<base64>, or whsk_<base64> for v1a)');
  rule.secrets.forEach(({ secret, notAfter }, index) => {
    // Never echo a secret back: it would land in logs and dead-letter headers.
    const key = signingKey(secret);
    if (!key) issue(`secrets.${index}.secret`, 'must be whsec_ followed by base64 of 24 to 64 random bytes (v1), or whsk_ followed by base64 of a 32-byte ed25519 seed (v1a)');
    // Keys on their way out may be of the scheme the rule rotated away from; the ones that stay are of its scheme.
    else if (notAfter === null && key.scheme !== rule.signatureScheme) {
      issue(`secrets.${index}.secret`, `is a ${key.scheme} key, but the rule signs ${rule.signatureScheme}: switch schemes with rotate-secret, which keeps the old key signing for the overlap`);
    }
  });
  // Judged at the rule's own updatedAt, not now: re-reading the topic later must not refuse what was valid when written.
  if (rule.secrets.length > 0 && activeSecrets(rule, rule.updatedAt).length === 0) {
    issue('secrets', 'every signing secret has expired (notAfter at or before updatedAt); add one without notAfter or with a later one');
  }
  tlsIssues(rule, issue);
  rule.delegateSelectors.forEach((selector, index) => { if (!selector.trim()) issue(`delegateSelectors.${index}`, 'must not be empty'); });
  if (rule.rateLimitPerSecond !== null && rule.rateLimitPerSecond <= 0) issue('rateLimitPerSecond', 'must be a positive number of requests per second, or null');
  return issues;
}

/**
 * What is wrong with a rule's TLS settings: PEM that does not parse, a key without its certificate (or one that is not
 * its key), TLS settings on a plain http:// URL. Nothing is quoted: the key is a secret.
 */
function tlsIssues({ tls, url }: EventRule, issue: (field: string, reason: string) => void): void {
  if (!tls) return;
  if (URL.parse(url)?.protocol !== 'https:') issue('tls', 'applies to https:// endpoints only');
  const { clientCertificate, clientKey, ca } = tls;
  if ((clientCertificate === null) !== (clientKey === null)) issue(clientKey === null ? 'tls.clientKey' : 'tls.clientCertificate', 'is needed too: a client certificate goes with its private key');
  const parse = <T>(field: string, reason: string, read: () => T): T | undefined => {
    try {
      return read();
    } catch {
      issue(field, reason);
      return undefined;
    }
  };
  const certificate = clientCertificate === null ? undefined : parse('tls.clientCertificate', 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)', () => new X509Certificate(clientCertificate));
  const key = clientKey === null ? undefined : parse('tls.clientKey', 'must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)', () => createPrivateKey(clientKey));
  if (certificate && key && !certificate.checkPrivateKey(key)) issue('tls.clientKey', 'is not the private key of tls.clientCertificate');
  if (ca !== null) parse('tls.ca', 'must be PEM CA certificate(s) (-----BEGIN CERTIFICATE-----)', () => new X509Certificate(ca));
}

/** The secrets that sign a request at `now`: every one without an expiry, or whose overlap has not ended yet. */
export function activeSecrets(rule: EventRule, now = Date.now()): string[] {
  return rule.secrets.filter(({ notAfter }) => notAfter === null || notAfter > now).map(({ secret }) => secret);
}

/** What a redacted copy of a rule (e.g. in event-rules.dlq) replaces. */
export const REDACTED_RULE_FIELDS = "signing secrets, header values, the client key and the URL's credentials, query and fragment (all of it when it does not parse)";

/**
 * A URL as a record outside the rules topic may keep it: `user:pass@`, the query and the fragment replaced (any may
 * hold a token), or all of it when it does not parse (then nothing says which part is which).
 */
export function redactUrl(text: string): string {
  const url = URL.parse(text);
  if (!url) return REDACTED;
  if (url.username) url.username = 'redacted';
  if (url.password) url.password = 'redacted';
  if (url.search) url.search = 'redacted';
  if (url.hash) url.hash = 'redacted';
  return url.href;
}

/** Runs of `text` that may be URLs holding credentials: anything with `://`, `@` or `?` between quotes, spaces or brackets. */
const URL_LIKE = /[^\s"'()<>]*(?::\/\/|@|\?)[^\s"'()<>]*/g;

/**
 * `text` with every URL-like run redacted as redactUrl does. For error texts written before validation stopped
 * quoting URLs, which stay on the dead-letter topics until their retention ends.
 */
export const redactUrlsIn = (text: string): string => text.replace(URL_LIKE, redactUrl);

/** A rule that can rest outside the rules topic: every credential it carries replaced by the redaction marker. */
export function redactRule(rule: EventRule): EventRule {
  return {
    ...rule,
    url: redactUrl(rule.url),
    headers: Object.fromEntries(Object.keys(rule.headers).map((name) => [name, REDACTED])),
    secrets: rule.secrets.map(({ notAfter }) => ({ secret: REDACTED, notAfter })),
    tls: rule.tls && { ...rule.tls, clientKey: rule.tls.clientKey === null ? null : REDACTED },
  };
}

/** A rule's URL as logs and the delivery log show it: no credentials, no query string (it may carry tokens). */
export function loggableUrl(url: string): string {
  const parsed = URL.parse(url);
  return parsed ? `${parsed.origin}${parsed.pathname}` : REDACTED;
}
