/**
 * A rule as operators see it, in the API and `rules get` alike: signing secrets and header values are write-only.
 * Secrets become SHA-256 fingerprints (which cannot be turned back into them; an ed25519 key also shows its public
 * key), header values the mask; a put that sends a header back with the mask keeps its value (resolvePut), so a rule
 * shown can be edited and saved as it is.
 */
import { createHash } from 'node:crypto';
import type { EventRule } from '../../schemas/index.ts';
import { REDACTED } from '../common/dead-letter.ts';
import { publicKeyOf } from '../common/signing-keys.ts';

/** What every header value is shown as; sent back as a header's value, it keeps the value the rule has. */
export const HEADER_MASK = REDACTED;

/** A key as shown: its fingerprint, and for an ed25519 key the public key receivers verify `v1a` with (not a secret). */
export type KeyView = { fingerprint: string; notAfter: number | null; publicKey?: string };
export type RuleView = Omit<EventRule, 'secrets'> & { secrets: KeyView[] };

export const ruleView = (rule: EventRule): RuleView => ({
  ...rule,
  headers: Object.fromEntries(Object.keys(rule.headers).map((name) => [name, HEADER_MASK])),
  // The certificate and the CA are public; the client key is write-only, as a header value is.
  tls: rule.tls && { ...rule.tls, clientKey: rule.tls.clientKey === null ? null : HEADER_MASK },
  secrets: rule.secrets.map(({ secret, notAfter }) => {
    const publicKey = publicKeyOf(secret);
    return { fingerprint: createHash('sha256').update(secret).digest('hex').slice(0, 12), notAfter, ...(publicKey ? { publicKey } : {}) };
  }),
});
