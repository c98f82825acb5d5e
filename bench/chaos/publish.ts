/**
 * Publishes a run's events spread evenly over a time window, so that kills land mid-flow, and through a broker outage:
 * events a publish could not get acknowledged (PublishError.notPublished) are published again until they are. An event
 * published twice is harmless: the same event id gives the same delivery ids.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowEventInput } from '../../schemas/index.ts';
import { PublishError, type Publisher } from '../../services/producer/publisher.ts';

export interface PublishProgress {
  /** Events acknowledged by Kafka. */
  published: number;
  /** Events published again after a PublishError. */
  republished: number;
}

export async function publishSpread(publisher: Publisher, events: readonly WorkflowEventInput[], windowMs: number, progress: PublishProgress): Promise<void> {
  const began = performance.now();
  let next = 0;
  while (next < events.length) {
    // As many as are due by now: after an outage, the ones held up go in one catch-up burst.
    const due = Math.min(events.length, Math.ceil((events.length * (performance.now() - began)) / windowMs));
    if (due > next) {
      await publishUntilAcknowledged(publisher, events.slice(next, due), progress);
      next = due;
    } else await sleep(50);
  }
}

async function publishUntilAcknowledged(publisher: Publisher, events: readonly WorkflowEventInput[], progress: PublishProgress): Promise<void> {
  let pending = events;
  for (;;) {
    try {
      await publisher.publish(pending);
      progress.published += pending.length;
      return;
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      progress.published += error.published;
      progress.republished += error.notPublished.length;
      pending = error.notPublished.map(({ index }) => pending[index]!);
      await sleep(500);
    }
  }
}
