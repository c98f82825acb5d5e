/**
 * Rules as operators write them — a JSON or YAML file, or command-line flags — turned into EventRule input.
 * Nothing here publishes; every error names the field (or flag) and why.
 */
import { parse as parseYaml } from 'yaml';
import { EVENT_TYPES, type EventType, type SignatureScheme, type ValidationIssue } from '../../schemas/index.ts';
import type { RuleDraft } from '../common/rule-writer.ts';

export type { RuleDraft };

/**
 * A rule as a put states it: `enabled`, `secrets` and `headers` left out mean "as they are" for an existing rule, and
 * so does a header value sent as the mask (see rule-changes.ts).
 */
export type RulePut = Omit<RuleDraft, 'enabled' | 'secrets' | 'headers'> & Partial<Pick<RuleDraft, 'enabled' | 'secrets' | 'headers'>>;

export class RuleInputError extends Error {
  override name = 'RuleInputError';
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    super(issues.map((issue) => `${issue.field}: ${issue.reason}`).join('\n'));
    this.issues = issues;
  }
}

/** `harness-v1` as operators write it, `harness_v1` as Avro spells it. */
const normaliseFormat = (format: unknown): unknown => (format === 'harness-v1' ? 'harness_v1' : format);

/** A rule file: JSON or YAML of one rule (the EventRule fields; `updatedAt` is set on publish). */
export function parseRuleFile(text: string, fileName: string): RulePut {
  let parsed: unknown;
  try {
    parsed = fileName.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new RuleInputError([{ field: fileName, reason: `is not valid ${fileName.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}` }]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RuleInputError([{ field: fileName, reason: 'must contain one rule object' }]);
  }
  const rule = parsed as Record<string, unknown>;
  return { ...rule, ...(rule.payloadFormat === undefined ? {} : { payloadFormat: normaliseFormat(rule.payloadFormat) }) } as RulePut;
}

export interface RuleFlags {
  id?: string;
  application?: string;
  name?: string;
  url?: string;
  'event-types'?: string;
  scope?: string;
  header?: string[];
  secret?: string[];
  selector?: string[];
  format?: string;
  'no-user-data'?: boolean;
  enabled?: boolean;
  disabled?: boolean;
  'rate-limit'?: string;
  scheme?: SignatureScheme;
}

/** A rule from flags; without --secret, --header, --enabled or --disabled those are left to resolvePut (kept, or defaulted). */
export function ruleFromFlags(flags: RuleFlags): RulePut {
  const issues: ValidationIssue[] = [];
  if (flags.enabled && flags.disabled) issues.push({ field: '--enabled', reason: 'and --disabled contradict each other' });
  for (const required of ['id', 'application', 'name', 'url'] as const) {
    if (!flags[required]) issues.push({ field: `--${required}`, reason: 'is required' });
  }
  const headers: Record<string, string> = {};
  (flags.header ?? []).forEach((header, index) => {
    const separator = header.indexOf('=');
    // Not quoted: without a `=` nothing tells the name from a value, which may be a credential.
    if (separator <= 0) issues.push({ field: '--header', reason: `number ${index + 1} must be NAME=VALUE` });
    else headers[header.slice(0, separator)] = header.slice(separator + 1);
  });
  const eventTypes = parseEventTypes(flags['event-types'] ?? 'all', issues);
  const scope = parseScope(flags.scope ?? 'all', issues);
  const rateLimit = flags['rate-limit'] === undefined ? null : Number(flags['rate-limit']);
  if (rateLimit !== null && !Number.isInteger(rateLimit)) issues.push({ field: '--rate-limit', reason: 'must be a whole number of requests per second' });
  if (issues.length) throw new RuleInputError(issues);
  return {
    id: flags.id!,
    application: flags.application!,
    name: flags.name!,
    url: flags.url!,
    ...(flags.enabled || flags.disabled ? { enabled: !flags.disabled } : {}),
    ...(flags.secret?.length ? { secrets: flags.secret.map((secret) => ({ secret, notAfter: null })) } : {}),
    ...(flags.scheme ? { signatureScheme: flags.scheme } : {}),
    ...(flags.header?.length ? { headers } : {}),
    scope,
    eventTypes,
    delegateSelectors: flags.selector ?? [],
    payloadFormat: normaliseFormat(flags.format ?? 'standard') as RuleDraft['payloadFormat'],
    includeUserData: !flags['no-user-data'],
    rateLimitPerSecond: rateLimit,
  };
}

function parseEventTypes(text: string, issues: ValidationIssue[]): EventType[] | null {
  if (text === 'all') return null;
  const types = text.split(',').map((type) => type.trim()).filter(Boolean);
  const unknown = types.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type));
  if (unknown.length) issues.push({ field: '--event-types', reason: `unknown event type ${unknown.join(', ')} (known: ${EVENT_TYPES.join(', ')}, or all)` });
  return types as EventType[];
}

/** `all` | `workflows:<ids|all>` | `pipelines:<ids|all>` (ids comma-separated). */
function parseScope(text: string, issues: ValidationIssue[]): RuleDraft['scope'] {
  if (text === 'all' || text === 'everything') return { kind: 'everything', ids: null };
  const match = /^(workflows|pipelines):(.+)$/.exec(text);
  if (!match) {
    issues.push({ field: '--scope', reason: `"${text}" must be all, workflows:<ids|all> or pipelines:<ids|all>` });
    return { kind: 'everything', ids: null };
  }
  const ids = match[2] === 'all' ? null : match[2]!.split(',').map((id) => id.trim()).filter(Boolean);
  return { kind: match[1] as 'workflows' | 'pipelines', ids };
}
