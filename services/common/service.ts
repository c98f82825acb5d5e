/**
 * Runs a service as a process: starts it, logs where its ops endpoint is, and on SIGTERM or SIGINT stops it cleanly
 * (in-flight work finished, offsets committed, consumer group left) before exiting. A failure to start, or an error
 * nothing else handled, exits non-zero so a supervisor restarts the process. A service named in `tracing` exports
 * its spans when OTLP is configured (tracing.ts), and flushes them before a clean exit.
 */
import type { Logger } from './logger.ts';
import { startTracing } from './tracing.ts';

export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly opsPort: number | undefined;
}

export interface RunOptions {
  stopTimeoutMs?: number;
  /** The service's name in its traces; without it the process exports none. */
  tracing?: string;
}

export async function runService(logger: Logger, create: (fatal: (error: Error) => void) => Service, { stopTimeoutMs = 30_000, tracing }: RunOptions = {}): Promise<void> {
  let service: Service;
  const spans = tracing ? await startTracing(tracing, logger) : undefined;
  /** Stops the service, but exits with `code` after at most stopTimeoutMs: a stop that hangs must not keep the process. */
  const stopAndExit = async (code: number) => {
    setTimeout(() => {
      logger.error(`did not stop within ${stopTimeoutMs} ms; exiting`);
      process.exit(1);
    }, stopTimeoutMs).unref();
    await service.stop().catch((error: unknown) => logger.error({ err: error }, 'error while stopping'));
    await spans?.shutdown();
    process.exit(code);
  };
  let stopping = false;
  const fatal = (error: Error) => {
    logger.fatal({ err: error }, `stopped working: ${error.message}; exiting so a supervisor restarts it`);
    if (stopping) return;
    stopping = true;
    void stopAndExit(1);
  };
  try {
    service = create(fatal);
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    process.exit(1);
  }
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    void stopAndExit(0);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, 'unhandled rejection');
    process.exit(1);
  });
  try {
    await service.start();
    logger.info({ ops: `http://127.0.0.1:${service.opsPort}` }, 'started (/healthz, /readyz, /metrics)');
  } catch (error) {
    logger.fatal({ err: error }, `could not start: ${(error as Error).message}`);
    await service.stop().catch(() => undefined);
    process.exit(1);
  }
}
