import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRule, headerProblem, loggableUrl, redactRule, redactUrlsIn } from '../../services/common/rules.ts';
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

  it('a header named twice in different case (X-A and x-a) is refused, naming the second', () => {
    const checked = checkRule({ ...rule('r', 'app', { headers: { 'X-A': '1', 'x-b': '2', 'x-a': '3' } }), updatedAt: Date.now() });
    expect(checked).toEqual({ ok: false, issues: [{ field: 'headers.x-a', reason: 'names the same header as X-A (header names ignore case); keep one' }] });
    expect(checkRule({ ...rule('r', 'app', { headers: { 'X-A': '1', 'x-b': '2' } }), updatedAt: Date.now() }).ok).toBe(true);
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

  it('credentials in a URL: issues never quote it, a redacted copy keeps neither user:pass@ nor the query nor the fragment', () => {
    const leaks = ['hunter2', 's3cr3t', 'fr4g'];
    const valid = checkRule({ ...rule('r', 'app'), updatedAt: Date.now() });
    if (!valid.ok) throw new Error('fixture');
    const redactedUrl = (url: string) => redactRule({ ...valid.rule, url }).url;
    const urls = [
      'htps//ops:hunter2@hooks.example.com/in?token=s3cr3t', // no scheme: does not parse
      'ftp://ops:hunter2@hooks.example.com/in?token=s3cr3t#fr4g',
      'https://ops:hunter2@hooks.example.com/in?token=s3cr3t',
      'https://hooks.example.com/in?token=s3cr3t#fr4g',
      'https://hooks example.com/in?token=s3cr3t', // a space in the host: does not parse
    ];
    for (const url of urls) {
      const checked = checkRule({ ...rule('r', 'app', { url }), updatedAt: Date.now() });
      expect(checked.ok, url).toBe(false);
      const issues = JSON.stringify(!checked.ok && checked.issues);
      expect(issues, url).toMatch(/"field":"url"/);
      const redacted = redactedUrl(url);
      for (const leak of leaks) {
        expect(issues, url).not.toContain(leak);
        expect(redacted, url).not.toContain(leak);
      }
    }
    // A value of the wrong type is not quoted either.
    expect(JSON.stringify(checkRule({ ...rule('r', 'app'), url: ['https://h.example/?token=s3cr3t'], updatedAt: Date.now() }))).not.toContain('s3cr3t');
    expect(redactedUrl('https://ops:hunter2@hooks.example.com/in?token=s3cr3t#fr4g')).toBe('https://redacted:redacted@hooks.example.com/in?redacted#redacted');
    expect(redactedUrl('htps//ops:hunter2@hooks.example.com/in')).toBe('[redacted]');
    expect(loggableUrl('not a url?token=s3cr3t')).toBe('[redacted]');
    // Error texts written before issues stopped quoting URLs, as dead-letter topics still hold them.
    const old = 'url: must be an absolute http(s) URL (got "htps//ops:hunter2@hooks.example.com/in?token=s3cr3t"); eventTypes: must list at least one event type, or be null for all';
    expect(redactUrlsIn(old)).toBe('url: must be an absolute http(s) URL (got "[redacted]"); eventTypes: must list at least one event type, or be null for all');
    expect(redactUrlsIn('gave up after 3 attempts; last: HTTP 503')).toBe('gave up after 3 attempts; last: HTTP 503');
  });
});
