/**
 * Every dead-letter topic as the console shows it: read from its beginning by a consumer group of this instance's
 * own and kept up to date, the latest records of each topic in memory (a bounded window) with their reasons.
 * Delivery commands are decoded so they can be replayed; other topics' records are shown as they are.
 */
import type { Kafka } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import type { SchemaRegistryClient } from '../common/registry.ts';
import type { TopicNames } from '../common/topics.ts';
import { deadLetterEntry, type DeadDelivery } from '../operator/dlq.ts';
import { TopicWindow } from './topic-window.ts';

export interface DeadLetterTopic {
  topic: string;
  /** What lands there, in a phrase. */
  holds: string;
  replayable: boolean;
  /** Records seen since the console started reading (the topic's whole retained content). */
  total: number;
  records: DeadDelivery[];
}

export class DeadLetterStore {
  readonly #topics: Map<string, DeadLetterTopic>;
  readonly #window: TopicWindow;
  readonly #registry: SchemaRegistryClient;
  readonly #capacity: number;
  readonly #commandsTopic: string;

  constructor(kafka: Kafka, registry: SchemaRegistryClient, names: TopicNames, logger: Logger, groupPrefix: string, capacity = 10_000) {
    this.#registry = registry;
    this.#capacity = capacity;
    this.#commandsTopic = names.deliveriesDlq;
    const topic = (name: string, holds: string, replayable = false): [string, DeadLetterTopic] => [name, { topic: name, holds, replayable, total: 0, records: [] }];
    this.#topics = new Map([
      topic(names.deliveriesDlq, 'deliveries that ran out of attempts, expired, or could not be rendered or signed', true),
      topic(names.workflowEventsDlq, 'workflow events the matcher could not decode or validate'),
      topic(names.eventRulesDlq, 'rule messages that failed validation (the previous version stayed in force)'),
      topic(names.dispatcherPoolsDlq, 'dispatcher-pool announcements that could not be used'),
    ]);
    this.#window = new TopicWindow(kafka, { name: 'dead-letters', topics: [...this.#topics.keys()], groupPrefix, logger, onRecord: async ({ topic, partition, message }) => {
      const held = this.#topics.get(topic)!;
      held.total += 1;
      held.records.push(await deadLetterEntry(this.#registry, topic, partition, message, topic === this.#commandsTopic));
      if (held.records.length > this.#capacity * 1.1) held.records.splice(0, held.records.length - this.#capacity);
    } });
  }

  /** Why the window stopped following the dead-letter topics for good, if it did. */
  get failure(): Error | undefined {
    return this.#window.failure;
  }

  get capacity(): number {
    return this.#capacity;
  }

  start(): Promise<void> {
    return this.#window.start();
  }

  stop(): Promise<void> {
    return this.#window.stop();
  }

  topics(): DeadLetterTopic[] {
    return [...this.#topics.values()];
  }

  /** The delivery commands held, oldest first (what replays choose from). */
  deliveries(): DeadDelivery[] {
    return this.#topics.get(this.#commandsTopic)!.records;
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.topics().map(({ topic, total }) => [topic, total]));
  }
}
