/**
 * The chaos run: events flow through the matcher and the dispatcher (each its own process) to loopback receivers while
 * both services are kill -9'd at random moments and restarted, and the broker is killed and restarted; then every
 * (event, rule) pair must have reached its receiver at least once, every copy of a pair with the same webhook-id.
 * It runs on a private stack (temporary directory, free ports; JVM processes or containers, stack/choose.ts), so
 * restarting the broker disturbs nobody; the stack is removed at the end, also on failure or Ctrl-C.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowEventInput } from '../../schemas/index.ts';
import type { ConnectionConfig } from '../../services/common/config.ts';
import { kafkaConnection, createKafka } from '../../services/common/kafka.ts';
import { createLogger } from '../../services/common/logger.ts';
import { registryConnection, SchemaRegistryClient } from '../../services/common/registry.ts';
import { RuleWriter } from '../../services/common/rule-writer.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { generateSigningKey } from '../../services/common/signing-keys.ts';
import { createPublisher, type Publisher } from '../../services/producer/publisher.ts';
import { chooseStack } from '../../stack/choose.ts';
import { probeContainerRuntime } from '../../stack/containers.ts';
import { startPrivateStack, type PrivateStack } from '../../stack/private.ts';
import { addScramUser } from '../../stack/scram.ts';
import { benchCluster, startReceiver, type BenchReceiver } from '../support.ts';
import { DeliveryLedger, type LostPair } from './ledger.ts';
import { publishSpread, type PublishProgress } from './publish.ts';
import { KillableService } from './service.ts';
import { seededRandom, strikePlan, Striker, type StrikeRecord } from './strikes.ts';

export interface ChaosOptions {
  events: number;
  /** Rules matching every event, each with a receiver of its own. */
  rules: number;
  /** kill -9s of the matcher, and as many of the dispatcher. */
  kills: number;
  brokerRestarts: number;
  /** Events are published evenly over this window; the strikes fall inside it. */
  publishMs: number;
  /** How long to wait, once publishing and strikes are over, for the pairs still missing. */
  drainTimeoutMs: number;
  /** Seeds the strike plan (moments and pauses). */
  seed: number;
  /** Every client goes through the stack's SASL_SSL listener (SCRAM-SHA-512, private CA) instead of plaintext. */
  secured: boolean;
}

export const chaosDefaults: Omit<ChaosOptions, 'seed'> = { events: 20_000, rules: 3, kills: 5, brokerRestarts: 1, publishMs: 90_000, drainTimeoutMs: 120_000, secured: false };

export interface ChaosResult {
  options: ChaosOptions;
  expectedPairs: number;
  deliveredPairs: number;
  lost: number;
  /** The first lost pairs, to look up in the delivery log. */
  lostSample: LostPair[];
  posts: number;
  duplicatePosts: number;
  duplicatedPairs: number;
  /** Duplicates whose webhook-id differs from the first copy's (must be 0). */
  webhookIdMismatches: number;
  badSignatures: number;
  unexpectedPosts: number;
  kills: { matcher: number; dispatcher: number };
  brokerRestarts: number;
  strikes: StrikeRecord[];
  unplannedExits: { matcher: number; dispatcher: number };
  republishedEvents: number;
  /** From the first publish until every pair arrived (or the drain timeout). */
  runSeconds: number;
  /** Including the stack's start. */
  wallSeconds: number;
  ok: boolean;
  /** The end of each service's output. */
  serviceOutput: { matcher: string; dispatcher: string };
}

const APPLICATION = 'chaos-app';
const seconds = (ms: number) => (ms / 1000).toFixed(1);

const event = (eventId: string, index: number): WorkflowEventInput => ({
  eventId, type: 'task_completed', occurredAt: Date.now(), application: { id: APPLICATION }, workflow: { id: 'wf' },
  workflowExecutionId: `run-${index % 500}`, task: { id: 'task', runId: `tr-${index}` }, status: 'SUCCESS',
});

export async function runChaos(options: Partial<ChaosOptions> = {}, progress: (line: string) => void = () => undefined): Promise<ChaosResult> {
  const settings: ChaosOptions = { ...chaosDefaults, seed: randomInt(2 ** 31), ...options };
  const random = seededRandom(settings.seed);
  const plan = {
    matcher: strikePlan(settings.kills, settings.publishMs, random),
    dispatcher: strikePlan(settings.kills, settings.publishMs, random),
    broker: strikePlan(settings.brokerRestarts, settings.publishMs, random),
  };
  const began = performance.now();
  progress(`seed ${settings.seed}; starting a private stack…`);
  const stackProgress = (line: string) => progress(`stack: ${line}`);
  // Never the cluster KAFKA_BROKERS names: the run kills its broker.
  const { kind, reason } = await chooseStack({ probeRuntime: probeContainerRuntime, external: false });
  stackProgress(reason);
  const stack = await startPrivateStack('chaos', kind, stackProgress, { secured: settings.secured });
  const receivers: BenchReceiver[] = [];
  const services: KillableService[] = [];
  let publisher: Publisher | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    clearInterval(ticker);
    await Promise.all(services.map((service) => service.stop()));
    await publisher?.close().catch(() => undefined);
    await Promise.all(receivers.map((receiver) => receiver.close()));
    await stack.remove();
  })());
  // Ctrl-C must not leave a private broker and registry behind.
  const interrupted = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  try {
    // Silent: the publisher's connection errors while the broker is down are expected; what failed is in the result.
    const logger = createLogger('chaos', 'silent');
    const cluster = { ...(await benchCluster('chaos', stack.endpoints)), RETRY_SCHEDULE: [1000, 2000], ...(settings.secured ? await securedConnection(stack) : {}) };
    await prepareCluster(cluster, logger);
    const eventIds = Array.from({ length: settings.events }, (_, index) => `chaos-${index}`);
    const rules = Array.from({ length: settings.rules }, (_, index) => ({ id: `chaos-${index}`, secret: generateSigningKey() }));
    const ledger = new DeliveryLedger(eventIds, rules.map((rule) => rule.id));
    for (const rule of rules) receivers.push(await startReceiver({ onBody: ledger.recorder(rule.id, rule.secret) }));
    const writer = await RuleWriter.create(createKafka({ ...kafkaConnection(cluster), clientId: 'chaos', logger }), new SchemaRegistryClient(registryConnection(cluster)), topicNames(cluster.TOPIC_PREFIX).eventRules);
    await writer.put(...rules.map(({ id, secret }, index) => ({
      id, application: APPLICATION, name: `chaos ${index}`, enabled: true, scope: { kind: 'everything' as const, ids: null }, eventTypes: null,
      url: receivers[index]!.url, secrets: [{ secret, notAfter: null }],
    })));
    await writer.close();

    const matcher = new KillableService('matcher', cluster);
    const dispatcher = new KillableService('dispatcher', cluster);
    services.push(matcher, dispatcher);
    progress('starting the matcher and the dispatcher…');
    await Promise.all(services.map((service) => service.start()));
    publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger, maxBatchSize: 1000 });

    progress(`publishing ${settings.events} events over ${seconds(settings.publishMs)} s × ${settings.rules} rules = ${ledger.expectedPairs} pairs; `
      + `${settings.kills} kill -9s each of the matcher and the dispatcher, ${settings.brokerRestarts} broker restart(s)`);
    const start = performance.now();
    const elapsed = () => performance.now() - start;
    const published: PublishProgress = { published: 0, republished: 0 };
    const striker = new Striker(elapsed, () => ledger.deliveredPairs, progress);
    ticker = setInterval(() => progress(`${seconds(elapsed())} s: published ${published.published}/${settings.events}, delivered ${ledger.deliveredPairs}/${ledger.expectedPairs} pairs `
      + `(${ledger.posts} POSTs); kills matcher ${striker.count('matcher')}, dispatcher ${striker.count('dispatcher')}; broker restarts ${striker.count('broker')}`), 5000);
    await Promise.all([
      publishSpread(publisher, eventIds.map(event), settings.publishMs, published),
      ...[matcher, dispatcher].map((service) => striker.run(service.name, plan[service.name], () => service.kill(), () => service.start())),
      striker.run('broker', plan.broker, () => stack.killBroker(), () => stack.startBroker()),
    ]);
    progress(`${seconds(elapsed())} s: all published and every strike done; waiting for the last pairs…`);
    const deadline = performance.now() + settings.drainTimeoutMs;
    while (ledger.deliveredPairs < ledger.expectedPairs && performance.now() < deadline) await sleep(100);
    const runMs = elapsed();
    clearInterval(ticker);

    const lost = ledger.lost();
    const result: ChaosResult = {
      options: settings,
      expectedPairs: ledger.expectedPairs,
      deliveredPairs: ledger.deliveredPairs,
      lost: lost.length,
      lostSample: lost.slice(0, 20),
      posts: ledger.posts,
      duplicatePosts: ledger.duplicatePosts,
      duplicatedPairs: ledger.duplicatedPairs,
      webhookIdMismatches: ledger.webhookIdMismatches,
      badSignatures: ledger.badSignatures,
      unexpectedPosts: ledger.unexpected,
      kills: { matcher: striker.count('matcher'), dispatcher: striker.count('dispatcher') },
      brokerRestarts: striker.count('broker'),
      strikes: striker.records.sort((a, b) => a.atMs - b.atMs),
      unplannedExits: { matcher: matcher.unplannedExits, dispatcher: dispatcher.unplannedExits },
      republishedEvents: published.republished,
      runSeconds: Number(seconds(runMs)),
      wallSeconds: Number(seconds(performance.now() - began)),
      ok: lost.length === 0 && ledger.webhookIdMismatches === 0 && ledger.badSignatures === 0 && ledger.unexpected === 0,
      serviceOutput: { matcher: matcher.output, dispatcher: dispatcher.output },
    };
    progress(`${result.deliveredPairs}/${result.expectedPairs} pairs delivered in ${result.runSeconds} s; stopping and removing the stack…`);
    return result;
  } finally {
    process.off('SIGINT', interrupted);
    await cleanup();
  }
}

/** The connection settings of a SCRAM-SHA-512 user, made now, on the stack's SASL_SSL listener. */
async function securedConnection(stack: PrivateStack): Promise<Partial<ConnectionConfig>> {
  const listeners = stack.secured!;
  const password = randomBytes(18).toString('base64url');
  await addScramUser(listeners.admin, 'chaos', password, 'SCRAM-SHA-512');
  return {
    KAFKA_BROKERS: [listeners.saslSsl],
    KAFKA_SSL_CA_FILE: listeners.ca.cert,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'chaos',
    KAFKA_SASL_PASSWORD: password,
  };
}
