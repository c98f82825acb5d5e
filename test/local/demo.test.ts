import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../stack/ports.ts';
import { clusterEnv, testCluster } from '../helpers.ts';

const start = join(import.meta.dirname, '../../local/start.ts');

describe('npm start -- --demo', () => {
  it('delivers signed sample events to its local receiver, which verifies them, and stops cleanly on Ctrl-C', { timeout: 120_000 }, async () => {
    const cluster = testCluster('demo');
    const [matcher, dispatcher, demoDispatcher, receiver] = await freePorts(4);
    const child = spawn(process.execPath, [start, '--demo'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: clusterEnv(cluster, {
        MATCHER_HTTP_PORT: String(matcher),
        DISPATCHER_HTTP_PORT: String(dispatcher),
        DEMO_DISPATCHER_HTTP_PORT: String(demoDispatcher),
        DEMO_RECEIVER_PORT: String(receiver),
        DEMO_EVENT_INTERVAL: '300ms',
        // What a newcomer's terminal shows (the default there); piped output would be JSON.
        LOG_FORMAT: 'pretty',
        NO_COLOR: '1',
      }),
    });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const verified = () => output.match(/receiver: ✓ signature verified {2}(\S+)/g) ?? [];
    const deadline = Date.now() + 90_000;
    while (verified().length < 5 && Date.now() < deadline && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(verified().length, output.slice(-3000)).toBeGreaterThanOrEqual(5);
    expect(output).not.toContain('signature check failed');
    expect(output).toContain(`demo: rule "demo" → http://127.0.0.1:${receiver}/webhooks (pool "demo")`);
    // The first sample event (workflow_started) finds its pool too: nothing is logged as failed for want of one.
    expect(verified()[0]).toContain('workflow.started');
    // One readable line per record, from start-up and from each service the supervisor runs: no JSON, no stack traces.
    const lines = stdout.split('\n').filter(Boolean);
    const pretty = /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|FATAL): +(\S+) +\S/;
    expect(lines.filter((line) => !pretty.test(line)), stdout.slice(-3000)).toEqual([]);
    const sources = new Set(lines.map((line) => pretty.exec(line)![2]!.split('/')[0]));
    expect([...sources]).toEqual(expect.arrayContaining(['start', 'matcher', 'dispatcher', 'dispatcher-demo', 'console']));
    expect(stdout).toMatch(/INFO: +matcher +started \(\/healthz, \/readyz, \/metrics\) ops=http:\/\/127\.0\.0\.1:\d+/);

    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
  });
});
