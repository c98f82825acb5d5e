import { createHash } from 'node:crypto';

/**
 * The delivery id of (event, rule): the same every time it is computed, so every retry and every duplicate of a
 * delivery carries the same `webhook-id` and receivers can de-duplicate on it.
 */
export function deliveryId(eventId: string, ruleId: string): string {
  const digest = createHash('sha256').update(eventId).update('\0').update(ruleId).digest('base64url');
  return `msg_${digest.slice(0, 27)}`;
}
