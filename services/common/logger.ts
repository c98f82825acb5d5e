/**
 * The one logger factory. Redaction is configured here, once, so no service can log a signing secret or a
 * credential-bearing header by accident.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino censors wherever a rule, a command or a request shows up in a log line. */
export const redactPaths = [
  'secret', 'secrets', '*.secret', '*.secrets', '*.*.secrets', 'rule.secrets[*].secret',
  'password', '*.password', 'sasl', '*.sasl',
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie', '*.headers["x-api-key"]',
];

export function createLogger(service: string, level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    { name: service, level, base: { service }, redact: { paths: redactPaths, censor: '[redacted]' } },
    destination,
  );
}
