/**
 * The stack choice (stack/choose.ts) with the container runtime probe injected: present, absent, forced either way, an
 * external cluster; and the suite's own stack, which global setup chose with the real probe (testcontainers).
 */
import { describe, expect, inject, it, vi } from 'vitest';
import { ConfigError } from '../../services/common/config.ts';
import { chooseStack, type RuntimeAnswer } from '../../stack/choose.ts';
import { probeContainerRuntime } from '../../stack/containers.ts';

const answers = vi.fn<() => Promise<RuntimeAnswer>>();
const present = () => answers.mockResolvedValue({ ok: true, runtime: 'Docker Desktop, engine 28.2.2' });
const absent = () => answers.mockResolvedValue({ ok: false, problem: 'no container runtime answered at /var/run/docker.sock' });
const choose = (env: NodeJS.ProcessEnv, external?: false) => chooseStack({ env, probeRuntime: answers, ...(external === false ? { external } : {}) });
const cluster = { KAFKA_BROKERS: '127.0.0.1:19092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081/apis/ccompat/v7' };

describe('chooseStack', () => {
  it('uses containers when a runtime answers, saying which', async () => {
    present();
    expect(await choose({})).toEqual({ kind: 'containers', reason: 'a container runtime answered (Docker Desktop, engine 28.2.2); using Kafka and Apicurio Registry containers' });
  });

  it('falls back to the JVM stack when none answers, saying where it looked', async () => {
    absent();
    expect(await choose({})).toEqual({ kind: 'jvm', reason: 'no container runtime answered at /var/run/docker.sock; using the local JVM stack' });
  });

  it('STACK=jvm uses the JVM stack without asking for a runtime', async () => {
    answers.mockReset();
    present();
    expect(await choose({ STACK: 'jvm' })).toEqual({ kind: 'jvm', reason: 'STACK=jvm; using the local JVM stack' });
    expect(answers).not.toHaveBeenCalled();
  });

  it('STACK=containers uses a runtime that answers, and fails saying what to install when none does', async () => {
    present();
    expect((await choose({ STACK: 'containers' })).kind).toBe('containers');
    absent();
    const failure = await choose({ STACK: 'containers' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as Error).message).toBe('STACK=containers, but no container runtime answered at /var/run/docker.sock. Install and start a container '
      + 'runtime (Docker Engine, Docker Desktop, Podman or Colima with a Docker-compatible socket, or set DOCKER_HOST to one), or unset STACK to use '
      + 'the local JVM stack (Java 21 and Maven).');
  });

  it('a bad STACK is a configuration error naming the variable', async () => {
    await expect(choose({ STACK: 'docker' })).rejects.toThrow(/STACK: .*"jvm"\|"containers"/);
  });

  it('the cluster KAFKA_BROKERS + SCHEMA_REGISTRY_URL name comes first, without asking for a runtime', async () => {
    answers.mockReset();
    present();
    expect(await choose(cluster)).toEqual({
      kind: 'external',
      reason: 'KAFKA_BROKERS and SCHEMA_REGISTRY_URL are set; using 127.0.0.1:19092 and http://127.0.0.1:18081/apis/ccompat/v7',
    });
    expect(answers).not.toHaveBeenCalled();
    // Half of it is no cluster.
    expect((await choose({ KAFKA_BROKERS: cluster.KAFKA_BROKERS })).kind).toBe('containers');
  });

  it('STACK together with a cluster to use is a contradiction, named', async () => {
    await expect(choose({ ...cluster, STACK: 'containers' })).rejects.toThrow('STACK=containers asks for a local stack, but KAFKA_BROKERS and SCHEMA_REGISTRY_URL name a cluster');
  });

  it('a caller that needs a stack of its own (the chaos run) never gets the external cluster', async () => {
    absent();
    expect(await choose(cluster, false)).toEqual({ kind: 'jvm', reason: 'no container runtime answered at /var/run/docker.sock; using the local JVM stack' });
  });
});

describe("the suite's stack", () => {
  const stack = inject('stack');
  it.skipIf(stack.kind === 'external' || process.env.STACK)('is the one the real runtime probe implies, and the reason printed says why', async () => {
    const answer = await probeContainerRuntime();
    if (answer.ok) {
      expect(stack).toEqual({ kind: 'containers', reason: `a container runtime answered (${answer.runtime}); using Kafka and Apicurio Registry containers` });
    } else {
      // This project's own machines: no container engine, so the JVM stack, and the message says where nothing answered.
      expect(answer.problem).toMatch(process.env.DOCKER_HOST ? /^no container runtime answered at DOCKER_HOST=/ : /^no container runtime answered at \/var\/run\/docker\.sock/);
      expect(stack).toEqual({ kind: 'jvm', reason: `${answer.problem}; using the local JVM stack` });
    }
  });
});
