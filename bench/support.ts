/** What benchmarks share: a cluster (the local stack, started or reused, or KAFKA_BROKERS + SCHEMA_REGISTRY_URL), progress, results. */
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { externalEndpoints, stackSettings, stackUp } from '../stack/index.ts';
import type { ClusterConfig } from '../services/common/setup.ts';

export const progress = (line: string) => process.stderr.write(`bench › ${line}\n`);

export async function benchCluster(name: string): Promise<ClusterConfig> {
  const endpoints = externalEndpoints() ?? (await stackUp(stackSettings(), (line) => progress(`stack: ${line}`)));
  return {
    KAFKA_BROKERS: endpoints.brokers,
    SCHEMA_REGISTRY_URL: endpoints.registryUrl,
    KAFKA_CLIENT_ID: `bench-${name}`,
    TOPIC_PREFIX: `bench-${name}-${Date.now().toString(36)}.`,
    TOPIC_PARTITIONS: 6,
    RETRY_SCHEDULE: [5000],
  };
}

/** Environment for a service child process on this cluster. */
export const serviceEnv = (cluster: ClusterConfig): NodeJS.ProcessEnv => ({
  ...process.env,
  KAFKA_BROKERS: cluster.KAFKA_BROKERS.join(','),
  SCHEMA_REGISTRY_URL: cluster.SCHEMA_REGISTRY_URL,
  TOPIC_PREFIX: cluster.TOPIC_PREFIX,
  LOG_LEVEL: 'warn',
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

/** A metric's value from a Prometheus text page (summed over label sets). */
export function metric(page: string, name: string): number {
  return page
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

export async function writeResults(name: string, results: unknown): Promise<string> {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const file = `${dir}${name}.json`;
  await writeFile(file, `${JSON.stringify({ name, at: new Date().toISOString(), cpus: (await import('node:os')).cpus().length, results }, null, 2)}\n`);
  return file;
}
