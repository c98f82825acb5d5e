/**
 * Which stack the test harness, the chaos run and the benchmarks use, and why: the cluster named by KAFKA_BROKERS +
 * SCHEMA_REGISTRY_URL; else Kafka and Apicurio Registry containers when a container runtime answers; else the local
 * JVM stack. STACK=jvm|containers forces one of the last two. The runtime probe is passed in (the real one is
 * stack/containers.ts probeContainerRuntime), so the choice itself is tested without a runtime.
 */
import { z } from 'zod';
import { ConfigError, loadConfig } from '../services/common/config.ts';
import { externalEndpoints } from './index.ts';

export type StackKind = 'external' | 'containers' | 'jvm';

export interface StackChoice<Kind extends StackKind = StackKind> {
  kind: Kind;
  /** One line for the user: what is used, and why. */
  reason: string;
}

/** What a container runtime probe found: the runtime that answered, or where none did. */
export type RuntimeAnswer = { ok: true; runtime: string } | { ok: false; problem: string };

const stackChoiceShape = {
  STACK: z.enum(['jvm', 'containers']).optional(),
};

const CONTAINERS = 'Kafka and Apicurio Registry containers';
const JVM = 'the local JVM stack';

interface ChooseOptions {
  env?: NodeJS.ProcessEnv;
  probeRuntime: () => Promise<RuntimeAnswer>;
  external?: boolean;
}

/**
 * `external: false` is for a caller that needs a stack of its own (the chaos run restarts its broker): the cluster
 * named by the environment is then not a candidate.
 */
export async function chooseStack(options: ChooseOptions & { external: false }): Promise<StackChoice<'containers' | 'jvm'>>;
export async function chooseStack(options: ChooseOptions): Promise<StackChoice>;
export async function chooseStack({ env = process.env, probeRuntime, external = true }: ChooseOptions): Promise<StackChoice> {
  const { STACK: forced } = loadConfig(stackChoiceShape, env);
  const cluster = external ? externalEndpoints(env) : undefined;
  if (cluster && forced) {
    throw new ConfigError(`STACK=${forced} asks for a local stack, but KAFKA_BROKERS and SCHEMA_REGISTRY_URL name a cluster to use: unset one or the other`);
  }
  if (cluster) return { kind: 'external', reason: `KAFKA_BROKERS and SCHEMA_REGISTRY_URL are set; using ${cluster.brokers.join(',')} and ${cluster.registryUrl}` };
  if (forced === 'jvm') return { kind: 'jvm', reason: `STACK=jvm; using ${JVM}` };
  const answer = await probeRuntime();
  if (answer.ok) return { kind: 'containers', reason: `${forced ? 'STACK=containers, and a' : 'a'} container runtime answered (${answer.runtime}); using ${CONTAINERS}` };
  if (forced) {
    throw new ConfigError(`STACK=containers, but ${answer.problem}. Install and start a container runtime (Docker Engine, Docker Desktop, `
      + 'Podman or Colima with a Docker-compatible socket, or set DOCKER_HOST to one), or unset STACK to use the local JVM stack (Java 21 and Maven).');
  }
  return { kind: 'jvm', reason: `${answer.problem}; using ${JVM}` };
}
