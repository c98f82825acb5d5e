/**
 * Gives every test file a real Kafka broker and schema registry. With KAFKA_BROKERS and SCHEMA_REGISTRY_URL set, those
 * are used, reached with the environment's TLS / SASL / registry-auth settings; otherwise a private stack starts on
 * free ports in a temporary directory and is stopped afterwards, so two runs (or a running `npm start`) never collide.
 * The private stack also opens its secured listeners (SASL_SSL and mutual TLS) for test/secured/.
 */
import type { TestProject } from 'vitest/node';
import { connectionSettings, loadConfig, type ConnectionConfig } from '../services/common/config.ts';
import { externalEndpoints, securedListeners, type Endpoints, type SecuredListeners } from '../stack/index.ts';
import { startPrivateStack } from '../stack/private.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    registryUrl: string;
    /** TLS, SASL and registry-auth settings of the cluster (none for the private stack's plaintext listener). */
    connection: Partial<ConnectionConfig>;
    /** The private stack's secured listeners; absent when the suite runs against an external cluster. */
    securedListeners: SecuredListeners | undefined;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const provide = ({ brokers, registryUrl }: Endpoints) => {
    project.provide('kafkaBrokers', brokers);
    project.provide('registryUrl', registryUrl);
  };
  const external = externalEndpoints();
  if (external) {
    provide(external);
    project.provide('connection', loadConfig(connectionSettings));
    project.provide('securedListeners', undefined);
    return async () => undefined;
  }
  const stack = await startPrivateStack('test-stack', (line) => process.stderr.write(`test stack › ${line}\n`), { secured: true });
  provide(stack.endpoints);
  project.provide('connection', {});
  project.provide('securedListeners', await securedListeners(stack.settings));
  return () => stack.remove();
}
