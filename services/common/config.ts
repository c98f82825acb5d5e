/**
 * Configuration from environment variables, validated with zod. A bad value fails fast with the variable's name and
 * what it must be, never with a stack trace from deep inside a client.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { LOG_FORMATS } from './logger.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/**
 * How to reach a secured cluster: TLS (optionally mutual), SASL, registry basic auth over HTTPS. All optional, so the
 * embedded stack needs none of them. Files are checked here, at start, so a typo in a path is named before any
 * connection is tried; secrets may come from `<NAME>_FILE` (see loadConfig).
 */
export const connectionSettings = {
  /** TLS to the brokers; implied by a CA, certificate or key file. */
  KAFKA_SSL: z.stringbool().optional(),
  /** PEM CA bundle that signed the brokers' certificates (default: the system's CAs). */
  KAFKA_SSL_CA_FILE: pemFile('CERTIFICATE').optional(),
  /** Client certificate and key for mutual TLS. */
  KAFKA_SSL_CERT_FILE: pemFile('CERTIFICATE').optional(),
  KAFKA_SSL_KEY_FILE: privateKeyFile().optional(),
  KAFKA_SASL_MECHANISM: z.string().toLowerCase().pipe(z.enum(SASL_MECHANISMS)).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  SCHEMA_REGISTRY_USERNAME: z.string().min(1).optional(),
  SCHEMA_REGISTRY_PASSWORD: z.string().min(1).optional(),
  /** PEM CA bundle that signed the registry's HTTPS certificate (default: the system's CAs). */
  SCHEMA_REGISTRY_CA_FILE: pemFile('CERTIFICATE').optional(),
  /** Client certificate and key for a registry behind mutual TLS. */
  SCHEMA_REGISTRY_CERT_FILE: pemFile('CERTIFICATE').optional(),
  SCHEMA_REGISTRY_KEY_FILE: privateKeyFile().optional(),
};

const MIN_RETRY_DELAY_MS = 100;
/** The longest delay a Node timer can wait (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Settings every service shares: where Kafka and the registry are, and how topics are named. */
export const baseSettings = {
  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((value) => value.split(',').map((broker) => broker.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port')).min(1, 'needs at least one host:port')),
  SCHEMA_REGISTRY_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8081/apis/ccompat/v7'),
  KAFKA_CLIENT_ID: z.string().min(1).default('workflow-webhooks'),
  /** Prepended to every topic name, so several deployments (or test files) can share one cluster. */
  TOPIC_PREFIX: z.string().regex(/^[A-Za-z0-9._-]*$/, 'only letters, digits, dot, underscore and dash').default(''),
  /** Partitions of the data topics when they are created: the unit of parallelism of every consumer group. */
  TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(6),
  /** Delays between delivery attempts; one retry topic per distinct delay. Like Svix by default. */
  RETRY_SCHEDULE: durations('5s,5m,30m,2h,5h,10h,10h').refine(
    (delays) => delays.every((delay) => delay >= MIN_RETRY_DELAY_MS && delay <= MAX_TIMER_MS),
    `each delay must be at least ${MIN_RETRY_DELAY_MS}ms (0 would retry at once, forever) and at most 24d (a timer's limit)`,
  ),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `pretty` (one readable line per record) or `json`; unset: pretty on a terminal, JSON otherwise. */
  LOG_FORMAT: z.enum(LOG_FORMATS).optional(),
  ...connectionSettings,
};

export type BaseConfig = z.output<z.ZodObject<typeof baseSettings>>;

/** The settings a Kafka or registry client is built from (services/common/kafka.ts kafkaConnection, registry.ts registryConnection). */
export type ConnectionConfig = Pick<BaseConfig, 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL' | keyof typeof connectionSettings>;

/**
 * The connection settings of `config` as environment variables, for a child process (a service, a CLI) that must
 * reach the same cluster: every one is set, unset ones blank (with their `_FILE` variants), so none leaks in from
 * the parent's environment.
 */
export function connectionEnv(config: Partial<ConnectionConfig>): Record<string, string> {
  return Object.fromEntries(Object.keys(connectionSettings).flatMap((name) => {
    const value = config[name as keyof ConnectionConfig];
    return [[name, value === undefined ? '' : String(value)], [`${name}_FILE`, '']];
  }));
}

/** Settings that only make sense together; each issue names the variable to fix. */
function connectionIssues(config: Partial<ConnectionConfig>): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const tlsFiles = (['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'] as const).filter((name) => config[name] !== undefined);
  if (config.KAFKA_SSL === false && tlsFiles.length > 0) issues.push({ path: 'KAFKA_SSL', message: `is false, but ${tlsFiles.join(', ')} asks for TLS` });
  for (const [cert, key] of [['KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'], ['SCHEMA_REGISTRY_CERT_FILE', 'SCHEMA_REGISTRY_KEY_FILE']] as const) {
    if ((config[cert] === undefined) !== (config[key] === undefined)) {
      issues.push({ path: config[cert] === undefined ? cert : key, message: `mutual TLS needs both ${cert} and ${key}` });
    }
  }
  if (config.KAFKA_SASL_MECHANISM !== undefined) {
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
      if (config[name] === undefined) issues.push({ path: name, message: `required with KAFKA_SASL_MECHANISM=${config.KAFKA_SASL_MECHANISM}` });
    }
  } else if (config.KAFKA_SASL_USERNAME !== undefined || config.KAFKA_SASL_PASSWORD !== undefined) {
    issues.push({ path: 'KAFKA_SASL_MECHANISM', message: `required with SASL credentials: one of ${SASL_MECHANISMS.join(', ')}` });
  }
  if ((config.SCHEMA_REGISTRY_USERNAME === undefined) !== (config.SCHEMA_REGISTRY_PASSWORD === undefined)) {
    const missing = config.SCHEMA_REGISTRY_USERNAME === undefined ? 'SCHEMA_REGISTRY_USERNAME' : 'SCHEMA_REGISTRY_PASSWORD';
    issues.push({ path: missing, message: 'basic auth needs both SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD' });
  }
  if (config.SCHEMA_REGISTRY_URL !== undefined) {
    const url = new URL(config.SCHEMA_REGISTRY_URL);
    // A URL ends up in log lines and errors; credentials in it would too.
    if (url.username || url.password) issues.push({ path: 'SCHEMA_REGISTRY_URL', message: 'must not hold credentials: set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD' });
    for (const name of ['SCHEMA_REGISTRY_CA_FILE', 'SCHEMA_REGISTRY_CERT_FILE', 'SCHEMA_REGISTRY_KEY_FILE'] as const) {
      if (config[name] !== undefined && url.protocol !== 'https:') {
        issues.push({ path: name, message: `is set, but SCHEMA_REGISTRY_URL is ${url.protocol}// (use https://)` });
      }
    }
  }
  return issues;
}

/** A readable PEM file holding at least one `-----BEGIN <label>-----` block; the value stays the path. */
function pemFile(label: string) {
  return readableFile((text) => text.includes(`-----BEGIN ${label}-----`) || `holds no PEM ${label.toLowerCase()}`);
}

/** A readable, unencrypted PEM private key. The parser's own message is not passed on: it could quote the key. */
function privateKeyFile() {
  return readableFile((text) => {
    try {
      createPrivateKey(text);
      return true;
    } catch {
      return 'holds no unencrypted PEM private key';
    }
  });
}

function readableFile(check: (text: string) => true | string) {
  return z.string().min(1).superRefine((path, context) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      context.addIssue({ code: 'custom', message: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
      return;
    }
    const verdict = check(text);
    if (verdict !== true) context.addIssue({ code: 'custom', message: `${path} ${verdict}` });
  });
}

/**
 * Parses `env` against a shape of settings; throws ConfigError naming every offending variable. Any setting `NAME` may
 * instead be read from the file `NAME_FILE` names (a mounted secret; one trailing newline is dropped). Messages never
 * quote a value, so a password given in the wrong place is not echoed.
 */
export function loadConfig<Shape extends z.ZodRawShape>(shape: Shape, env: NodeJS.ProcessEnv = process.env): z.output<z.ZodObject<Shape>> {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== '')) as Record<string, string>;
  const fileIssues: string[] = [];
  for (const name of Object.keys(shape)) {
    const file = present[`${name}_FILE`];
    if (file === undefined) continue;
    if (present[name] !== undefined) {
      fileIssues.push(`  ${name}_FILE: set together with ${name}; set one of them`);
      continue;
    }
    try {
      present[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      fileIssues.push(`  ${name}_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const result = z.object(shape).superRefine((config, context) => {
    for (const { path, message } of connectionIssues(config as Partial<ConnectionConfig>)) context.addIssue({ code: 'custom', path: [path], message });
  }).safeParse(present);
  if (result.success && fileIssues.length === 0) return result.data;
  const lines = [...fileIssues, ...(result.error?.issues ?? []).map((issue) => `  ${issue.path.join('.') || '(environment)'}: ${issue.message}`)];
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}

/** A comma-separated list of durations (`5s,5m`) as milliseconds. */
export function durations(fallback: string) {
  return z.string().default(fallback).transform((text, context) => {
    try {
      return text.split(',').map(parseDuration);
    } catch (error) {
      context.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

/** One duration (`15s`) as milliseconds. */
export const duration = (fallback: string) => durations(fallback).refine((list) => list.length === 1, 'one duration, not a list').transform((list) => list[0]!);

/** Integer setting with bounds, e.g. `integer(1, 65535).default(9092)`. */
export const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const BYTE_UNITS = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 } as const;

/** A size in bytes as operators write it: `1048576`, `64kB`, `256MB`, `1GB` (units of 1024). */
export const byteSize = (fallback: string) => z.string().default(fallback).transform((text, context) => {
  const match = /^(\d+)\s*(B|kB|KB|MB|GB)?$/.exec(text.trim());
  if (!match) {
    context.addIssue({ code: 'custom', message: `"${text}" is not a size: write a whole number of bytes, or with kB, MB or GB, e.g. 256MB` });
    return z.NEVER;
  }
  return Number(match[1]) * BYTE_UNITS[(match[2] ?? 'B') as keyof typeof BYTE_UNITS];
});

/** A size as byteSize reads it back: the largest unit that divides it exactly. */
export function formatBytes(bytes: number): string {
  for (const unit of ['GB', 'MB', 'kB'] as const) if (bytes >= BYTE_UNITS[unit] && bytes % BYTE_UNITS[unit] === 0) return `${bytes / BYTE_UNITS[unit]}${unit}`;
  return `${bytes}B`;
}
