import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Supervisor } from '../../local/supervisor.ts';

describe('supervisor', () => {
  it('restarts a child that crashes, with backoff, and stops the one that runs', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'supervisor-'));
    const crasher = join(dir, 'crasher.mjs');
    const runner = join(dir, 'runner.mjs');
    const starts = join(dir, 'starts.log');
    await writeFile(crasher, `import { appendFileSync } from 'node:fs'; appendFileSync(${JSON.stringify(starts)}, 'start\\n'); process.exit(3);\n`);
    await writeFile(runner, `process.on('SIGTERM', () => { console.log('clean exit'); process.exit(0); }); setInterval(() => {}, 1000); console.log('running');\n`);
    const said: string[] = [];
    const relayed: string[] = [];
    const supervisor = new Supervisor((line) => said.push(line), (name, line) => relayed.push(`${name}: ${line}`));
    supervisor.start({ name: 'crasher', script: crasher });
    supervisor.start({ name: 'runner', script: runner });
    // Restarts after 1 s, then 2 s: three starts within ~3.5 s.
    const deadline = Date.now() + 10_000;
    while ((await readFile(starts, 'utf8').catch(() => '')).split('\n').filter(Boolean).length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await readFile(starts, 'utf8')).split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(3);
    expect(said).toEqual(expect.arrayContaining(['crasher exited (code 3); restarting in 1 s', 'crasher exited (code 3); restarting in 2 s']));
    await supervisor.stop(5000);
    expect(said.some((line) => line.startsWith('runner exited'))).toBe(false);
    // Each child's stdout lines reach the relay under the child's name.
    expect(relayed).toEqual(['runner: running', 'runner: clean exit']);
  });
});
