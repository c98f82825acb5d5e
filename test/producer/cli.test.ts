import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { harnessEvent, shareringEvent } from '../fixtures/seed-events.ts';
import { clusterEnv, decodeAll, readTopic, testCluster, testLogger } from '../helpers.ts';

const run = promisify(execFile);
const cluster = testCluster('producer-cli');
const cli = join(import.meta.dirname, '../../services/producer/cli.ts');

beforeAll(() => prepareCluster(cluster, testLogger));

describe('npm run publish-events', () => {
  it('publishes the valid lines and reports each rejected line with its reason', async () => {
    const good = [harnessEvent('workflow_started'), shareringEvent('task_completed'), harnessEvent('pipeline_paused')];
    const lines = [
      JSON.stringify(good[0]),
      '{"eventId": "broken",',
      JSON.stringify({ ...shareringEvent('task_started'), task: { id: 't1' } }),
      '',
      JSON.stringify(good[1]),
      JSON.stringify({ ...harnessEvent('workflow_started'), type: 'deploy_done' }),
      JSON.stringify(good[2]),
    ];
    const file = join(await mkdtemp(join(tmpdir(), 'events-')), 'events.jsonl');
    await writeFile(file, `${lines.join('\n')}\n`);

    const result = await run(process.execPath, [cli, '--file', file], { env: clusterEnv(cluster) }).catch((error: { code: number; stdout: string }) => error);
    expect(result).toMatchObject({ code: 1 });
    const output = result.stdout.trim().split('\n');
    expect(output).toEqual([
      expect.stringMatching(/^line 2: rejected: not valid JSON \(/),
      'line 3: rejected: task.runId: is required',
      expect.stringMatching(/^line 6: rejected: type: must be one of .* \(got "deploy_done"\)$/),
      'published 3, rejected 3',
    ]);

    const decoded = await decodeAll(cluster, contracts.workflowEvent, await readTopic(cluster, topicNames(cluster.TOPIC_PREFIX).workflowEvents, 3));
    expect(decoded.map((event) => event.eventId).sort()).toEqual(good.map((event) => event.eventId).sort());
  });

  it('poison record: publish-events refuses a timestamp outside the JavaScript date range, naming the field', async () => {
    const good = harnessEvent('workflow_started');
    const lines = [JSON.stringify({ ...harnessEvent('workflow_started'), occurredAt: 9e15 }), JSON.stringify({ ...harnessEvent('workflow_completed'), completedAt: -9e15 }), JSON.stringify(good)];
    const file = join(await mkdtemp(join(tmpdir(), 'events-')), 'events.jsonl');
    await writeFile(file, `${lines.join('\n')}\n`);
    const prefixed = { ...cluster, TOPIC_PREFIX: `${cluster.TOPIC_PREFIX}dates.` };
    await prepareCluster(prefixed, testLogger);

    const result = await run(process.execPath, [cli, '--file', file], { env: clusterEnv(prefixed) }).catch((error: { code: number; stdout: string }) => error);
    expect(result).toMatchObject({ code: 1 });
    expect(result.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^line 1: rejected: occurredAt: must be a time within the JavaScript date range .*\(got 9000000000000000\)$/),
      expect.stringMatching(/^line 2: rejected: completedAt: must be a time within the JavaScript date range .*\(got -9000000000000000\)$/),
      'published 1, rejected 2',
    ]);
    const [published] = await decodeAll(prefixed, contracts.workflowEvent, await readTopic(prefixed, topicNames(prefixed.TOPIC_PREFIX).workflowEvents, 1));
    expect(published!.eventId).toBe(good.eventId);
  });
});
