import { hash } from 'node:crypto';

/**
 * The delivery id of (event, rule): the same every time it is computed, so every retry and every duplicate of a
 * delivery carries the same `webhook-id` and receivers can de-duplicate on it.
 */
export function deliveryId(eventId: string, ruleId: string): string {
  // One-shot hash: a Hash object per command cost more than the digest itself.
  const digest = hash('sha256', `${eventId}\0${ruleId}`, 'base64url');
  return `msg_${digest.slice(0, 27)}`;
}
