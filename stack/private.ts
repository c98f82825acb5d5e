/**
 * A stack of its own: a temporary directory and free ports, so it never collides with another run, `npm start` or
 * the stack someone is benchmarking on, and can be stopped or restarted without disturbing them. It is the local JVM
 * stack or, where a container runtime answers, the same Kafka and Apicurio Registry as containers (stack/choose.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startContainerStack } from './containers.ts';
import { securedListeners, stackDown, stackSettings, stackStatus, stackUp, type Endpoints, type Progress, type SecuredListeners, type StackSettings } from './index.ts';
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
  kind: 'jvm' | 'containers';
  /** Its temporary directory: the JVM processes' data and logs, the secured listeners' CA. */
  dir: string;
  endpoints: Endpoints;
  /** Its SASL_SSL and mutual-TLS listeners, when started with `secured`. */
  secured: SecuredListeners | undefined;
  /** Kills the broker alone (kill -9, or SIGKILL to its container); the registry keeps running, the data stays. */
  killBroker(): Promise<void>;
  /** Starts the killed broker again; resolves once it answers. */
  startBroker(): Promise<void>;
  /** Stops its processes or containers and deletes its directory. */
  remove(): Promise<void>;
}

/** Starts a private stack of `kind` (stack/choose.ts chooses) in a new temporary directory named after `name`; ready when this resolves. */
export async function startPrivateStack(name: string, kind: PrivateStack['kind'], progress: Progress, { secured = false }: { secured?: boolean } = {}): Promise<PrivateStack> {
  const dir = await mkdtemp(join(tmpdir(), `workflow-webhooks-${name}-`));
  const settings = await privateStackSettings(dir, { secured });
  const removeDir = () => rm(dir, { recursive: true, force: true });
  if (kind === 'containers') {
    const stack = await startContainerStack(settings, progress).catch(async (error: unknown) => {
      await removeDir();
      throw error;
    });
    return { kind: 'containers', dir, ...stack, remove: async () => { await stack.remove(); await removeDir(); } };
  }
  try {
    const { brokers, registryUrl } = await stackUp(settings, progress);
    return {
      kind: 'jvm',
      dir,
      endpoints: { brokers, registryUrl },
      secured: await securedListeners(settings),
      killBroker: async () => {
        const { pid } = (await stackStatus(settings)).kafka;
        if (pid === undefined) throw new Error('the broker is not running');
        process.kill(pid, 'SIGKILL');
        while ((await stackStatus(settings)).kafka.pid !== undefined) await sleep(100);
      },
      startBroker: async () => {
        await stackUp(settings, () => undefined);
      },
      remove: async () => {
        await stackDown(settings, progress);
        await removeDir();
      },
    };
  } catch (error) {
    // The directory stays: its logs say why the stack did not start.
    await stackDown(settings, progress);
    throw error;
  }
}
