/**
 * npm start: the product on its embedded default. Starts the local Kafka + registry stack unless KAFKA_BROKERS and
 * SCHEMA_REGISTRY_URL point at an existing cluster, then creates the topics and registers the contracts.
 */
import { baseSettings, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { prepareCluster } from '../common/setup.ts';
import { externalEndpoints, stackSettings, stackUp } from '../../stack/index.ts';

const say = (line: string) => process.stderr.write(`start › ${line}\n`);

const external = externalEndpoints();
const endpoints = external ?? (await stackUp(stackSettings(), (line) => say(`stack: ${line}`)));
if (external) say(`using Kafka at ${external.brokers.join(',')} and the registry at ${external.registryUrl}`);

const config = loadConfig(baseSettings, { ...process.env, KAFKA_BROKERS: endpoints.brokers.join(','), SCHEMA_REGISTRY_URL: endpoints.registryUrl });
await prepareCluster(config, createLogger('start', 'warn'));
say('topics created and contracts registered');
say(`Kafka:           ${config.KAFKA_BROKERS.join(',')}`);
say(`Schema registry: ${config.SCHEMA_REGISTRY_URL}`);
say('publish events:  npm run publish-events -- --file events.jsonl');
say('stop the stack:  npm run stack:down');
