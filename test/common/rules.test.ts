import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRule, headerProblem } from '../../services/common/rules.ts';
import { newSecret, rule } from '../fixtures/rules.ts';

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((_, response) => response.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

/** Whether undici refuses to send a request with this header (it throws before a byte is written). */
async function undiciRefuses(name: string, value: string): Promise<boolean> {
  try {
    const response = await request(url, { method: 'POST', headers: { [name]: value }, body: '{}' });
    await response.body.dump();
    return false;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') return true;
    throw error;
  }
}

const refusedHeader = (name: string, value: string) => {
  const checked = checkRule({ ...rule('r', 'app', { headers: { [name]: value } }), updatedAt: Date.now() });
  return !checked.ok && checked.issues.some((issue) => issue.field === `headers.${name}`);
};

describe('rule validation', () => {
  it('headers undici refuses: checkRule refuses exactly the headers undici refuses to send', async () => {
    const cases: Array<[string, string]> = [
      // Accepted by undici: tab, padding, empty values, Latin-1 (obs-text), long token names.
      ['x-api-key', 'abc'], ['X-Custom', 'tab\there'], ['x-padded', ' padded '], ['x-empty', ''], ['x-latin', 'caf\u00e9 \u00ff'],
      ['x-a-rather-long-header-name', 'v'], ['x-token!#$%&\'*+.^_`|~', 'v'],
      // Refused by undici: control characters, DEL, anything above U+00FF, names that are not tokens, and the
      // names it handles itself.
      ['x-lf', 'a\nb'], ['x-cr', 'a\rb'], ['x-nul', 'a\0b'], ['x-bell', 'a\u0007b'], ['x-del', 'a\u007fb'], ['x-vt', '\u000b'],
      ['x-euro', '5 \u20ac'], ['x-emoji', '\u{1F600}'], ['x-cyrillic', '\u0416'],
      ['bad name', 'v'], ['x:colon', 'v'], ['x-\u00fc', 'v'], ['x-long-name-with-\u00e9', 'v'], ['(x)', 'v'],
      ['expect', '100-continue'], ['Upgrade', 'websocket'], ['keep-alive', 'timeout=5'], ['transfer-encoding', 'chunked'],
      ['connection', 'keep alive'], ['content-length', 'ten'],
    ];
    const verdicts = await Promise.all(cases.map(async ([name, value]) => ({ name, value, undici: await undiciRefuses(name, value), rule: refusedHeader(name, value) })));
    expect(verdicts.filter((verdict) => verdict.undici !== verdict.rule)).toEqual([]);
    expect(verdicts.filter((verdict) => verdict.undici).length).toBeGreaterThan(15);
    expect(headerProblem('x-api-key', 'abc')).toBeUndefined();
    expect(headerProblem('x-euro', '\u20ac')).toMatch(/value/);
  });

  it('headers undici refuses: hop-by-hop and dispatcher-owned headers are refused even where undici would send them', () => {
    for (const [name, value] of [['te', 'trailers'], ['trailer', 'x-sum'], ['proxy-connection', 'close'], ['connection', 'close'], ['host', 'example.com'], ['webhook-signature', 'v1,x']] as const) {
      expect(refusedHeader(name, value), name).toBe(true);
      expect(headerProblem(name, value), name).toBeDefined();
    }
  });

  it('unsigned requests: validation requires one signing secret without a past notAfter, judged at the rule\'s updatedAt', () => {
    const at = 1_700_000_000_000;
    const check = (secrets: Array<{ secret: string; notAfter: number | null }>, updatedAt = at) => checkRule({ ...rule('r', 'app', { secrets }), updatedAt });
    const expired = check([{ secret: newSecret(), notAfter: at - 1 }]);
    expect(expired.ok).toBe(false);
    expect(!expired.ok && expired.issues).toEqual([{ field: 'secrets', reason: expect.stringContaining('every signing secret has expired') }]);
    expect(check([{ secret: newSecret(), notAfter: at }]).ok).toBe(false);
    // A rotation keeps the rule valid; so does a secret that only expires later.
    expect(check([{ secret: newSecret(), notAfter: at - 1 }, { secret: newSecret(), notAfter: null }]).ok).toBe(true);
    expect(check([{ secret: newSecret(), notAfter: at + 1 }]).ok).toBe(true);
    // Judged at updatedAt, not now: re-reading the topic years later does not refuse a rule that was valid when written.
    expect(check([{ secret: newSecret(), notAfter: at + 1 }], at).ok).toBe(true);
  });

  it('secrets at rest: validation issues never echo a secret given in the wrong shape', () => {
    const secret = newSecret();
    const checked = checkRule({ ...rule('r', 'app'), secrets: [secret, { secret: 42 }], headers: { authorization: 42 }, updatedAt: Date.now() });
    expect(checked.ok).toBe(false);
    const text = JSON.stringify(!checked.ok && checked.issues);
    expect(text).toContain('secrets.0');
    expect(text).not.toContain(secret.slice('whsec_'.length, 20));
    expect(text).not.toContain('42');
  });
});
