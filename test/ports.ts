import { createServer } from 'node:net';
import { stackSettings, type StackSettings } from '../stack/index.ts';

/** Ports the OS reports free on 127.0.0.1 right now (all distinct). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Settings of a stack of its own in `dir`, on free ports, so it never collides with another run or `npm start`. */
export async function privateStackSettings(dir: string): Promise<StackSettings> {
  const [kafka, controller, registry, management] = await freePorts(4);
  return stackSettings({
    STACK_DIR: dir,
    STACK_KAFKA_PORT: String(kafka),
    STACK_CONTROLLER_PORT: String(controller),
    STACK_REGISTRY_PORT: String(registry),
    STACK_REGISTRY_MANAGEMENT_PORT: String(management),
  });
}
