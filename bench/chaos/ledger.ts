/**
 * What the chaos run's receivers saw, per (event, rule) pair. Every POST's Standard Webhooks signature is verified with
 * the `standardwebhooks` package; the first copy's webhook-id is kept, so every duplicate can be checked against it.
 */
import type { IncomingMessage } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { deliveryId } from '../../services/common/delivery-id.ts';

interface Pair {
  webhookId: string;
  posts: number;
}

export interface LostPair {
  eventId: string;
  ruleId: string;
  /** Its webhook-id, to look it up in the delivery log. */
  deliveryId: string;
}

export class DeliveryLedger {
  readonly #eventIds: readonly string[];
  readonly #known: ReadonlySet<string>;
  readonly #ruleIds: readonly string[];
  readonly #pairs = new Map<string, Pair>();
  /** Every POST, verified or not. */
  posts = 0;
  badSignatures = 0;
  /** Copies of a pair whose webhook-id differs from its first copy's. */
  webhookIdMismatches = 0;
  /** Correctly signed POSTs of events this run never published. */
  unexpected = 0;

  constructor(eventIds: readonly string[], ruleIds: readonly string[]) {
    this.#eventIds = eventIds;
    this.#known = new Set(eventIds);
    this.#ruleIds = ruleIds;
  }

  get expectedPairs(): number {
    return this.#eventIds.length * this.#ruleIds.length;
  }

  get deliveredPairs(): number {
    return this.#pairs.size;
  }

  /** POSTs beyond the first of their pair. */
  get duplicatePosts(): number {
    let duplicates = 0;
    for (const { posts } of this.#pairs.values()) duplicates += posts - 1;
    return duplicates;
  }

  get duplicatedPairs(): number {
    let pairs = 0;
    for (const { posts } of this.#pairs.values()) if (posts > 1) pairs += 1;
    return pairs;
  }

  /** The receiver of rule `ruleId`, whose POSTs are signed with `secret`, hands each request here. */
  recorder(ruleId: string, secret: string): (body: Buffer, request: IncomingMessage) => void {
    const webhook = new Webhook(secret);
    return (body, request) => {
      this.posts += 1;
      let payload: { data?: { eventId?: unknown } };
      try {
        payload = webhook.verify(body, request.headers as Record<string, string>) as typeof payload;
      } catch {
        this.badSignatures += 1;
        return;
      }
      const eventId = payload.data?.eventId;
      if (typeof eventId !== 'string' || !this.#known.has(eventId)) {
        this.unexpected += 1;
        return;
      }
      const key = `${eventId}\0${ruleId}`;
      const webhookId = String(request.headers['webhook-id']);
      const pair = this.#pairs.get(key);
      if (!pair) this.#pairs.set(key, { webhookId, posts: 1 });
      else {
        pair.posts += 1;
        if (pair.webhookId !== webhookId) this.webhookIdMismatches += 1;
      }
    };
  }

  /** The pairs no receiver has seen yet. */
  lost(): LostPair[] {
    return this.#eventIds.flatMap((eventId) => this.#ruleIds
      .filter((ruleId) => !this.#pairs.has(`${eventId}\0${ruleId}`))
      .map((ruleId) => ({ eventId, ruleId, deliveryId: deliveryId(eventId, ruleId) })));
  }
}
