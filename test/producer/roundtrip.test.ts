import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contracts, EVENT_TYPES, validate, type WorkflowEvent } from '../../schemas/index.ts';
import { kafkaConnection, headerValue } from '../../services/common/kafka.ts';
import { MAX_EVENT_BYTES } from '../../services/common/limits.ts';
import { registryConnection } from '../../services/common/registry.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { createPublisher, type Publisher } from '../../services/producer/publisher.ts';
import { harnessEvent, seedEvents } from '../fixtures/seed-events.ts';
import { decodeAll, readTopic, testCluster, testLogger } from '../helpers.ts';

const cluster = testCluster('roundtrip');
const topic = topicNames(cluster.TOPIC_PREFIX).workflowEvents;
let publisher: Publisher;

beforeAll(async () => {
  await prepareCluster(cluster, testLogger);
  publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger: testLogger });
});
afterAll(() => publisher?.close());

describe('producer SDK → real broker → real registry', () => {
  it('round-trips every event type of both seeds unchanged, in the Confluent wire format', async () => {
    const events = seedEvents();
    expect(new Set(events.map((event) => event.type))).toEqual(new Set(EVENT_TYPES));

    await expect(publisher.publish(events)).resolves.toEqual({ published: events.length });
    const records = await readTopic(cluster, topic, events.length);
    const decoded = await decodeAll(cluster, contracts.workflowEvent, records);

    const expected = events.map((event) => (validate(contracts.workflowEvent, event) as { value: WorkflowEvent }).value);
    expect(sortById(decoded.map((event) => ({ ...event })))).toEqual(sortById(expected.map((event) => ({ ...event }))));
    for (const record of records) {
      expect(record.value![0]).toBe(0); // magic byte
      expect(record.value!.readInt32BE(1)).toBe(publisher.schemaId);
      const event = decoded[records.indexOf(record)]!;
      expect(record.key!.toString()).toBe(event.workflowExecutionId ?? event.pipelineExecutionId);
      expect(headerValue(record.headers, 'event-type')).toBe(event.type);
    }
  });

  it("keeps one execution's events in order, batching concurrent single publishes", async () => {
    const runTopic = testCluster('order', { TOPIC_PREFIX: `${cluster.TOPIC_PREFIX}order.` });
    await prepareCluster(runTopic, testLogger);
    const ordered = await createPublisher({ ...kafkaConnection(runTopic), ...registryConnection(runTopic), topicPrefix: runTopic.TOPIC_PREFIX, logger: testLogger, lingerMs: 20 });
    try {
      const events = Array.from({ length: 60 }, (_, index) =>
        harnessEvent(index % 2 ? 'workflow_paused' : 'workflow_continued', { workflowExecutionId: `run-${index % 3}`, occurredAt: 1_700_000_000_000 + index }));
      await Promise.all(events.map((event) => ordered.publish(event)));
      const decoded = await decodeAll(runTopic, contracts.workflowEvent, await readTopic(runTopic, topicNames(runTopic.TOPIC_PREFIX).workflowEvents, events.length));
      for (const run of ['run-0', 'run-1', 'run-2']) {
        const sent = events.filter((event) => event.workflowExecutionId === run).map((event) => event.eventId);
        expect(decoded.filter((event) => event.workflowExecutionId === run).map((event) => event.eventId)).toEqual(sent);
      }
    } finally {
      await ordered.close();
    }
  });

  it('publishes forty events at the size limit in one call, one execution (so one partition): requests are bounded in bytes, not only in count', async () => {
    const run = testCluster('big', { TOPIC_PREFIX: `${cluster.TOPIC_PREFIX}big.` });
    await prepareCluster(run, testLogger);
    const big = await createPublisher({ ...kafkaConnection(run), ...registryConnection(run), topicPrefix: run.TOPIC_PREFIX, logger: testLogger });
    try {
      const events = Array.from({ length: 40 }, (_, index) =>
        harnessEvent('workflow_completed', { workflowExecutionId: 'big-run', occurredAt: 1_700_000_000_000 + index, workflow: { id: 'wf', name: 'x'.repeat(MAX_EVENT_BYTES - 4096) } }));
      await expect(big.publish(events)).resolves.toEqual({ published: 40 });
      // In order and none twice: each bounded request went once, after the one before it.
      const decoded = await decodeAll(run, contracts.workflowEvent, await readTopic(run, topicNames(run.TOPIC_PREFIX).workflowEvents, events.length));
      expect(decoded.map((event) => event.eventId)).toEqual(events.map((event) => event.eventId));
    } finally {
      await big.close();
    }
  });
});

function sortById<T extends { eventId: string }>(events: T[]): T[] {
  return [...events].sort((a, b) => a.eventId.localeCompare(b.eventId));
}
