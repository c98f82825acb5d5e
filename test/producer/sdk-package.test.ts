/**
 * The producer SDK as an engine installs it: the workspace package built from the sources (JavaScript, declarations,
 * exports map), type-checked from plain JavaScript, and run on the system's Node 20 (no type stripping) by the example
 * project in examples/workflow-engine, against the test cluster.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { clusterEnv, decodeAll, readTopic, testCluster, testLogger } from '../helpers.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const sdk = join(root, 'packages/producer-sdk');
const example = join(root, 'examples/workflow-engine');
const cluster = testCluster('sdk-package');

/** The `node` an engine's own project gets: the first on PATH that is not this repository's pinned Node 26. */
async function systemNode(): Promise<{ path: string; version: string }> {
  const PATH = (process.env.PATH ?? '').split(':').filter((dir) => !dir.includes('node_modules')).join(':');
  const { stdout } = await run('sh', ['-c', 'command -v node'], { env: { PATH } });
  const path = stdout.trim();
  return { path, version: (await run(path, ['--version'])).stdout.trim() };
}

beforeAll(async () => {
  // Built now, from the sources under test: a stale dist/ must not pass for the current SDK.
  await run(process.execPath, [join(sdk, 'build.js')]);
  await prepareCluster(cluster, testLogger);
}, 120_000);

describe('@workflow-webhooks/producer (packages/producer-sdk)', () => {
  it('is compiled JavaScript with declarations behind its exports map, carrying the WorkflowEvent contract', async () => {
    const manifest = JSON.parse(await readFile(join(sdk, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { types: string; default: string } | string> };
    expect(manifest.name).toBe('@workflow-webhooks/producer');
    const main = manifest.exports['.'] as { types: string; default: string };
    expect(main.default).toMatch(/\.js$/);
    expect(main.types).toMatch(/\.d\.ts$/);
    for (const file of [main.default, main.types]) await expect(readFile(join(sdk, file), 'utf8')).resolves.toBeTruthy();
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `
      const sdk = await import('@workflow-webhooks/producer');
      console.log(JSON.stringify({ resolved: import.meta.resolve('@workflow-webhooks/producer'), avsc: import.meta.resolve('@workflow-webhooks/producer/workflow-event.avsc'), schema: sdk.workflowEventSchema, exports: Object.keys(sdk).sort() }));
    `], { cwd: example });
    const loaded = JSON.parse(stdout) as { resolved: string; avsc: string; schema: object; exports: string[] };
    expect(loaded.resolved).toMatch(/packages\/producer-sdk\/dist\/services\/producer\/publisher\.js$/);
    expect(loaded.exports).toEqual(expect.arrayContaining(['createPublisher', 'EventValidationError', 'PublishError', 'checkEvent', 'EVENT_TYPES', 'workflowEventSchema', 'KafkaConnectError', 'RegistryError']));
    // The contract travels with the package: the registered schema, and the .avsc file for other tools.
    expect(loaded.schema).toEqual(contracts.workflowEvent.schema);
    expect(await readFile(new URL(loaded.avsc), 'utf8')).toBe(await readFile(join(root, 'schemas/workflow-event.avsc'), 'utf8'));
  });

  it('declares every package its build imports (an engine installs only what the manifest names)', async () => {
    const manifest = JSON.parse(await readFile(join(sdk, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const files = (await readdir(join(sdk, 'dist'), { recursive: true })).filter((file) => file.endsWith('.js'));
    const imported = new Set<string>();
    for (const file of files) {
      const source = await readFile(join(sdk, 'dist', file), 'utf8');
      for (const [, specifier] of source.matchAll(/(?:from|import)\s*\(?\s*'([^'./][^']*)'/g)) {
        if (specifier!.startsWith('node:')) continue;
        const parts = specifier!.split('/');
        imported.add(specifier!.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(0);
    expect([...imported].filter((name) => !(name in manifest.dependencies))).toEqual([]);
  });

  it('packs into a tarball of its build and manifest only (what docs/producing-events.md hands to an engine)', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--workspace', '@workflow-webhooks/producer'], { cwd: root });
    const [packed] = JSON.parse(stdout) as Array<{ name: string; files: Array<{ path: string }> }>;
    const files = packed!.files.map((file) => file.path);
    expect(packed!.name).toBe('@workflow-webhooks/producer');
    expect(files).toEqual(expect.arrayContaining(['package.json', 'dist/services/producer/publisher.js', 'dist/services/producer/publisher.d.ts', 'dist/schemas/workflow-event.avsc']));
    expect(files.filter((file) => !file.startsWith('dist/') && file !== 'package.json' && file !== 'README.md')).toEqual([]);
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });

  it('type-checks the example (plain JavaScript) against its declarations', async () => {
    await expect(run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(example, 'tsconfig.json')])).resolves.toMatchObject({ stdout: '' });
  });

  // The example reads the plain settings only; a secured external cluster needs its TLS / SASL options in code.
  it.skipIf(Object.keys(inject('connection')).length > 0)('publishes from the example project on the system Node without type stripping, readable by the pipeline', async () => {
    const node = await systemNode();
    expect(node.path).not.toContain('node_modules');
    const { stdout, stderr } = await run(node.path, ['publish.js'], { cwd: example, env: clusterEnv(cluster) });
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    expect(lines, `${node.path} ${node.version}`).toEqual([
      expect.stringMatching(/^published workflow_started \S+ to t-sdk-package-\w+\.workflow-events \(schema id \d+\)$/),
      expect.stringMatching(/^published task_completed \S+ to t-sdk-package-\w+\.workflow-events \(schema id \d+\)$/),
      expect.stringMatching(/^published 2 event\(s\) of run \S+$/),
    ]);
    const decoded = await decodeAll(cluster, contracts.workflowEvent, await readTopic(cluster, topicNames(cluster.TOPIC_PREFIX).workflowEvents, 2));
    expect(decoded.map((event) => event.type).sort()).toEqual(['task_completed', 'workflow_started']);
    expect(decoded[0]!.workflowExecutionId).toBe(decoded[1]!.workflowExecutionId);
  });
});
