/**
 * kafkajs 2.2.4's request queue re-arms its pending-request check after every check with `throttledUntil - Date.now()`
 * as the delay: negative whenever the connection is not throttled, which Node runs 1 ms later — so every connection
 * that ever had an answer wakes its process about a thousand times a second for the rest of its life
 * (tulios/kafkajs#1556, #1704). A process with a producer, a consumer and an admin client spent 23 ms of CPU a second
 * idle on it; 4 ms without it.
 *
 * This replaces that one method with the fix proposed upstream (the review of tulios/kafkajs#1768): a check is armed
 * only while requests wait for their turn (as before, every 10 ms, or when the throttle ends) or while the connection
 * is throttled. A request waiting for an in-flight slot is still checked when an answer frees one, as before.
 * Only the exact code kafkajs 2.2.4 ships is replaced: another version's method is left as it is.
 */
import { kafkajsModule, replaceKafkajsMethod } from './kafkajs-method.ts';

const REQUEST_QUEUE = 'src/network/requestQueue/index.js';
export const KAFKAJS_REQUEST_QUEUE_MODULE = kafkajsModule(REQUEST_QUEUE);
/** SHA-256 of kafkajs 2.2.4's RequestQueue.prototype.scheduleCheckPendingRequests source. */
const KNOWN_SOURCE_SHA256 = '04347ea969c6f2e3754427c0cbaee0bd4ce947fbd82f7b6e027506a06dfc581a';
/** kafkajs's own interval for re-checking requests that wait. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

/** The fields of kafkajs's RequestQueue the method reads and writes. */
export interface RequestQueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

export function scheduleCheckPendingRequests(this: RequestQueueState): void {
  if (this.throttleCheckTimeoutId) return;
  const throttledFor = this.throttledUntil - Date.now();
  let delay: number;
  if (this.pending.length > 0) delay = throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL;
  else if (throttledFor > 0) delay = throttledFor;
  else return; // nothing waits and nothing is throttled: nothing to check
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}

/** Whether kafkajs's request queue now runs the method above (false for a kafkajs whose method differs). */
export const requestQueueFixed: boolean = replaceKafkajsMethod(REQUEST_QUEUE, 'scheduleCheckPendingRequests', KNOWN_SOURCE_SHA256, scheduleCheckPendingRequests);
