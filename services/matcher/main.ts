/** npm run matcher — the matcher service as a process: settings from the environment, SIGTERM stops it cleanly. */
import { z } from 'zod';
import { baseSettings, integer, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { runService } from '../common/service.ts';
import { topicNames } from '../common/topics.ts';
import { Matcher } from './matcher.ts';

export const matcherSettings = {
  /** Defaults to the install's own group, `<TOPIC_PREFIX>matcher`. */
  MATCHER_GROUP_ID: z.string().min(1).optional(),
  MATCHER_HTTP_HOST: z.string().default('127.0.0.1'),
  MATCHER_HTTP_PORT: integer(0, 65535).default(9401),
  MATCHER_CONCURRENCY: integer(1, 256).default(3),
};

export const matcherGroupId = (config: { MATCHER_GROUP_ID?: string | undefined; TOPIC_PREFIX: string }) =>
  config.MATCHER_GROUP_ID ?? topicNames(config.TOPIC_PREFIX).group('matcher');

if (import.meta.main) {
  const config = loadConfig({ ...baseSettings, ...matcherSettings });
  const logger = createLogger('matcher', config.LOG_LEVEL, { format: config.LOG_FORMAT });
  await runService(logger, (fatal) => new Matcher(config, {
    groupId: matcherGroupId(config),
    httpHost: config.MATCHER_HTTP_HOST,
    httpPort: config.MATCHER_HTTP_PORT,
    concurrency: config.MATCHER_CONCURRENCY,
  }, logger, fatal), { tracing: 'matcher' });
}
