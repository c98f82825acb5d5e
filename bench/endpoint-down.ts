/**
 * npm run bench:down — does every delivery to an endpoint that is down for the whole run end, and what does it cost?
 * One rule points at a loopback port nobody listens on; --events events match it. The dispatcher runs with a short
 * retry schedule (--schedule) and maximum age (--max-age) so the run ends in minutes, its breaker opening and
 * half-opening throughout. The run waits until every delivery is dead-lettered (exhausted or expired) and prints how
 * many retry records the dispatcher wrote per delivery: attempts and deferrals together are bounded by the schedule's
 * steps, however long the endpoint stays down. Writes bench/results/endpoint-down.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKafka, kafkaConnection } from '../services/common/kafka.ts';
import { createLogger } from '../services/common/logger.ts';
import { parseDuration } from '../services/common/duration.ts';
import { registryConnection, SchemaRegistryClient } from '../services/common/registry.ts';
import { RuleWriter } from '../services/common/rule-writer.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { topicNames } from '../services/common/topics.ts';
import { createPublisher } from '../services/producer/publisher.ts';
import { freePort } from '../stack/ports.ts';
import { benchCluster, metric, progress, removeRun, startService, writeResults } from './support.ts';
import { parseCommandLine } from '../services/common/cli.ts';
import { progressLine } from '../services/common/progress.ts';

const USAGE = `
usage: npm run bench:down -- [--events 500] [--schedule 1s,2s,4s,8s] [--max-age 40s] [--breaker-open 2s]

What deliveries to an endpoint that stays down cost before they end; writes bench/results/endpoint-down.json (docs/benchmarks.md).
`;
const { values } = parseCommandLine({
  options: {
    help: { type: 'boolean', short: 'h' },
    events: { type: 'string', default: '500' },
    schedule: { type: 'string', default: '1s,2s,4s,8s' },
    'max-age': { type: 'string', default: '40s' },
    'breaker-open': { type: 'string', default: '2s' },
  },
}, USAGE);
const eventCount = Number(values.events);
const schedule = values.schedule.split(',').map(parseDuration);
const logger = createLogger('bench', 'warn');

const cluster = { ...(await benchCluster('down')), RETRY_SCHEDULE: schedule };
await prepareCluster(cluster, logger);
// A port that was free a moment ago: connections to it are refused, as to a host whose service is down.
const downUrl = `http://127.0.0.1:${await freePort()}/hook`;
const writer = await RuleWriter.create(createKafka({ ...kafkaConnection(cluster), clientId: 'bench', logger }), new SchemaRegistryClient(registryConnection(cluster)), topicNames(cluster.TOPIC_PREFIX).eventRules);
await writer.put({
  id: 'down', application: 'down', name: 'endpoint down', enabled: true, scope: { kind: 'everything', ids: null }, eventTypes: null, url: downUrl,
  secrets: [{ secret: `whsec_${randomBytes(32).toString('base64')}`, notAfter: null }],
});
await writer.close();

progress('starting matcher and dispatcher…');
const matcher = await startService('matcher', cluster);
const dispatcher = await startService('dispatcher', cluster, { env: { DISPATCHER_MAX_AGE: values['max-age'], DISPATCHER_BREAKER_OPEN: values['breaker-open'] } });
const publisher = await createPublisher({ ...kafkaConnection(cluster), ...registryConnection(cluster), topicPrefix: cluster.TOPIC_PREFIX, logger });
await publisher.publish(Array.from({ length: eventCount }, (_, index) => ({
  eventId: `down-${index}-${randomUUID().slice(0, 8)}`, type: 'workflow_failed' as const, occurredAt: Date.now(), application: { id: 'down' }, workflowExecutionId: `run-${index}`, status: 'FAILED',
})));
await publisher.close();

const began = performance.now();
const page = async () => (await fetch(`http://127.0.0.1:${dispatcher.port}/metrics`)).text();
const limitMs = schedule.reduce((sum, delay) => sum + delay, 0) + parseDuration(values['max-age']) + 60_000;
let text = await page();
const ending = progressLine();
while (metric(text, 'dispatcher_dead_lettered_total') < eventCount && performance.now() - began < limitMs) {
  await sleep(1000);
  text = await page();
  ending.update(`bench › deliveries ended ${metric(text, 'dispatcher_dead_lettered_total')}/${eventCount}, retry records so far ${metric(text, 'dispatcher_retries_total')}`);
}
ending.done();
const seconds = (performance.now() - began) / 1000;
const ended = metric(text, 'dispatcher_dead_lettered_total');
const retryRecords = metric(text, 'dispatcher_retries_total');
const results = {
  events: eventCount, schedule: values.schedule, maxAge: values['max-age'], breakerOpen: values['breaker-open'], seconds: Number(seconds.toFixed(1)),
  ended, endedExhausted: metric(text, 'dispatcher_dead_lettered_total', { reason: 'exhausted' }), endedExpired: metric(text, 'dispatcher_dead_lettered_total', { reason: 'expired' }),
  retryRecords, retryRecordsPerDelivery: Number((retryRecords / eventCount).toFixed(2)),
};
for (const child of [matcher.child, dispatcher.child]) child.kill('SIGKILL');
await removeRun(cluster);
console.log(`
endpoint down for the whole run: ${eventCount} deliveries, schedule ${values.schedule}, maximum age ${values['max-age']}, breaker open ${values['breaker-open']}
ended                      ${ended}/${eventCount} (exhausted ${results.endedExhausted}, expired ${results.endedExpired}) in ${results.seconds} s
retry records per delivery ${results.retryRecordsPerDelivery} (attempts and deferrals; ${retryRecords} in all)
wrote ${await writeResults('endpoint-down', results)}`);
process.exit(ended >= eventCount ? 0 : 1);
