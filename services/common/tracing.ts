/**
 * Exporting a service's spans over OTLP with the OpenTelemetry Node SDK, configured the standard way: on when
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, everything else (protocol, headers,
 * sampler, batching) from the OTEL_* variables the SDK reads. Traces only: metrics stay on /metrics (prom-client) and
 * logs on stdout (pino). Off, nothing is loaded and the global tracer stays a no-op.
 */
import type { Logger } from './logger.ts';

export interface Tracing {
  /** Exports the spans still buffered; call before the process exits. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { shutdown: async () => undefined };

/** Where the traces go, as a log line may show it: the endpoint's origin and path, never userinfo. */
function shownEndpoint(env: NodeJS.ProcessEnv): string {
  const text = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '';
  const url = URL.parse(text);
  return url ? `${url.origin}${url.pathname}` : '(not a URL)';
}

export async function startTracing(service: string, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Tracing> {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return OFF;
  if (/^true$/i.test(env.OTEL_SDK_DISABLED ?? '')) return OFF;
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME, when set, names the service (the SDK's env detector reads it).
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: `workflow-webhooks-${service}` }),
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  logger.info({ endpoint: shownEndpoint(env), protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf' }, 'exporting traces (OTLP)');
  return { shutdown: () => sdk.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'could not export the last spans')) };
}
