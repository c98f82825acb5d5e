/** Standard Webhooks v1a (ed25519) beside v1 (HMAC): keys, signatures a receiver verifies independently, rule checks. */
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { checkRule } from '../../services/common/rules.ts';
import { generateSigningKey, publicKeyOf, signingKey } from '../../services/common/signing-keys.ts';
import { sign } from '../../services/dispatcher/signing.ts';
import { ruleView } from '../../services/operator/rule-view.ts';
import { withRotatedSecret } from '../../services/operator/rule-changes.ts';
import { rule } from '../fixtures/rules.ts';
import { verifiesV1a } from '../fixtures/v1a.ts';

const body = JSON.stringify({ type: 'workflow_completed', data: { id: 'wf-1' } });
const now = Date.parse('2026-12-04T10:00:00Z');

describe('v1a signatures', () => {
  it('generates whsk_ keys of a 32-byte seed whose whpk_ public key verifies what they sign, and nothing else', () => {
    const key = generateSigningKey('v1a');
    expect(key).toMatch(/^whsk_[A-Za-z0-9+/]{43}=$/);
    expect(signingKey(key)).toMatchObject({ scheme: 'v1a' });
    const publicKey = publicKeyOf(key)!;
    expect(publicKey).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
    expect(publicKey.slice(5)).not.toBe(key.slice(5));

    const headers = sign('msg_1', body, [key], now);
    expect(headers['webhook-signature']).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
    expect(verifiesV1a(headers, body, publicKey)).toBe(true);
    expect(verifiesV1a(headers, `${body} `, publicKey)).toBe(false);
    expect(verifiesV1a({ ...headers, 'webhook-id': 'msg_2' }, body, publicKey)).toBe(false);
    expect(verifiesV1a(headers, body, publicKeyOf(generateSigningKey('v1a'))!)).toBe(false);
    // An HMAC secret has no public side.
    expect(publicKeyOf(generateSigningKey('v1'))).toBeUndefined();
  });

  it('signs both ways while a v1 rule rotates to v1a, and v1 verifiers keep passing beside the v1a entry', () => {
    const v1 = checkRule({ ...rule('r', 'app'), updatedAt: now - 1000 });
    if (!v1.ok) throw new Error(JSON.stringify(v1.issues));
    const oldSecret = v1.rule.secrets[0]!.secret;
    const fresh = generateSigningKey('v1a');
    const rotated = checkRule({ ...withRotatedSecret(v1.rule, fresh, 3_600_000, now), updatedAt: now });
    if (!rotated.ok) throw new Error(JSON.stringify(rotated.issues));
    expect(rotated.rule.signatureScheme).toBe('v1a');

    // Signed now: the v1 verifier checks the timestamp's age.
    const headers = sign('msg_1', body, rotated.rule.secrets.map(({ secret }) => secret));
    expect(headers['webhook-signature'].split(' ').map((entry) => entry.split(',')[0])).toEqual(['v1', 'v1a']);
    expect(new Webhook(oldSecret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(verifiesV1a(headers, body, ruleView(rotated.rule).secrets[1]!.publicKey!)).toBe(true);
    // Shown: the fingerprints and the public key, never the private key.
    const shown = JSON.stringify(ruleView(rotated.rule));
    expect(shown).not.toContain(fresh.slice(5, 20));
    expect(shown).not.toContain(oldSecret.slice(6, 20));
  });

  it('refuses keys that are neither, and a current key of the other scheme, naming the field and never the key', () => {
    const issues = (input: object) => {
      const checked = checkRule({ ...rule('r', 'app'), updatedAt: now, ...input });
      return checked.ok ? [] : checked.issues;
    };
    const v1a = generateSigningKey('v1a');
    expect(issues({ signatureScheme: 'v1a', secrets: [{ secret: v1a, notAfter: null }] })).toEqual([]);
    expect(issues({ signatureScheme: 'v1a', secrets: [{ secret: generateSigningKey('v1'), notAfter: null }] })).toEqual([{ field: 'secrets.0.secret', reason: expect.stringMatching(/^is a v1 key, but the rule signs v1a: switch schemes with rotate-secret/) }]);
    expect(issues({ secrets: [{ secret: v1a, notAfter: null }] })).toEqual([{ field: 'secrets.0.secret', reason: expect.stringMatching(/^is a v1a key, but the rule signs v1/) }]);
    const short = `whsk_${Buffer.alloc(16, 7).toString('base64')}`;
    const refused = issues({ signatureScheme: 'v1a', secrets: [{ secret: short, notAfter: null }] });
    expect(refused).toEqual([{ field: 'secrets.0.secret', reason: expect.stringContaining('whsk_ followed by base64 of a 32-byte ed25519 seed') }]);
    expect(JSON.stringify(refused)).not.toContain(short.slice(5));
  });
});
