/** npm run console — the console service (rules, webhook logs, dead letters, JSON API, metrics) as a process. */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { orExit } from '../common/cli.ts';
import { baseSettings, byteSize, duration, formatBytes, integer, loadConfig } from '../common/config.ts';
import { formatDuration } from '../common/duration.ts';
import { createLogger } from '../common/logger.ts';
import { runService } from '../common/service.ts';
import { topicNames } from '../common/topics.ts';
import { ADMIN_TOKEN_MIN_LENGTH, loadAdminToken } from './auth.ts';
import { Console } from './console.ts';
import { DEFAULT_RETENTION } from './history/retention.ts';

export const consoleSettings = {
  /** Prefix of the console's consumer groups; defaults to the install's own, `<TOPIC_PREFIX>console`. */
  CONSOLE_GROUP_ID: z.string().min(1).optional(),
  /** Loopback unless told otherwise: put TLS in front before exposing it (docs/security.md). */
  CONSOLE_HTTP_HOST: z.string().default('127.0.0.1'),
  CONSOLE_HTTP_PORT: integer(0, 65535).default(8080),
  /** The admin token; when unset, one is generated at first start into CONSOLE_TOKEN_FILE (mode 0600). */
  CONSOLE_TOKEN: z.string().min(ADMIN_TOKEN_MIN_LENGTH, `must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters`).optional(),
  CONSOLE_TOKEN_FILE: z.string().default(fileURLToPath(new URL('../../.stack/console-token', import.meta.url))),
  /** Where the console keeps its delivery history; `<STACK_DIR>/console` under npm start, `.stack/console` otherwise. One console per directory. */
  CONSOLE_DATA_DIR: z.string().min(1).optional(),
  /** postgres://…: keep the history in PostgreSQL, shared by every console given the same URL, instead of CONSOLE_DATA_DIR. */
  CONSOLE_HISTORY_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  /** Attempts older than this leave the history. */
  CONSOLE_HISTORY_RETENTION: duration(formatDuration(DEFAULT_RETENTION.maxAgeMs)),
  /** Past this size the oldest attempts leave the history, whatever their age. */
  CONSOLE_HISTORY_MAX_SIZE: byteSize(formatBytes(DEFAULT_RETENTION.maxBytes)),
  /** Mark the session cookie Secure: set it when the console is reached through TLS. */
  CONSOLE_SECURE_COOKIE: z.stringbool().default(false),
};

export const consoleGroupId = (config: { CONSOLE_GROUP_ID?: string | undefined; TOPIC_PREFIX: string }) =>
  config.CONSOLE_GROUP_ID ?? topicNames(config.TOPIC_PREFIX).group('console');

if (import.meta.main) {
  // CONSOLE_TOKEN_FILE is where the token is kept (and generated on the first start), so loadAdminToken reads it, not
  // loadConfig's NAME_FILE convention, which would refuse a file not generated yet and not name it when it is too short.
  const { CONSOLE_TOKEN_FILE: tokenFileSetting, ...env } = process.env;
  const config = orExit(() => loadConfig({ ...baseSettings, ...consoleSettings, STACK_DIR: z.string().optional() }, env));
  const logger = createLogger('console', config.LOG_LEVEL, { format: config.LOG_FORMAT });
  const tokenFile = tokenFileSetting || (config.STACK_DIR ? `${config.STACK_DIR}/console-token` : config.CONSOLE_TOKEN_FILE);
  const admin = orExit(() => loadAdminToken(config.CONSOLE_TOKEN, tokenFile));
  // Printed once, to the terminal only (never through the logger, whose lines are shipped elsewhere).
  if (admin.generatedInto) process.stderr.write(`console admin token (shown once; kept in ${admin.generatedInto}, mode 0600): ${admin.token}\n`);
  else if (!config.CONSOLE_TOKEN) logger.info({ file: tokenFile }, 'console admin token read from its file');
  const dataDir = config.CONSOLE_DATA_DIR ?? (config.STACK_DIR ? `${config.STACK_DIR}/console` : fileURLToPath(new URL('../../.stack/console', import.meta.url)));
  await runService(logger, () => new Console(config, {
    groupId: consoleGroupId(config), dataDir, historyUrl: config.CONSOLE_HISTORY_URL, retention: { maxAgeMs: config.CONSOLE_HISTORY_RETENTION, maxBytes: config.CONSOLE_HISTORY_MAX_SIZE }, httpHost: config.CONSOLE_HTTP_HOST, httpPort: config.CONSOLE_HTTP_PORT,
    adminToken: admin.token, secureCookie: config.CONSOLE_SECURE_COOKIE,
  }, logger));
}
