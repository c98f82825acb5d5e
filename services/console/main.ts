/** npm run console — the dashboard service (delivery-log consumer, web page, metrics) as a process. */
import { z } from 'zod';
import { baseSettings, integer, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { runService } from '../common/service.ts';
import { Dashboard } from './dashboard.ts';

export const consoleSettings = {
  CONSOLE_GROUP_ID: z.string().min(1).default('console'),
  CONSOLE_HTTP_HOST: z.string().default('127.0.0.1'),
  CONSOLE_HTTP_PORT: integer(0, 65535).default(8080),
};

if (import.meta.main) {
  const config = loadConfig({ ...baseSettings, ...consoleSettings });
  const logger = createLogger('console', config.LOG_LEVEL);
  await runService(logger, () => new Dashboard(config, { groupId: config.CONSOLE_GROUP_ID, httpHost: config.CONSOLE_HTTP_HOST, httpPort: config.CONSOLE_HTTP_PORT }, logger));
}
