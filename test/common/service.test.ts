import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

describe('runService', () => {
  it('fatal path exit timer: a service whose stop() never resolves after a fatal error still exits, non-zero', { timeout: 30_000 }, async () => {
    // The stop keeps a timer alive, as a hung socket would: without a bound the process never exits.
    const script = `
      import { runService } from ${JSON.stringify(join(root, 'services/common/service.ts'))};
      import { createLogger } from ${JSON.stringify(join(root, 'services/common/logger.ts'))};
      await runService(createLogger('hanging', 'info'), (fatal) => ({
        opsPort: 0,
        start: async () => { setTimeout(() => fatal(new Error('the consumer crashed for good')), 50); },
        stop: () => new Promise(() => setInterval(() => undefined, 1000)),
      }), { stopTimeoutMs: 500 });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const began = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 10_000);
      child.on('exit', (exitCode) => { clearTimeout(timer); resolve(exitCode); });
    });
    expect(code, output).toBe(1);
    expect(Date.now() - began).toBeLessThan(8_000);
    expect(output).toContain('the consumer crashed for good');
    expect(output).toContain('did not stop within 500 ms');
  });
});
