/**
 * Records a consumer writes for the input it handled, collected and then sent in produce requests of bounded size
 * (a single record batch must stay under the broker's message.max.bytes, 1 MB by default), acks=all. The caller
 * commits its input offsets only after send() resolved: that ordering is what makes the pipeline at-least-once.
 */
import { isRecordTooLarge, type Message, type Producer } from './kafka.ts';
import { MAX_REQUEST_BYTES, recordBytes } from './limits.ts';

export class OutputBatch {
  readonly #producer: Producer;
  readonly #maxBytes: number;
  #byTopic = new Map<string, Message[]>();
  #bytes = 0;
  #count = 0;

  constructor(producer: Producer, maxBytes = MAX_REQUEST_BYTES) {
    this.#producer = producer;
    this.#maxBytes = maxBytes;
  }

  add(topic: string, message: Message): void {
    let messages = this.#byTopic.get(topic);
    if (!messages) this.#byTopic.set(topic, (messages = []));
    messages.push(message);
    this.#bytes += recordBytes(message);
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
        const size = recordBytes(message);
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
  #waiters: Waiter[] = [];
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
      this.#waiters.push({ records, resolve, reject });
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
      (error: unknown) => (isRecordTooLarge(error) ? this.#eachOnItsOwn(waiters) : waiters.forEach((waiter) => waiter.reject(error))),
    ).finally(() => {
      this.#inFlight -= 1;
      this.#inFlightBytes -= bytes;
      if (this.#inFlight === 0) this.#flush();
    });
  }

  /**
   * The broker refused a record as too large, which fails the whole request: each caller's records are sent again on
   * their own, so only the caller they belong to learns of it (as a RecordTooLargeError: its outcome, not an outage).
   */
  async #eachOnItsOwn(waiters: readonly Waiter[]): Promise<void> {
    await Promise.all(waiters.map(async ({ records, resolve, reject }) => {
      const batch = new OutputBatch(this.#producer);
      for (const [topic, message] of records) batch.add(topic, message);
      try {
        await batch.send();
        resolve();
      } catch (error) {
        reject(isRecordTooLarge(error) ? new RecordTooLargeError(records, error) : error);
      }
    }));
  }
}

interface Waiter {
  records: ReadonlyArray<readonly [topic: string, message: Message]>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The broker refused one of these records as larger than its topic allows (`max.message.bytes`). */
export class RecordTooLargeError extends Error {
  override name = 'RecordTooLargeError';
  /** The largest of the caller's records, in bytes. */
  readonly bytes: number;
  constructor(records: ReadonlyArray<readonly [topic: string, message: Message]>, cause: unknown) {
    const [topic, largest] = records.reduce((max, [topic, message]) => (recordBytes(message) > max[1] ? [topic, recordBytes(message)] : max), ['', 0]);
    super(`the broker refused a record of ${largest} bytes for ${topic} as too large (the topic's max.message.bytes is lower)`, { cause });
    this.bytes = largest;
  }
}
