/**
 * Gives every test file a real Kafka broker and schema registry: with KAFKA_BROKERS and SCHEMA_REGISTRY_URL set, those,
 * reached with the environment's TLS / SASL / registry-auth settings; otherwise a private stack on free ports, stopped
 * afterwards, so two runs (or a running `npm start`) never collide — Kafka and Apicurio Registry containers where a
 * container runtime answers, else the local JVM stack (stack/choose.ts; STACK=jvm|containers forces one). The private
 * stack also opens its secured listeners (SASL_SSL and mutual TLS) for test/secured/.
 */
import type { TestProject } from 'vitest/node';
import { connectionSettings, loadConfig, type ConnectionConfig } from '../services/common/config.ts';
import { chooseStack, type StackChoice } from '../stack/choose.ts';
import { probeContainerRuntime } from '../stack/containers.ts';
import { externalEndpoints, type Endpoints, type SecuredListeners } from '../stack/index.ts';
import { startPrivateStack } from '../stack/private.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    registryUrl: string;
    /** TLS, SASL and registry-auth settings of the cluster (none for the private stack's plaintext listener). */
    connection: Partial<ConnectionConfig>;
    /** The private stack's secured listeners; absent when the suite runs against an external cluster. */
    securedListeners: SecuredListeners | undefined;
    /** Which stack the suite runs on, and why (stack/choose.ts). */
    stack: StackChoice;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const progress = (line: string) => process.stderr.write(`test stack › ${line}\n`);
  const provide = ({ brokers, registryUrl }: Endpoints) => {
    project.provide('kafkaBrokers', brokers);
    project.provide('registryUrl', registryUrl);
  };
  const choice = await chooseStack({ probeRuntime: probeContainerRuntime });
  progress(choice.reason);
  project.provide('stack', choice);
  if (choice.kind === 'external') {
    provide(externalEndpoints()!);
    project.provide('connection', loadConfig(connectionSettings));
    project.provide('securedListeners', undefined);
    return async () => undefined;
  }
  const stack = await startPrivateStack('test-stack', choice.kind, progress, { secured: true });
  provide(stack.endpoints);
  project.provide('connection', {});
  project.provide('securedListeners', stack.secured);
  return () => stack.remove();
}
