import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { stackDown, stackStatus, stackUp } from '../../stack/index.ts';
import { privateStackSettings } from '../../stack/private.ts';

// A second, private stack: proves start, idempotent start and clean stop without touching the suite's own.
const dir = await mkdtemp(join(tmpdir(), 'stack-lifecycle-'));
const settings = await privateStackSettings(dir);
const lines: string[] = [];
const progress = (line: string) => lines.push(line);

afterAll(async () => {
  await stackDown(settings, progress);
  await rm(dir, { recursive: true, force: true });
});

/** A process that exited but that its parent (this test process started it) has not reaped yet is a zombie: gone. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

// The JVM stack's own lifecycle needs Java and Maven, which a machine on the container path need not have.
const onContainers = inject('stack').kind === 'containers';
if (onContainers) console.warn('test/stack/lifecycle.test.ts skipped: it tests the local JVM stack, and this run uses containers (STACK=jvm runs it)');

describe.skipIf(onContainers)('the local JVM stack', () => {
  it('starts, is a no-op when started again, and stops only its own processes', { timeout: 180_000 }, async () => {
    const first = await stackUp(settings, progress);
    expect(first).toEqual({ brokers: [`127.0.0.1:${settings.kafkaPort}`], registryUrl: `http://127.0.0.1:${settings.registryPort}/apis/ccompat/v7`, started: ['kafka', 'registry'] });
    expect(lines).toContain('formatting KRaft storage');

    const status = await stackStatus(settings);
    expect(status.kafka).toMatchObject({ ready: true, pid: expect.any(Number) });
    expect(status.registry).toMatchObject({ ready: true, pid: expect.any(Number) });

    const second = await stackUp(settings, progress);
    expect(second.started).toEqual([]);
    expect(lines.at(-1)).toMatch(/already running .*nothing to do/);
    expect(await stackStatus(settings)).toEqual(status);

    await stackDown(settings, progress);
    expect(alive(status.kafka.pid!)).toBe(false);
    expect(alive(status.registry.pid!)).toBe(false);
    expect(await stackStatus(settings)).toMatchObject({ kafka: { ready: false, pid: undefined }, registry: { ready: false, pid: undefined } });
  });
});
