import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Supervisor } from '../../local/supervisor.ts';
import { CONSOLE_NODE_FLAGS } from '../../services/console/node-flags.ts';

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

  it("runs a child's Node with the flags its spec gives (the console's V8 heap flags)", { timeout: 15_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'supervisor-'));
    const reporter = join(dir, 'reporter.mjs');
    await writeFile(reporter, `console.log(JSON.stringify({ execArgv: process.execArgv, args: process.argv.slice(2) })); setInterval(() => {}, 1000);\n`);
    const relayed: string[] = [];
    const supervisor = new Supervisor(() => undefined, (_, line) => relayed.push(line));
    supervisor.start({ name: 'reporter', script: reporter, nodeArgs: CONSOLE_NODE_FLAGS, args: ['--its-own'] });
    const deadline = Date.now() + 10_000;
    while (relayed.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await supervisor.stop(5000);
    expect(JSON.parse(relayed[0]!)).toEqual({ execArgv: ['--max-semi-space-size=8', '--heap-growing-percent=20'], args: ['--its-own'] });
  });
});
