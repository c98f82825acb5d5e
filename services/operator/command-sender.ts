/**
 * Puts delivery commands back into a pool's topic — a rule's Test sample, a resend, a dead-letter replay — keyed as
 * commandKey() keys a command of a rule it does not know (by rule id), acknowledged by every in-sync replica before
 * the caller hears it was sent.
 */
import { contracts, type DeliveryCommand } from '../../schemas/index.ts';
import { createProducer, type IHeaders, type Kafka, type Producer } from '../common/kafka.ts';
import { commandKey } from '../common/deliveries.ts';
import type { Codec, SchemaRegistryClient } from '../common/registry.ts';

export class CommandSender {
  readonly #producer: Producer;
  readonly #registry: SchemaRegistryClient;
  readonly #codecs = new Map<string, Promise<Codec<DeliveryCommand>>>();

  private constructor(producer: Producer, registry: SchemaRegistryClient) {
    this.#producer = producer;
    this.#registry = registry;
  }

  static async create(kafka: Kafka, registry: SchemaRegistryClient): Promise<CommandSender> {
    const producer = createProducer(kafka);
    await producer.connect();
    return new CommandSender(producer, registry);
  }

  async send(topic: string, command: DeliveryCommand, headers: IHeaders = {}): Promise<void> {
    let codec = this.#codecs.get(topic);
    if (!codec) {
      codec = this.#registry.codec(`${topic}-value`, contracts.deliveryCommand);
      this.#codecs.set(topic, codec);
      codec.catch(() => this.#codecs.delete(topic));
    }
    const value = (await codec).encode(command);
    await this.#producer.send({ topic, acks: -1, messages: [{ key: commandKey(command, undefined), value, headers: { 'delivery-id': command.deliveryId, ...headers } }] });
  }

  close(): Promise<void> {
    return this.#producer.disconnect();
  }
}
