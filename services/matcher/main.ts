/** npm run matcher — the matcher service as a process: settings from the environment, SIGTERM stops it cleanly. */
import { z } from 'zod';
import { baseSettings, integer, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { runService } from '../common/service.ts';
import { Matcher } from './matcher.ts';

export const matcherSettings = {
  MATCHER_GROUP_ID: z.string().min(1).default('matcher'),
  MATCHER_HTTP_HOST: z.string().default('127.0.0.1'),
  MATCHER_HTTP_PORT: integer(0, 65535).default(9401),
  MATCHER_CONCURRENCY: integer(1, 256).default(3),
};

if (import.meta.main) {
  const config = loadConfig({ ...baseSettings, ...matcherSettings });
  const logger = createLogger('matcher', config.LOG_LEVEL, { format: config.LOG_FORMAT });
  await runService(logger, (fatal) => new Matcher(config, {
    groupId: config.MATCHER_GROUP_ID,
    httpHost: config.MATCHER_HTTP_HOST,
    httpPort: config.MATCHER_HTTP_PORT,
    concurrency: config.MATCHER_CONCURRENCY,
  }, logger, fatal));
}
