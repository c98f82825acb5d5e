/**
 * Issue 24, item 2: a writer schema the registry accepted but avsc cannot parse (an invalid default) is bad data, not a
 * registry outage: decode() refuses it as a DecodeError of its own reason, and the matcher dead-letters its records and
 * keeps matching, instead of retrying the batch forever. (Schema references to other subjects are resolved: see
 * test/schemas/compatibility.test.ts.)
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { DLQ_HEADERS } from '../../services/common/dead-letter.ts';
import { createProducer, headerValue } from '../../services/common/kafka.ts';
import { DecodeError, SchemaRegistryClient } from '../../services/common/registry.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import type { Matcher } from '../../services/matcher/matcher.ts';
import { harnessApp, harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { metricValue, readTopic, testCluster, testLogger } from '../helpers.ts';
import { readCommands, startMatcher, writers } from './fixtures.ts';

const cluster = testCluster('unreadable');
const topics = topicNames(cluster.TOPIC_PREFIX);
let io: Awaited<ReturnType<typeof writers>>;
let matcher: Matcher | undefined;

beforeAll(async () => {
  await prepareCluster(cluster, testLogger);
  io = await writers(cluster);
});
afterAll(async () => {
  await matcher?.stop();
  await io?.close();
});

/** Registers `schema` under `subject` through the registry's Confluent API, as another team's producer would. */
async function registerRaw(subject: string, schema: object): Promise<number> {
  const response = await fetch(`${cluster.SCHEMA_REGISTRY_URL}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(schema), schemaType: 'AVRO' }),
  });
  const body = (await response.json()) as { id?: number; message?: string };
  if (!response.ok || body.id === undefined) throw new Error(`registering ${subject}: HTTP ${response.status} ${body.message}`);
  return body.id;
}

/** Invalid defaults the registry accepts anyway: a union's default must be of its first branch ("null"). */
const badDefaultSchemaId = () => registerRaw(`${cluster.TOPIC_PREFIX}bad-default-value`, {
  type: 'record', name: contracts.workflowEvent.name, fields: [{ name: 'retries', type: ['null', 'int'], default: 5 }],
});
const otherBadDefaultSchemaId = () => registerRaw(`${cluster.TOPIC_PREFIX}bad-note-value`, {
  type: 'record', name: contracts.workflowEvent.name, fields: [{ name: 'note', type: ['null', 'string'], default: 'none' }],
});

/** A record in the wire format under `schemaId`; its body does not matter, the schema cannot be read. */
const wireRecord = (schemaId: number) => {
  const header = Buffer.alloc(5);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, Buffer.from([2, 0x61])]);
};

/** A transparent HTTP proxy in front of the registry that counts the schema fetches going through it. */
async function countingProxy(): Promise<{ url: string; fetches: () => number; close: () => Promise<void> }> {
  const upstream = new URL(cluster.SCHEMA_REGISTRY_URL);
  let fetches = 0;
  const server = createServer((incoming, outgoing) => {
    if (incoming.url?.includes('/schemas/ids/')) fetches += 1;
    const forwarded = httpRequest({ host: upstream.hostname, port: upstream.port, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(outgoing);
    });
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    fetches: () => fetches,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('a schema avsc cannot parse is bad data (issue 24, item 2)', () => {
  it('decode() refuses it as a DecodeError "unreadable-schema", and asks the registry about each such id once', async () => {
    const [otherBadDefault, badDefault] = [await otherBadDefaultSchemaId(), await badDefaultSchemaId()];
    const proxy = await countingProxy();
    try {
      const registry = new SchemaRegistryClient({ registryUrl: proxy.url });
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const refused = await registry.decode(contracts.workflowEvent, wireRecord(otherBadDefault)).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(DecodeError);
        expect(refused).toMatchObject({ reason: 'unreadable-schema', message: expect.stringMatching(/default/) });
        await expect(registry.decode(contracts.workflowEvent, wireRecord(badDefault))).rejects.toMatchObject({ reason: 'unreadable-schema', message: expect.stringMatching(/default/) });
      }
      expect(proxy.fetches()).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it('the matcher dead-letters its records with that reason and goes on matching the next valid event', async () => {
    // Registering again gives the same ids: the matcher's own registry client has not seen them.
    const [otherBadDefault, badDefault] = [await otherBadDefaultSchemaId(), await badDefaultSchemaId()];
    await io.rules.put(rule('all', harnessApp.id));
    matcher = await startMatcher(cluster);

    // The valid event that follows has the same key (the producer keys by run): the same partition, so matching it
    // proves that partition moved on.
    const valid = harnessEvent('workflow_started', { workflowExecutionId: 'unreadable-run' });
    const raw = createProducer(io.kafka);
    await raw.connect();
    await raw.send({ topic: topics.workflowEvents, messages: [otherBadDefault, badDefault].map((id) => ({ key: 'unreadable-run', value: wireRecord(id) })) });
    await raw.disconnect();
    await io.events.publish(valid);

    const { pairs } = await readCommands(cluster, 1);
    expect(pairs).toEqual([`${valid.eventId}→all`]);
    const dead = await readTopic(cluster, topics.workflowEventsDlq, 2);
    expect(dead.map((record) => headerValue(record.headers, DLQ_HEADERS.reason))).toEqual(['unreadable-schema', 'unreadable-schema']);
    expect(dead[0]!.value).toEqual(wireRecord(otherBadDefault));
    expect(await metricValue(matcher.metrics, 'matcher_dead_lettered_total', { reason: 'unreadable-schema' })).toBe(2);
    expect(matcher.notReadyReason()).toBeUndefined();
  });
});
