/** Loopback HTTP receivers and an in-process dispatcher for the dispatcher's tests. */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { contracts, type DeliveryLog } from '../../schemas/index.ts';
import type { ClusterConfig } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { Dispatcher, type DispatcherSettings } from '../../services/dispatcher/dispatcher.ts';
import { decodeAll, readTopic, testLogger } from '../helpers.ts';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** How to answer request number `index` (0-based); default 200. Return 'hang' to never answer. */
  respond: (index: number, request: Received) => number | 'hang' | { status: number; headers?: Record<string, string>; body?: string; delayMs?: number };
  close(): Promise<void>;
}

export async function startReceiver(path = '/hook'): Promise<Receiver> {
  const hanging: ServerResponse[] = [];
  const receiver: Receiver = { url: '', received: [], respond: () => 200, close: async () => undefined };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry = { headers: request.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      const index = receiver.received.push(entry) - 1;
      const answer = receiver.respond(index, entry);
      if (answer === 'hang') return void hanging.push(response);
      const { status, headers = {}, body, delayMs = 0 } = typeof answer === 'number' ? { status: answer } : answer;
      const send = () => response.writeHead(status, headers).end(body);
      if (delayMs > 0) {
        hanging.push(response);
        setTimeout(send, delayMs);
      } else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  receiver.close = () => new Promise((resolve) => {
    hanging.forEach((response) => response.destroy());
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return receiver;
}

export const dispatcherSettings = (cluster: ClusterConfig, overrides: Partial<DispatcherSettings> = {}): DispatcherSettings => ({
  groupId: `${cluster.TOPIC_PREFIX}dispatcher`,
  pool: 'default',
  tags: [],
  httpHost: '127.0.0.1',
  httpPort: 0,
  // The SSRF guard stays on; tests allow loopback explicitly, as local development does.
  allowNetworks: ['127.0.0.0/8', '::1/128'],
  connectTimeoutMs: 2000,
  attemptTimeoutMs: 3000,
  maxInFlight: 200,
  maxInFlightPerEndpoint: 10,
  maxWaitingPerEndpoint: 20,
  maxQueued: 1000,
  maxHeldBytes: 256 * 1024 * 1024,
  maxWaitingBytesPerEndpoint: 32 * 1024 * 1024,
  maxQueueWaitMs: 10_000,
  maxAgeMs: 60_000,
  disableAfterMs: 3_600_000,
  breakerFailures: 5,
  breakerOpenMs: 10_000,
  concurrency: 3,
  userAgent: 'workflow-webhooks-test',
  logBodyBytes: 16 * 1024,
  ...overrides,
});

/** `onFatal` is told what would make a dispatcher process exit (a test asserts it never is). */
export async function startDispatcher(cluster: ClusterConfig, overrides: Partial<DispatcherSettings> = {}, onFatal?: (error: Error) => void): Promise<Dispatcher> {
  const dispatcher = new Dispatcher(cluster, dispatcherSettings(cluster, overrides), testLogger, onFatal);
  await dispatcher.start();
  return dispatcher;
}

/** Reads delivery-log records until `done` holds for them. */
export async function readLog(cluster: ClusterConfig, done: (entries: DeliveryLog[]) => boolean, timeoutMs = 30_000): Promise<DeliveryLog[]> {
  let entries: DeliveryLog[] = [];
  const records = await readTopic(cluster, topicNames(cluster.TOPIC_PREFIX).deliveryLog, (received) => {
    entries = received.map((record) => contracts.deliveryLog.type.fromBuffer(record.value!.subarray(5)) as DeliveryLog);
    return done(entries);
  }, timeoutMs);
  return decodeAll(cluster, contracts.deliveryLog, records);
}
