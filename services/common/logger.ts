/**
 * The one logger factory. Redaction is configured here, once, so no service can log a signing secret or a
 * credential-bearing header by accident. Records are JSON (one per line, for log shippers) or, on a terminal, one
 * readable line each (pino-pretty): time, level, service, message and the fields that matter.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory, type PrettyOptions } from 'pino-pretty';
import PinoPretty from 'pino-pretty';

export type { Logger };

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Paths pino censors wherever a rule, a command or a request shows up in a log line. */
export const redactPaths = [
  'secret', 'secrets', '*.secret', '*.secrets', '*.*.secrets', 'rule.secrets[*].secret',
  'password', '*.password', 'sasl', '*.sasl', 'clientKey', 'tls.clientKey', '*.tls.clientKey', '*.*.tls.clientKey',
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie', '*.headers["x-api-key"]',
];

export interface LoggerOptions {
  /** `pretty` or `json`; by default pretty exactly when the destination is a terminal. */
  format?: LogFormat | undefined;
  /** Where records go: stdout unless told otherwise (CLIs keep stdout for their result and log to stderr). */
  destination?: NodeJS.WriteStream | DestinationStream;
}

const isTerminal = (destination: NodeJS.WriteStream | DestinationStream) => 'isTTY' in destination && destination.isTTY === true;
const formatFor = (format: LogFormat | undefined, destination: NodeJS.WriteStream | DestinationStream): LogFormat => format ?? (isTerminal(destination) ? 'pretty' : 'json');

export function createLogger(service: string, level = 'info', { format, destination = process.stdout }: LoggerOptions = {}): Logger {
  const options = { name: service, level, base: { service }, redact: { paths: redactPaths, censor: '[redacted]' } };
  const terminal = isTerminal(destination);
  if (formatFor(format, destination) === 'json') return pino(options, destination);
  // Synchronous, on this thread: a line logged just before process.exit is not lost (a transport's worker could lose it).
  const fd = destination === process.stdout ? 1 : destination === process.stderr ? 2 : undefined;
  return pino(options, PinoPretty({ ...prettyOptions(terminal), ...(fd === undefined ? { destination } : { destination: fd, sync: true }) }));
}

/** Keys a readable line shows in its own place; they are not repeated as fields. */
const SHOWN = ['level', 'time', 'msg'];
/** Keys only a log shipper wants (or that the source column shows); the JSON format keeps them. */
const HIDDEN = ['pid', 'hostname', 'name', 'service', 'component', 'clientId', 'stack', 'timestamp', 'logger'];
const NOT_FIELDS = new Set([...SHOWN, ...HIDDEN]);
/** A field's value is cut here: a readable line is a summary, the JSON format keeps everything. */
const MAX_VALUE_CHARS = 160;

/** key=value: strings (and errors, by their message) quoted only when they must be, anything else as compact JSON. */
function field(key: string, value: unknown): string {
  const message = (value as { message?: unknown } | null)?.message;
  const text = typeof value === 'string' ? value : typeof message === 'string' ? message : undefined;
  const shown = text === undefined ? JSON.stringify(value) ?? String(value) : /[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text;
  return `${key}=${shown.length > MAX_VALUE_CHARS ? `${shown.slice(0, MAX_VALUE_CHARS)}…` : shown}`;
}

/** `matcher` or `matcher/kafka`, padded so messages line up. */
const source = (record: Record<string, unknown>) => [record.service ?? record.name, record.component].filter((part) => typeof part === 'string').join('/').padEnd(16);

function prettyOptions(terminal: boolean): PrettyOptions {
  return {
    // On a terminal pino-pretty decides (NO_COLOR, FORCE_COLOR, the terminal's support); never colours into a file.
    ...(terminal ? {} : { colorize: false }),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: HIDDEN.join(','),
    hideObject: true,
    // Errors are one field among others (their message), not a multi-line stack: JSON keeps the stack.
    errorLikeObjectKeys: [],
    messageFormat: (record, messageKey) => {
      const fields = Object.entries(record).filter(([key, value]) => !NOT_FIELDS.has(key) && value !== undefined).map(([key, value]) => field(key, value));
      // After "INFO:" or "ERROR:": pad so the source column lines up whatever the level.
      const pad = ' '.repeat(5 - (pino.levels.labels[record.level as number] ?? 'xxxxx').length);
      return `${pad}${[source(record), String(record[messageKey] ?? ''), ...fields].join(' ')}`;
    },
  };
}

/**
 * For a process that relays other processes' logs (the supervisor of `npm start`): writes each JSON record line as
 * this process's own logger would, readable on a terminal, unchanged otherwise. Lines that are not records (a stray
 * console.log) become records of `service`, so the output stays one format.
 */
export function logRelay(format: LogFormat | undefined, destination: NodeJS.WriteStream = process.stdout): (service: string, line: string) => void {
  const pretty = formatFor(format, destination) === 'pretty' ? prettyFactory(prettyOptions(isTerminal(destination))) : undefined;
  return (service, line) => {
    let record: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { level?: unknown }).level === 'number') record = parsed as Record<string, unknown>;
    } catch {
      // Not a record: wrapped below.
    }
    if (!pretty) {
      destination.write(record ? `${line}\n` : `${JSON.stringify({ level: 30, time: Date.now(), service, msg: line })}\n`);
      return;
    }
    // The relay's name for the process wins: two dispatchers (pools) both call themselves "dispatcher".
    destination.write(pretty({ level: 30, time: Date.now(), ...record, service, ...(record ? {} : { msg: line }) }));
  };
}
