/**
 * The delivery log from now on, for a process that holds no window on it (the rules CLI's `test`): positioned at the
 * topic's end before it is handed out, so a record written after start() is heard, whatever the consumer group's join
 * takes. The console waits on its own feed of the delivery log instead (history/feed.ts).
 */
import { randomUUID } from 'node:crypto';
import { contracts, type DeliveryLog } from '../../schemas/index.ts';
import type { Consumer, Kafka } from '../common/kafka.ts';
import { DecodeError, type SchemaRegistryClient } from '../common/registry.ts';
import type { TopicNames } from '../common/topics.ts';
import type { DeliveryLogWatch } from './actions.ts';

export class DeliveryLogTail implements DeliveryLogWatch {
  readonly #consumer: Consumer;
  readonly #waiters = new Map<string, (entry: DeliveryLog) => void>();

  private constructor(consumer: Consumer) {
    this.#consumer = consumer;
  }

  static async start(kafka: Kafka, registry: SchemaRegistryClient, names: TopicNames, caller: string): Promise<DeliveryLogTail> {
    const topic = names.deliveryLog;
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
    const consumer = kafka.consumer({ groupId: names.group(`${caller}-log-tail-${randomUUID()}`), maxWaitTimeInMs: 250 });
    const tail = new DeliveryLogTail(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic });
    await consumer.run({
      eachMessage: async ({ message }) => {
        // The log record's key is its delivery id: only an awaited one is decoded.
        const waiter = tail.#waiters.get(message.key?.toString() ?? '');
        if (!waiter) return;
        try {
          waiter(await registry.decode(contracts.deliveryLog, message.value));
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
        }
      },
    });
    for (const { partition, offset } of ends) consumer.seek({ topic, partition, offset });
    return tail;
  }

  next(deliveryId: string, timeoutMs: number): Promise<DeliveryLog | undefined> {
    return new Promise((resolve) => {
      const done = (entry: DeliveryLog | undefined) => {
        clearTimeout(timer);
        this.#waiters.delete(deliveryId);
        resolve(entry);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.#waiters.set(deliveryId, done);
    });
  }

  stop(): Promise<void> {
    return this.#consumer.disconnect();
  }
}
