// @ts-check
// A workflow engine publishing one run's events with the producer SDK, as its own project would: the package comes
// from npm (here from the workspace), the settings from the environment. `npm start` publishes a workflow_started
// event and a task_completed one and prints what it published; the exit code is 1 when anything was refused.
import { randomUUID } from 'node:crypto';
import { createPublisher, EventValidationError, PublishError } from '@workflow-webhooks/producer';

const publisher = await createPublisher({
  brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  registryUrl: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
  topicPrefix: process.env.TOPIC_PREFIX,
});

const run = { id: randomUUID(), startedAt: Date.now() };
const application = { id: 'V9DxliUiS_SVzmNPkkR5Ow', name: 'Harness Sample App' };
const workflow = { id: 'smcCVuvCT4SCyayxG85U8w', name: 'To-Do List K8s Rolling' };

/** @type {import('@workflow-webhooks/producer').WorkflowEventInput[]} */
const events = [
  { eventId: randomUUID(), type: 'workflow_started', occurredAt: run.startedAt, application, workflow, workflowExecutionId: run.id, status: 'RUNNING', startedAt: run.startedAt },
  {
    eventId: randomUUID(), type: 'task_completed', occurredAt: Date.now(), application, workflow, workflowExecutionId: run.id,
    task: { id: 'deploy', name: 'Rolling deployment', runId: randomUUID() }, status: 'SUCCESS', startedAt: run.startedAt, completedAt: Date.now(),
  },
];

let code = 0;
try {
  const { published } = await publisher.publish(events);
  for (const event of events) console.log(`published ${event.type} ${event.eventId} to ${publisher.topic} (schema id ${publisher.schemaId})`);
  console.log(`published ${published} event(s) of run ${run.id}`);
} catch (error) {
  // Invalid events are refused before anything is sent; events Kafka did not acknowledge are listed one by one.
  if (error instanceof EventValidationError) console.error(error.message);
  else if (error instanceof PublishError) console.error(`not published: ${error.notPublished.map(({ event }) => event.eventId).join(', ')} (${error.message})`);
  else throw error;
  code = 1;
} finally {
  await publisher.close();
}
process.exitCode = code;
