import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCluster } from '../../services/common/setup.ts';
import { registryConnection, RegistryError } from '../../services/common/registry.ts';
import { kafkaConnection } from '../../services/common/kafka.ts';
import { createPublisher, EventValidationError, PublishError, type Publisher } from '../../services/producer/publisher.ts';
import { harnessEvent, shareringEvent } from '../fixtures/seed-events.ts';
import { freePorts } from '../../stack/ports.ts';
import { readTopic, testCluster, testLogger } from '../helpers.ts';
import { topicNames } from '../../services/common/topics.ts';

const cluster = testCluster('producer-bad');
let publisher: Publisher;

beforeAll(async () => {
  await prepareCluster(cluster, testLogger);
  publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger: testLogger });
});
afterAll(() => publisher?.close());

describe('the producer SDK refuses bad input before Kafka', () => {
  it('names the field and the reason, and publishes none of the batch', async () => {
    const good = harnessEvent('workflow_started');
    const missing = { ...shareringEvent('task_started'), application: undefined };
    const wrongType = { ...harnessEvent('workflow_completed'), completedAt: 'soon' };
    const unknownType = { ...harnessEvent('workflow_started'), type: 'workflow_exploded' };
    const reserved = { ...harnessEvent('workflow_started'), type: 'unknown' };

    const error = await publisher.publish([good, missing, wrongType, unknownType, reserved] as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventValidationError);
    expect((error as EventValidationError).invalid).toEqual([
      { index: 1, eventId: missing.eventId, field: 'application', reason: 'is required' },
      { index: 2, eventId: wrongType.eventId, field: 'completedAt', reason: 'must be null or an integer (long) (got "soon")' },
      { index: 3, eventId: unknownType.eventId, field: 'type', reason: expect.stringContaining('must be one of') },
      { index: 4, eventId: reserved.eventId, field: 'type', reason: expect.stringContaining('reserved') },
    ]);
    expect((error as Error).message).toContain('event 2 (');

    // Nothing of the refused batch reached the topic: the next valid event is the first record.
    await publisher.publish(good);
    const [first] = await readTopic(cluster, topicNames(cluster.TOPIC_PREFIX).workflowEvents, 1);
    expect(first!.key!.toString()).toBe(good.workflowExecutionId);
  });

  it('poison record: the SDK refuses an occurredAt outside the JavaScript date range, naming the field', async () => {
    const far = { ...harnessEvent('workflow_started'), occurredAt: 9e15 };
    const early = { ...harnessEvent('workflow_completed'), startedAt: -9e15, completedAt: 8.64e15 + 1 };
    const edge = { ...harnessEvent('workflow_started'), occurredAt: 8.64e15 };

    const error = await publisher.publish([far, early, edge]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventValidationError);
    expect((error as EventValidationError).invalid).toEqual([
      { index: 0, eventId: far.eventId, field: 'occurredAt', reason: expect.stringContaining('must be a time within the JavaScript date range') },
      { index: 1, eventId: early.eventId, field: 'startedAt', reason: expect.stringContaining('(got -9000000000000000)') },
      { index: 1, eventId: early.eventId, field: 'completedAt', reason: expect.stringContaining('(got 8640000000000001)') },
    ]);
    // The last millisecond a Date can hold is still a valid time.
    await expect(publisher.publish(edge)).resolves.toEqual({ published: 1 });
  });

  it('reports exactly the events Kafka did not acknowledge', async () => {
    const stray = await createPublisher({
      ...kafkaConnection(cluster),
      ...registryConnection(cluster),
      topic: `${cluster.TOPIC_PREFIX}no-such-topic`,
      logger: testLogger,
      retries: 1,
    });
    try {
      const events = [harnessEvent('pipeline_started'), harnessEvent('pipeline_completed')];
      const error = await stray.publish(events).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PublishError);
      expect((error as PublishError).published).toBe(0);
      expect((error as PublishError).notPublished.map(({ index, event }) => [index, event.eventId])).toEqual(events.map((event, index) => [index, event.eventId]));
    } finally {
      await stray.close();
    }
  });

  it('fails with a clear, bounded error when the broker or the registry is down', async () => {
    const [deadKafka, deadRegistry] = await freePorts(2);
    const started = Date.now();
    await expect(createPublisher({ brokers: [`127.0.0.1:${deadKafka}`], registryUrl: cluster.SCHEMA_REGISTRY_URL, topicPrefix: cluster.TOPIC_PREFIX, logger: testLogger, retries: 1 }))
      .rejects.toThrow(`cannot connect to Kafka at 127.0.0.1:${deadKafka}`);
    await expect(createPublisher({ brokers: cluster.KAFKA_BROKERS, registryUrl: `http://127.0.0.1:${deadRegistry}/apis/ccompat/v7`, logger: testLogger, retries: 1 }))
      .rejects.toThrow(RegistryError);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
