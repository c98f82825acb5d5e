/**
 * Standard Webhooks signatures over `id.timestamp.body`, one per active key, space-separated, so receivers keep
 * verifying while a key is rotated: `v1,<base64 HMAC-SHA256>` for a `whsec_` secret, `v1a,<base64 ed25519 signature>`
 * for a `whsk_` key. Any Standard Webhooks verifier accepts these headers unchanged.
 */
import { createHmac, createSecretKey, sign as ed25519Sign, type KeyObject } from 'node:crypto';
import { ed25519PrivateKey, signingKey } from '../common/signing-keys.ts';

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function sign(id: string, body: string, secrets: readonly string[], now = Date.now()): SignatureHeaders {
  const timestamp = Math.floor(now / 1000).toString();
  const content = `${id}.${timestamp}.${body}`;
  const signatures = secrets.map((secret) => {
    const { scheme, key } = keyOf(secret);
    return scheme === 'v1' ? `v1,${createHmac('sha256', key).update(content).digest('base64')}` : `v1a,${ed25519Sign(null, Buffer.from(content), key).toString('base64')}`;
  });
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}

/** Imported keys by secret: decoding and importing a key per request cost more than the HMAC of a small body. */
const keys = new Map<string, { scheme: 'v1' | 'v1a'; key: KeyObject }>();
const MAX_CACHED_KEYS = 10_000;

function keyOf(secret: string): { scheme: 'v1' | 'v1a'; key: KeyObject } {
  let imported = keys.get(secret);
  if (!imported) {
    const parsed = signingKey(secret);
    // Rules are validated before they enter the table, so this only fires on a programming error.
    if (!parsed) throw new Error('cannot sign with a malformed secret');
    // Rotated-away secrets would pile up otherwise; starting over is cheap.
    if (keys.size >= MAX_CACHED_KEYS) keys.clear();
    imported = parsed.scheme === 'v1' ? { scheme: 'v1', key: createSecretKey(parsed.key) } : { scheme: 'v1a', key: ed25519PrivateKey(parsed.seed) };
    keys.set(secret, imported);
  }
  return imported;
}
