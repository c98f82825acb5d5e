import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startWebServer, type ServedConsole, type WebServer } from '../../services/console/web-server.ts';
import { testLogger } from '../helpers.ts';

const run = promisify(execFile);
const main = join(import.meta.dirname, '../../services/console/main.ts');
const TOKEN = 'auth-test-admin-token-0123456789abcdef';

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

describe('guessing the admin token', () => {
  let server: WebServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  /** The web server alone: the token paths never reach the console behind it. */
  const listen = async () => {
    server = await startWebServer({} as ServedConsole, { httpHost: '127.0.0.1', httpPort: 0, adminToken: TOKEN }, testLogger);
    const url = `http://127.0.0.1:${server.port}`;
    return {
      login: (token: string) => fetch(`${url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) }),
      bearer: (token: string) => fetch(`${url}/api/session`, { headers: { authorization: `Bearer ${token}` } }),
    };
  };
  const timed = async (request: Promise<Response>) => {
    const started = performance.now();
    const response = await request;
    await response.arrayBuffer();
    return { status: response.status, ms: performance.now() - started, retryAfter: response.headers.get('retry-after') };
  };

  it('slows every wrong token, but never locks the right one out: a guesser on the same address does not stop the admin', async () => {
    const { login, bearer } = await listen();
    // Four guessers, on 127.0.0.1 like the admin, on both paths.
    let guessing = true;
    const wrong: Array<{ status: number; ms: number }> = [];
    const guesser = async (index: number) => {
      while (guessing) wrong.push(await timed(index % 2 ? login(`guess-${index}`) : bearer(`guess-${index}`)));
    };
    const guessers = [0, 1, 2, 3].map(guesser);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (let index = 0; index < 3; index += 1) {
      const admin = await timed(login(TOKEN));
      expect(admin.status).toBe(201);
      // Not behind the wrong ones, which wait 0.5 s and more by now (the bound is loose for a loaded machine).
      expect(admin.ms).toBeLessThan(1000);
      expect((await timed(bearer(TOKEN))).status).toBe(200);
    }
    guessing = false;
    await Promise.all(guessers);
    expect(wrong.length).toBeGreaterThanOrEqual(8);
    expect(new Set(wrong.map(({ status }) => status))).toEqual(new Set([401]));
    expect(Math.min(...wrong.map(({ ms }) => ms))).toBeGreaterThanOrEqual(450);
  });

  it('bounds the tokens checked by a flood of bearer guesses, whatever the number of connections', async () => {
    const { bearer } = await listen();
    const flood = await Promise.all(Array.from({ length: 80 }, (_, index) => timed(bearer(`flood-${index}`))));
    const heard = flood.filter(({ status }) => status === 401);
    const refused = flood.filter(({ status }) => status === 429);
    expect(heard.length + refused.length).toBe(80);
    // 32 wrong answers wait at most; the 10 of the burst go after the delay, the rest one per 500 ms.
    expect(heard.length).toBeLessThanOrEqual(32);
    expect(refused.length).toBeGreaterThanOrEqual(48);
    expect(refused.every(({ retryAfter }) => Number(retryAfter) >= 1)).toBe(true);
    expect(Math.max(...heard.map(({ ms }) => ms))).toBeGreaterThan(5000);
  }, 30_000);

  it('hears the right token as soon as the flood leaves room, while its guesses still wait', async () => {
    const { login, bearer } = await listen();
    const flood = Promise.all(Array.from({ length: 40 }, (_, index) => timed(bearer(`flood-${index}`))));
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect((await timed(login(TOKEN))).status).toBe(201);
    expect((await timed(bearer(TOKEN))).status).toBe(200);
    const answered = await flood;
    expect(answered.filter(({ status }) => status === 401).length).toBeGreaterThan(0);
  }, 30_000);
});
