/**
 * npm run setup: creates every topic and registers every contract on the configured cluster (idempotent).
 * Operators run it once per cluster (and after changing RETRY_SCHEDULE); `npm start` runs it by itself.
 * Prints what it did on stdout; an error is one line on stderr and exit code 1.
 */
import { cliLogger, orExit, parseCommandLine, runCli } from '../common/cli.ts';
import { baseSettings, loadConfig } from '../common/config.ts';
import { prepareCluster } from '../common/setup.ts';

const USAGE = `
usage: npm run setup

Creates the topics that do not exist yet (with their partitions and configs) and registers every contract under
<topic>-value with BACKWARD compatibility, on the cluster KAFKA_BROKERS and SCHEMA_REGISTRY_URL name. Safe to repeat.
`;

parseCommandLine({ options: { help: { type: 'boolean', short: 'h' } } }, USAGE);
const config = orExit(() => loadConfig(baseSettings));
const logger = cliLogger('setup', config.LOG_LEVEL, config.LOG_FORMAT);

await runCli(async () => {
  const { topics, createdTopics, subjects } = await prepareCluster(config, logger);
  console.log(`topics: ${topics.length} ready on ${config.KAFKA_BROKERS.join(',')} (${createdTopics.length} created now)`);
  console.log(`contracts: ${subjects.length} subjects registered on ${config.SCHEMA_REGISTRY_URL}`);
  return 0;
});
