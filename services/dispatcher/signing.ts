/**
 * Standard Webhooks v1 signatures: HMAC-SHA256 over `id.timestamp.body` with the key inside `whsec_<base64>`,
 * base64-encoded, as `v1,<signature>`; one per active secret, space-separated, so receivers keep verifying while a
 * secret is rotated. Any Standard Webhooks verifier accepts these headers unchanged.
 */
import { createHmac } from 'node:crypto';
import { secretKey } from '../common/rules.ts';

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function sign(id: string, body: string, secrets: readonly string[], now = Date.now()): SignatureHeaders {
  const timestamp = Math.floor(now / 1000).toString();
  const signatures = secrets.map((secret) => {
    const key = secretKey(secret);
    // Rules are validated before they enter the table, so this only fires on a programming error.
    if (!key) throw new Error('cannot sign with a malformed secret');
    return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
  });
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}
