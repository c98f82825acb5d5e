/**
 * `npm start -- --demo`: signed deliveries arriving within a minute of `npm install && npm start`. A local receiver
 * verifies every request with the standardwebhooks library and prints it; a demo rule (enabled) points at it through
 * the `demo` dispatcher pool, the only pool allowed to dial loopback; sample events of both seeds stream in steadily.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { EventType, WorkflowEventInput } from '../schemas/index.ts';
import type { BaseConfig } from '../services/common/config.ts';
import { kafkaConnection, createKafka } from '../services/common/kafka.ts';
import type { Logger } from '../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { generateSigningKey } from '../services/common/signing-keys.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';

export const DEMO_POOL = 'demo';
export const DEMO_APPLICATION = 'demo-app';

const types: EventType[] = ['workflow_started', 'task_started', 'task_completed', 'workflow_paused', 'workflow_continued', 'workflow_completed', 'pipeline_started', 'pipeline_completed', 'task_cancelled', 'workflow_failed'];

function sampleEvent(sequence: number): WorkflowEventInput {
  const type = types[sequence % types.length]!;
  const run = Math.floor(sequence / types.length);
  return {
    eventId: `demo-${Date.now()}-${sequence}`,
    type,
    occurredAt: Date.now(),
    application: { id: DEMO_APPLICATION, name: 'Demo application' },
    pipeline: { id: 'demo-pipeline', name: 'Demo pipeline' },
    workflow: type.startsWith('pipeline_') ? null : { id: 'demo-workflow', name: 'Demo workflow' },
    workflowExecutionId: type.startsWith('pipeline_') ? null : `demo-run-${run}`,
    pipelineExecutionId: `demo-pipeline-run-${run}`,
    task: type.startsWith('task_') ? { id: 'build', name: 'Build', runId: `demo-task-run-${sequence}` } : null,
    status: type.endsWith('failed') ? 'FAILED' : type.endsWith('completed') ? 'SUCCESS' : type.endsWith('cancelled') ? 'CANCELLED' : 'RUNNING',
    environments: [{ id: 'staging', name: 'Staging' }],
    triggeredBy: { uuid: 'demo-user', name: 'Demo User', email: 'demo@example.invalid' },
  };
}

export interface Demo {
  receiverUrl: string;
  stop(): Promise<void>;
}

/** `poolReady` resolves once the demo pool's dispatcher is up, so the first events already find their pool. */
export async function startDemo(config: BaseConfig, port: number, eventIntervalMs: number, logger: Logger, say: (line: string) => void, poolReady: () => Promise<void>): Promise<Demo> {
  const secret = generateSigningKey();
  const verifier = new Webhook(secret);
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      try {
        const payload = verifier.verify(body, request.headers as Record<string, string>) as { type: string; timestamp: string; data: { eventId: string } };
        const lagMs = Date.now() - Date.parse(payload.timestamp);
        say(`receiver: ✓ signature verified  ${payload.type.padEnd(20)} ${request.headers['webhook-id']}  ${lagMs} ms after the event`);
        response.writeHead(204).end();
      } catch (error) {
        say(`receiver: ✗ signature check failed: ${(error as Error).message}`);
        response.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    receiver.once('error', reject);
    receiver.listen(port, '127.0.0.1', resolve);
  });
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`;

  const kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-demo`, logger });
  const writer = await RuleWriter.create(kafka, new SchemaRegistryClient(registryConnection(config)), topicNames(config.TOPIC_PREFIX).eventRules);
  await writer.put({
    id: 'demo',
    application: DEMO_APPLICATION,
    name: 'Demo: everything to the local receiver',
    enabled: true,
    scope: { kind: 'everything', ids: null },
    eventTypes: null,
    url: receiverUrl,
    secrets: [{ secret, notAfter: null }],
    delegateSelectors: [DEMO_POOL],
  });
  await writer.close();
  await poolReady();
  const publisher = await createPublisher({ ...kafkaConnection(config), ...registryConnection(config), topicPrefix: config.TOPIC_PREFIX, logger });
  let sequence = 0;
  const timer = setInterval(() => {
    publisher.publish(sampleEvent(sequence++)).catch((error: Error) => say(`demo: could not publish an event: ${error.message}`));
  }, eventIntervalMs);
  say(`demo: rule "demo" → ${receiverUrl} (pool "${DEMO_POOL}"); publishing a sample event every ${eventIntervalMs / 1000} s`);
  return {
    receiverUrl,
    async stop() {
      clearInterval(timer);
      await publisher.close();
      await new Promise((resolve) => {
        receiver.close(resolve);
        receiver.closeAllConnections();
      });
    },
  };
}
