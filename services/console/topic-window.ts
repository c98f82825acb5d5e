/**
 * What the console's windows on topics share — the delivery log, the dead letters, the recent commands: each reads its
 * topics from their beginning in a consumer group of this instance's own, commits nothing, and hands every record to
 * its store. A consumer that stopped for good is the window's `failure`, so the console reports not ready instead of
 * serving a window that no longer moves.
 */
import { randomUUID } from 'node:crypto';
import { onFatalCrash, type Consumer, type EachMessagePayload, type Kafka } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';

export interface TopicWindowOptions {
  /** What the window holds, for its group's name and logs: `delivery-log`, `dead-letters`, `commands`. */
  name: string;
  topics: Array<string | RegExp>;
  groupPrefix: string;
  logger: Logger;
  /** Keeps what the store keeps of a record; throwing anything but bad data (a registry outage) retries it. */
  onRecord: (payload: EachMessagePayload) => Promise<void>;
}

export class TopicWindow {
  readonly #options: TopicWindowOptions;
  readonly #consumer: Consumer;
  #failed: Error | undefined;

  constructor(kafka: Kafka, options: TopicWindowOptions) {
    this.#options = options;
    this.#consumer = kafka.consumer({ groupId: `${options.groupPrefix}.${options.name}.${randomUUID()}`, maxWaitTimeInMs: 500 });
  }

  /** Why the window stopped following its topics for good, if it did. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  async start(): Promise<void> {
    const { name, topics, logger, onRecord } = this.#options;
    // kafkajs restarts a crashed consumer itself; one that will not be restarted, or crashes five times without a
    // fetch between, is gone.
    onFatalCrash(this.#consumer, (error) => {
      this.#failed = error;
      logger.error({ window: name, err: error }, 'stopped reading its topics for good; the console reports not ready');
    }, { maxRestarts: 5 });
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics, fromBeginning: true });
    await this.#consumer.run({ autoCommit: false, eachMessage: onRecord });
  }

  stop(): Promise<void> {
    return this.#consumer.disconnect();
  }
}
