import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = join(import.meta.dirname, '../../services/console/main.ts');

/** The console process's start with only these settings: its exit code and stderr (it must fail before any connection). */
async function start(env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, [main], { env: { PATH: process.env.PATH, LOG_FORMAT: 'json', KAFKA_BROKERS: '127.0.0.1:9', ...env }, timeout: 20_000 });
    return { code: 0, stderr };
  } catch (error) {
    return error as { code: number; stderr: string };
  }
}

describe('the admin token at start', () => {
  it('refuses a token file with a token under 32 characters (an empty one) in one line naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'console-token-'));
    for (const [name, content] of [['empty', ''], ['blank', '  \n'], ['short', 'x'.repeat(31)]]) {
      const file = join(dir, name!);
      await writeFile(file, content!);
      for (const env of [{ CONSOLE_TOKEN_FILE: file }, { STACK_DIR: dir, CONSOLE_TOKEN_FILE: file }]) {
        const result = await start(env);
        expect(result.code, name).toBe(1);
        expect(result.stderr, name).toMatch(new RegExp(`^error: Invalid configuration: CONSOLE_TOKEN_FILE: ${file} holds a token of \\d+ characters; the admin token must have at least 32 \\(.*\\)\\n$`));
      }
    }
    // The file under STACK_DIR (npm start's) too.
    await writeFile(join(dir, 'console-token'), '');
    expect((await start({ STACK_DIR: dir })).stderr).toMatch(/^error: Invalid configuration: CONSOLE_TOKEN_FILE: .*console-token holds a token of 0 characters/);
  });

  it('refuses a CONSOLE_TOKEN under 32 characters in one line naming the variable, never quoting it', async () => {
    const result = await start({ CONSOLE_TOKEN: 'short-but-sixteen+' });
    expect(result).toMatchObject({ code: 1, stderr: 'error: Invalid configuration: CONSOLE_TOKEN: must be at least 32 characters\n' });
  });
});
