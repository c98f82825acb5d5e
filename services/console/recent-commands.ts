/**
 * The first command of each recent delivery, read from the pools' command topics, so the console can resend a
 * delivery (its event is not in the delivery log). Bounded like the delivery-log window; a delivery older than that
 * can still be replayed from the dead-letter topic if it ended there.
 */
import { contracts, type DeliveryCommand } from '../../schemas/index.ts';
import type { Kafka } from '../common/kafka.ts';
import type { Logger } from '../common/logger.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import { TopicWindow } from './topic-window.ts';

export class RecentCommands {
  readonly #commands = new Map<string, DeliveryCommand>();
  readonly #window: TopicWindow;
  readonly #registry: SchemaRegistryClient;
  readonly #logger: Logger;
  readonly #capacity: number;

  /** `topics` matches every pool's command topic (not the retry or dead-letter ones). */
  constructor(kafka: Kafka, registry: SchemaRegistryClient, topics: RegExp, logger: Logger, groupPrefix: string, capacity = 50_000) {
    this.#registry = registry;
    this.#logger = logger;
    this.#capacity = capacity;
    this.#window = new TopicWindow(kafka, { name: 'commands', topics: [topics], groupPrefix, logger, onRecord: async ({ message }) => {
      try {
        const command = await this.#registry.decode(contracts.deliveryCommand, message.value);
        // Map order is insertion order: deleting first keeps the newest last, so the oldest go first.
        this.#commands.delete(command.deliveryId);
        this.#commands.set(command.deliveryId, command);
        if (this.#commands.size > this.#capacity) this.#commands.delete(this.#commands.keys().next().value!);
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        this.#logger.debug({ offset: message.offset, reason: error.reason }, 'skipping an undecodable command');
      }
    } });
  }

  /** Why the window stopped following the command topics for good, if it did. */
  get failure(): Error | undefined {
    return this.#window.failure;
  }

  start(): Promise<void> {
    return this.#window.start();
  }

  stop(): Promise<void> {
    return this.#window.stop();
  }

  get(deliveryId: string): DeliveryCommand | undefined {
    return this.#commands.get(deliveryId);
  }
}
