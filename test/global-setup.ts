/**
 * Gives every test file a real Kafka broker and schema registry. With KAFKA_BROKERS and SCHEMA_REGISTRY_URL set, those
 * are used; otherwise a private stack starts on free ports in a temporary directory and is stopped afterwards, so two
 * runs (or a running `npm start`) never collide.
 */
import type { TestProject } from 'vitest/node';
import { externalEndpoints, type Endpoints } from '../stack/index.ts';
import { startPrivateStack } from '../stack/private.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    registryUrl: string;
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
    return async () => undefined;
  }
  const stack = await startPrivateStack('test-stack', (line) => process.stderr.write(`test stack › ${line}\n`));
  provide(stack.endpoints);
  return () => stack.remove();
}
