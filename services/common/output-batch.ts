/**
 * Records a consumer writes for the input it handled, collected and then sent in produce requests of bounded size
 * (a single record batch must stay under the broker's message.max.bytes, 1 MB by default), acks=all. The caller
 * commits its input offsets only after send() resolved: that ordering is what makes the pipeline at-least-once.
 */
import type { Message, Producer } from './kafka.ts';

const RECORD_OVERHEAD_BYTES = 80;

export class OutputBatch {
  readonly #producer: Producer;
  readonly #maxBytes: number;
  #byTopic = new Map<string, Message[]>();
  #bytes = 0;
  #count = 0;

  constructor(producer: Producer, maxBytes = 512 * 1024) {
    this.#producer = producer;
    this.#maxBytes = maxBytes;
  }

  add(topic: string, message: Message): void {
    let messages = this.#byTopic.get(topic);
    if (!messages) this.#byTopic.set(topic, (messages = []));
    messages.push(message);
    this.#bytes += sizeOf(message);
    this.#count += 1;
  }

  /** True once the collected records fill one produce request: time to send before reading more input. */
  get full(): boolean {
    return this.#bytes >= this.#maxBytes;
  }

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Sends everything collected, in requests of at most maxBytes; resolves once Kafka acknowledged all of it. */
  async send(): Promise<void> {
    const byTopic = this.#byTopic;
    this.#byTopic = new Map();
    this.#bytes = 0;
    this.#count = 0;
    let request: Array<{ topic: string; messages: Message[] }> = [];
    let requestBytes = 0;
    const flush = async () => {
      if (request.length) await this.#producer.sendBatch({ acks: -1, topicMessages: request });
      request = [];
      requestBytes = 0;
    };
    for (const [topic, messages] of byTopic) {
      let current: Message[] = [];
      request.push({ topic, messages: current });
      for (const message of messages) {
        const size = sizeOf(message);
        if (requestBytes + size > this.#maxBytes && requestBytes > 0) {
          await flush();
          current = [];
          request.push({ topic, messages: current });
        }
        current.push(message);
        requestBytes += size;
      }
    }
    await flush();
  }
}

function sizeOf(message: Message): number {
  let size = RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) size += name.length + byteLength(value as Buffer | string | undefined);
  return size;
}

function byteLength(value: Buffer | string | null | undefined | Array<Buffer | string>): number {
  if (value === null || value === undefined) return 0;
  if (Array.isArray(value)) return value.reduce((sum, item) => sum + byteLength(item), 0);
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/**
 * Many concurrent handlers' outputs, coalesced: while a produce request is in flight, records accumulate and go in the
 * next one, sent when it is acknowledged; with none in flight, the records given in one turn of the event loop go at
 * once. So a busy service sends few large requests and an idle one adds no linger. Each caller's promise resolves
 * once its own records are acknowledged (or rejects with the produce error).
 */
export class OutputQueue {
  readonly #producer: Producer;
  readonly #maxPendingBytes: number;
  #batch: OutputBatch;
  #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  #inFlight = 0;
  #inFlightBytes = 0;
  #scheduled = false;

  constructor(producer: Producer, { maxPendingBytes = 512 * 1024 } = {}) {
    this.#producer = producer;
    this.#maxPendingBytes = maxPendingBytes;
    this.#batch = new OutputBatch(producer);
  }

  /** True while more than `maxPendingBytes` of records are not yet acknowledged: a caller reading input should wait. */
  get backlogged(): boolean {
    return this.#batch.bytes + this.#inFlightBytes > this.#maxPendingBytes;
  }

  send(records: ReadonlyArray<readonly [topic: string, message: Message]>): Promise<void> {
    return new Promise((resolve, reject) => {
      for (const [topic, message] of records) this.#batch.add(topic, message);
      this.#waiters.push({ resolve, reject });
      if (this.#batch.full) this.#flush();
      else if (this.#inFlight === 0 && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          if (this.#inFlight === 0) this.#flush();
        });
      }
    });
  }

  #flush(): void {
    if (this.#waiters.length === 0) return;
    const batch = this.#batch;
    const waiters = this.#waiters;
    const bytes = batch.bytes;
    this.#batch = new OutputBatch(this.#producer);
    this.#waiters = [];
    this.#inFlight += 1;
    this.#inFlightBytes += bytes;
    batch.send().then(
      () => waiters.forEach((waiter) => waiter.resolve()),
      (error: unknown) => waiters.forEach((waiter) => waiter.reject(error)),
    ).finally(() => {
      this.#inFlight -= 1;
      this.#inFlightBytes -= bytes;
      if (this.#inFlight === 0) this.#flush();
    });
  }
}
