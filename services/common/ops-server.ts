/**
 * Every service's operations endpoint on loopback: /healthz (the process is up), /readyz (it is doing its job — e.g.
 * the rules table is bootstrapped) and /metrics (Prometheus, prom-client).
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

export function createMetrics(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export interface OpsServerOptions {
  host?: string;
  port: number;
  metrics: Registry;
  /** Undefined when ready, otherwise why not. */
  notReadyReason: () => string | undefined;
  /** More GET routes (a service's own pages and APIs): returns false when it does not serve `url`. */
  routes?: (url: URL, response: ServerResponse) => boolean;
}

export async function startOpsServer({ host = '127.0.0.1', port, metrics, notReadyReason, routes }: OpsServerOptions): Promise<OpsServer> {
  const server = createServer((request, response) => {
    const reply = (status: number, body: string, type = 'application/json') => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    };
    if (request.method !== 'GET') return reply(405, JSON.stringify({ error: 'only GET' }));
    const url = new URL(request.url ?? '/', 'http://ops');
    switch (url.pathname) {
      case '/healthz':
        return reply(200, JSON.stringify({ status: 'ok' }));
      case '/readyz': {
        const reason = notReadyReason();
        return reason === undefined ? reply(200, JSON.stringify({ status: 'ready' })) : reply(503, JSON.stringify({ status: 'not ready', reason }));
      }
      case '/metrics':
        metrics.metrics().then((text) => reply(200, text, metrics.contentType), (error: Error) => reply(500, JSON.stringify({ error: error.message })));
        return;
      default:
        if (routes?.(url, response)) return;
        return reply(404, JSON.stringify({ error: 'not found', endpoints: ['/healthz', '/readyz', '/metrics'] }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
