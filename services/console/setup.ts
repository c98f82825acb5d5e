/**
 * npm run setup: creates every topic and registers every contract on the configured cluster (idempotent).
 * Operators run it once per cluster (and after changing RETRY_SCHEDULE); `npm start` runs it by itself.
 */
import { baseSettings, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { prepareCluster } from '../common/setup.ts';

const config = loadConfig(baseSettings);
const logger = createLogger('setup', config.LOG_LEVEL);
try {
  await prepareCluster(config, logger);
} catch (error) {
  logger.error({ err: error }, `setup failed: ${(error as Error).message}`);
  process.exit(1);
}
