/**
 * The signing keys a rule holds, in Standard Webhooks' formats: `whsec_<base64>` is an HMAC-SHA256 secret the receiver
 * shares (signatures `v1,…`); `whsk_<base64>` is the 32-byte seed of an ed25519 private key (signatures `v1a,…`),
 * whose public key `whpk_<base64 of the raw 32 bytes>` is all a receiver holds, so a leaked receiver config signs
 * nothing. Keys are generated here and parsed here; signing is the dispatcher's (signing.ts).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { SignatureScheme } from '../../schemas/index.ts';

const HMAC_SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
const ED25519_SECRET = /^whsk_([A-Za-z0-9+/]+={0,2})$/;
/** The DER header of a PKCS #8 ed25519 private key; the 32-byte seed follows it. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export type SigningKey = { scheme: 'v1'; key: Buffer } | { scheme: 'v1a'; seed: Buffer };

/** What `text` is as a signing key, or undefined when it is neither `whsec_` of 24 to 64 bytes nor `whsk_` of 32. */
export function signingKey(text: string): SigningKey | undefined {
  const hmac = HMAC_SECRET.exec(text);
  if (hmac) {
    const key = Buffer.from(hmac[1]!, 'base64');
    return key.length >= 24 && key.length <= 64 ? { scheme: 'v1', key } : undefined;
  }
  const ed25519 = ED25519_SECRET.exec(text);
  if (!ed25519) return undefined;
  const seed = Buffer.from(ed25519[1]!, 'base64');
  return seed.length === 32 ? { scheme: 'v1a', seed } : undefined;
}

/** A new key of `scheme`: 32 random bytes, as Standard Webhooks libraries expect them. */
export function generateSigningKey(scheme: SignatureScheme = 'v1'): string {
  if (scheme === 'v1') return `whsec_${randomBytes(32).toString('base64')}`;
  const { privateKey } = generateKeyPairSync('ed25519');
  return `whsk_${privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length).toString('base64')}`;
}

/** The private key of an ed25519 seed, for node:crypto's sign(). */
export function ed25519PrivateKey(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

/** The `whpk_…` a receiver verifies `v1a` signatures of this key with; undefined for an HMAC secret (nothing public). */
export function publicKeyOf(text: string): string | undefined {
  const key = signingKey(text);
  if (key?.scheme !== 'v1a') return undefined;
  const jwk = createPublicKey(ed25519PrivateKey(key.seed)).export({ format: 'jwk' });
  return `whpk_${Buffer.from(jwk.x!, 'base64url').toString('base64')}`;
}
