/**
 * Gives every test file a real Kafka broker and schema registry. With KAFKA_BROKERS and SCHEMA_REGISTRY_URL set, those
 * are used; otherwise a private stack starts on free ports in a temporary directory and is stopped afterwards, so two
 * runs (or a running `npm start`) never collide.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { externalEndpoints, stackDown, stackUp, type Endpoints } from '../stack/index.ts';
import { privateStackSettings } from './ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    registryUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = externalEndpoints();
  const provide = ({ brokers, registryUrl }: Endpoints) => {
    project.provide('kafkaBrokers', brokers);
    project.provide('registryUrl', registryUrl);
  };
  if (external) {
    provide(external);
    return async () => undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'workflow-webhooks-test-stack-'));
  const settings = await privateStackSettings(dir);
  const log = (line: string) => process.stderr.write(`test stack › ${line}\n`);
  try {
    provide(await stackUp(settings, log));
  } catch (error) {
    await stackDown(settings, log);
    throw error;
  }
  return async () => {
    await stackDown(settings, log);
    await rm(dir, { recursive: true, force: true });
  };
}
