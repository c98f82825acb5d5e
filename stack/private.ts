/**
 * A stack of its own: a temporary directory and free ports, so it never collides with another run, `npm start` or
 * the stack someone is benchmarking on, and can be stopped or restarted without disturbing them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackDown, stackSettings, stackUp, type Endpoints, type Progress, type StackSettings } from './index.ts';
import { freePorts } from './ports.ts';

/** Settings of a stack in `dir` on free ports. */
export async function privateStackSettings(dir: string, { secured = false }: { secured?: boolean } = {}): Promise<StackSettings> {
  const [kafka, controller, registry, management, saslSsl, mtls] = await freePorts(6);
  return stackSettings({
    ...(secured ? { STACK_KAFKA_SASL_SSL_PORT: String(saslSsl), STACK_KAFKA_MTLS_PORT: String(mtls) } : {}),
    STACK_DIR: dir,
    STACK_KAFKA_PORT: String(kafka),
    STACK_CONTROLLER_PORT: String(controller),
    STACK_REGISTRY_PORT: String(registry),
    STACK_REGISTRY_MANAGEMENT_PORT: String(management),
  });
}

export interface PrivateStack {
  settings: StackSettings;
  endpoints: Endpoints;
  /** Stops its processes and deletes its directory. */
  remove(): Promise<void>;
}

/** Starts a private stack in a new temporary directory named after `name`; ready when this resolves. */
export async function startPrivateStack(name: string, progress: Progress, options: { secured?: boolean } = {}): Promise<PrivateStack> {
  const dir = await mkdtemp(join(tmpdir(), `workflow-webhooks-${name}-`));
  const settings = await privateStackSettings(dir, options);
  try {
    const { brokers, registryUrl } = await stackUp(settings, progress);
    return {
      settings,
      endpoints: { brokers, registryUrl },
      remove: async () => {
        await stackDown(settings, progress);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    // The directory stays: its logs say why the stack did not start.
    await stackDown(settings, progress);
    throw error;
  }
}
