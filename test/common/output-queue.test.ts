import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Message, Producer } from '../../services/common/kafka.ts';
import { OutputQueue } from '../../services/common/output-batch.ts';

/** A producer whose produce requests stay in flight until the test settles them. */
function stubProducer() {
  const requests: Array<{ values: string[]; settle: (error?: Error) => void }> = [];
  const producer = {
    sendBatch: ({ topicMessages }: { topicMessages: Array<{ messages: Message[] }> }) => new Promise<void>((resolve, reject) => {
      requests.push({ values: topicMessages.flatMap(({ messages }) => messages.map((message) => String(message.value))), settle: (error) => (error ? reject(error) : resolve()) });
    }),
  } as unknown as Producer;
  return { producer, requests };
}

const record = (value: string) => ['topic', { key: null, value }] as const;

/** Tracks a promise's state without awaiting it. */
function state(promise: Promise<void>) {
  const seen = { value: 'pending' as 'pending' | 'resolved' | 'rejected' };
  promise.then(() => (seen.value = 'resolved'), () => (seen.value = 'rejected'));
  return seen;
}

describe('output queue', () => {
  it('sends what one turn of the event loop gave at once when idle, with no linger', async () => {
    const { producer, requests } = stubProducer();
    const queue = new OutputQueue(producer);
    const [a, b] = [state(queue.send([record('a')])), state(queue.send([record('b')]))];
    expect(requests).toHaveLength(0);
    await tick();
    expect(requests.map((request) => request.values)).toEqual([['a', 'b']]);
    requests[0]!.settle();
    await tick();
    expect([a.value, b.value]).toEqual(['resolved', 'resolved']);
  });

  it('accumulates while a request is in flight and sends it all when that one is acknowledged', async () => {
    const { producer, requests } = stubProducer();
    const queue = new OutputQueue(producer);
    const first = state(queue.send([record('1')]));
    await tick();
    const later = [state(queue.send([record('2')])), state(queue.send([record('3'), record('4')]))];
    await tick();
    expect(requests.map((request) => request.values)).toEqual([['1']]);
    requests[0]!.settle();
    await tick();
    expect(first.value).toBe('resolved');
    expect(later.map((seen) => seen.value)).toEqual(['pending', 'pending']);
    expect(requests.map((request) => request.values)).toEqual([['1'], ['2', '3', '4']]);
    requests[1]!.settle();
    await tick();
    expect(later.map((seen) => seen.value)).toEqual(['resolved', 'resolved']);
  });

  it("rejects every caller of a failed request, and only those", async () => {
    const { producer, requests } = stubProducer();
    const queue = new OutputQueue(producer);
    const failed = [state(queue.send([record('x')])), state(queue.send([record('y')]))];
    await tick();
    const next = state(queue.send([record('z')]));
    requests[0]!.settle(new Error('not acknowledged'));
    await tick();
    expect(failed.map((seen) => seen.value)).toEqual(['rejected', 'rejected']);
    expect(next.value).toBe('pending');
    expect(requests.map((request) => request.values)).toEqual([['x', 'y'], ['z']]);
    requests[1]!.settle();
    await tick();
    expect(next.value).toBe('resolved');
  });

  it('is backlogged while more than its bound of records is unacknowledged, queued or in flight', async () => {
    const { producer, requests } = stubProducer();
    // Each record counts its value plus a fixed overhead of 80 bytes: 100-byte values are 180 bytes each.
    const queue = new OutputQueue(producer, { maxPendingBytes: 400 });
    const value = 'v'.repeat(100);
    void queue.send([record(value), record(value)]);
    expect(queue.backlogged).toBe(false);
    await tick();
    void queue.send([record(value)]);
    expect(queue.backlogged).toBe(true); // two in flight and one queued: 540 bytes
    requests[0]!.settle();
    await tick();
    expect(queue.backlogged).toBe(false); // the queued one is in flight now: 180 bytes
    requests[1]!.settle();
    await tick();
    expect(queue.backlogged).toBe(false);
  });
});
