/**
 * Configuration from environment variables, validated with zod. A bad value fails fast with the variable's name and
 * what it must be, never with a stack trace from deep inside a client.
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

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
  RETRY_SCHEDULE: durations('5s,5m,30m,2h,5h,10h,10h'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

export type BaseConfig = z.output<z.ZodObject<typeof baseSettings>>;

/** Parses `env` against a shape of settings; throws ConfigError naming every offending variable. */
export function loadConfig<Shape extends z.ZodRawShape>(shape: Shape, env: NodeJS.ProcessEnv = process.env): z.output<z.ZodObject<Shape>> {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = z.object(shape).safeParse(present);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(environment)'}: ${issue.message}`);
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
