/**
 * npm start: the product on its embedded default. Starts the local Kafka + registry stack unless KAFKA_BROKERS and
 * SCHEMA_REGISTRY_URL point at an existing cluster, creates the topics, registers the contracts, then runs the
 * services under a supervisor until Ctrl-C.
 */
import { fileURLToPath } from 'node:url';
import { baseSettings, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { prepareCluster } from '../common/setup.ts';
import { externalEndpoints, stackSettings, stackUp } from '../../stack/index.ts';
import { Supervisor } from './supervisor.ts';

const say = (line: string) => process.stderr.write(`start › ${line}\n`);
const script = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const external = externalEndpoints();
const endpoints = external ?? (await stackUp(stackSettings(), (line) => say(`stack: ${line}`)));
if (external) say(`using Kafka at ${external.brokers.join(',')} and the registry at ${external.registryUrl}`);

const env = { KAFKA_BROKERS: endpoints.brokers.join(','), SCHEMA_REGISTRY_URL: endpoints.registryUrl };
const config = loadConfig(baseSettings, { ...process.env, ...env });
await prepareCluster(config, createLogger('start', 'warn'));
say('topics created and contracts registered');

const supervisor = new Supervisor(say);
supervisor.start({ name: 'matcher', script: script('../matcher/main.ts'), env });
supervisor.start({ name: 'dispatcher', script: script('../dispatcher/main.ts'), env });

say(`Kafka ${config.KAFKA_BROKERS.join(',')}, schema registry ${config.SCHEMA_REGISTRY_URL}`);
say('ops endpoints: matcher http://127.0.0.1:9401/metrics, dispatcher http://127.0.0.1:9402/metrics');
say('the dispatcher dials public addresses only; set DISPATCHER_ALLOW_NETWORKS=127.0.0.0/8 to deliver to a local receiver');
say('publish events: npm run publish-events -- --file events.jsonl');
say('Ctrl-C stops the services; the stack keeps running until `npm run stack:down`.');

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    say('stopping services…');
    void supervisor.stop().then(() => process.exit(0));
  });
}
