/**
 * Standard Webhooks v1 signatures: HMAC-SHA256 over `id.timestamp.body` with the key inside `whsec_<base64>`,
 * base64-encoded, as `v1,<signature>`; one per active secret, space-separated, so receivers keep verifying while a
 * secret is rotated. Any Standard Webhooks verifier accepts these headers unchanged.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { secretKey } from '../common/rules.ts';

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function sign(id: string, body: string, secrets: readonly string[], now = Date.now()): SignatureHeaders {
  const timestamp = Math.floor(now / 1000).toString();
  const signatures = secrets.map((secret) => `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`);
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}

/** Decoded keys by secret: decoding and importing a key per request cost more than the HMAC of a small body. */
const keys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 10_000;

function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    const bytes = secretKey(secret);
    // Rules are validated before they enter the table, so this only fires on a programming error.
    if (!bytes) throw new Error('cannot sign with a malformed secret');
    // Rotated-away secrets would pile up otherwise; starting over is cheap.
    if (keys.size >= MAX_CACHED_KEYS) keys.clear();
    keys.set(secret, (key = createSecretKey(bytes)));
  }
  return key;
}
