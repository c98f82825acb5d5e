/** The HTTP sender on its own (no Kafka): what each kind of answer, or its absence, comes back as. */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors } from 'undici';
import { classifyFailure, Sender, type SenderSettings } from '../../services/dispatcher/sender.ts';
import { createAddressGuard } from '../../services/common/ssrf.ts';
import { freePort } from '../../stack/ports.ts';
import { startConnectProxy } from '../fixtures/connect-proxy.ts';

const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => void> = {
  '/ok': (_, response) => response.writeHead(204).end(),
  '/busy': (_, response) => response.writeHead(503, { 'retry-after': '7' }).end(),
  '/moved': (_, response) => response.writeHead(302, { location: '/ok' }).end(),
  '/large': (_, response) => response.writeHead(200).end(Buffer.alloc(1024 * 1024, 'x')),
  '/echo-ish': (_, response) => response.writeHead(200).end(`${'é'.repeat(600)}tail`),
  // Chunks that end exactly at the log limit (1,024 bytes), then one more: the hash must span the limit.
  '/chunked': (request, response) => {
    const total = Number(new URL(request.url!, 'http://x').searchParams.get('bytes'));
    response.writeHead(200);
    for (let sent = 0; sent < total; sent += 256) response.write(Buffer.alloc(Math.min(256, total - sent), sent / 256 + 65));
    response.end();
  },
  '/silent': () => undefined,
  '/trickle': (_, response) => response.writeHead(200).write('{'),
};
const seen: IncomingMessage[] = [];
const server = createServer((request, response) => {
  seen.push(request);
  request.resume().on('end', () => routes[request.url!.split('?')[0]!]!(request, response));
});
let base: string;

const settings = (overrides: Partial<SenderSettings> = {}): SenderSettings => ({
  guard: createAddressGuard({ allow: ['127.0.0.0/8'] }),
  connectTimeoutMs: 1000,
  attemptTimeoutMs: 500,
  connectionsPerOrigin: 4,
  userAgent: 'sender-test',
  logBodyBytes: 1024,
  ...overrides,
});
const sender = new Sender(settings());
const send = (path: string, via = sender) => via.send(new URL(`${base}${path}`), { 'webhook-id': 'msg_1', 'x-team': 'ops' }, '{"a":1}');

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sender.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('sender', () => {
  it('POSTs the body with the given headers, its own user-agent and JSON content type, keeping the query string', async () => {
    await expect(send('/ok?token=t')).resolves.toMatchObject({ kind: 'response', status: 204, retryAfterMs: undefined });
    const request = seen.at(-1)!;
    expect([request.method, request.url]).toEqual(['POST', '/ok?token=t']);
    expect(request.headers).toMatchObject({ 'webhook-id': 'msg_1', 'x-team': 'ops', 'user-agent': 'sender-test', 'content-type': 'application/json' });
  });

  it('reports Retry-After, and does not follow redirects', async () => {
    await expect(send('/busy')).resolves.toMatchObject({ kind: 'response', status: 503, retryAfterMs: 7000 });
    await expect(send('/moved')).resolves.toMatchObject({ kind: 'response', status: 302 });
    expect(seen.filter((request) => request.url === '/ok')).toHaveLength(0);
  });

  it('keeps the status of a response whose body is larger than the cap or never ends', async () => {
    await expect(send('/large')).resolves.toMatchObject({ kind: 'response', status: 200 });
    const trickle = await send('/trickle');
    expect(trickle).toMatchObject({ kind: 'response', status: 200 });
    expect(trickle.latencyMs).toBeGreaterThanOrEqual(450);
  });

  it('keeps the start of a response body up to the log limit, cut on a character boundary, with the whole body\'s size and SHA-256', async () => {
    const whole = Buffer.from(`${'é'.repeat(600)}tail`);
    const result = await send('/echo-ish');
    if (result.kind !== 'response') throw new Error(result.kind);
    // 1024 bytes fall in the middle of the 513th two-byte character: 512 whole ones are kept.
    expect(result.response).toMatchObject({ body: 'é'.repeat(512), bodyTruncated: true, bodyBytes: whole.length, bodySha256: createHash('sha256').update(whole).digest('hex') });
    // Whole bodies within the limit, at it and one chunk past it, sent in chunks.
    for (const bytes of [0, 2, 1024, 1280]) {
      const chunks = Array.from({ length: Math.ceil(bytes / 256) }, (_, index) => Buffer.alloc(Math.min(256, bytes - index * 256), index + 65));
      const chunked = await send(`/chunked?bytes=${bytes}`);
      expect(chunked.kind === 'response' && chunked.response).toMatchObject({ bodyBytes: bytes, bodyTruncated: bytes > 1024, bodySha256: createHash('sha256').update(Buffer.concat(chunks)).digest('hex') });
    }
    const large = await send('/large');
    // Not read to its end (past the drain cap): no hash claims to be the whole body's.
    expect(large.kind === 'response' && large.response).toMatchObject({ bodyTruncated: true, bodySha256: null });
  });

  it('times out an endpoint that never answers at the attempt limit', async () => {
    const result = await send('/silent');
    expect(result).toMatchObject({ kind: 'timeout' });
    expect(result.kind !== 'response' && result.error).toMatch(/timed out .*attempt limit 500 ms/);
    expect(result.latencyMs).toBeGreaterThanOrEqual(450);
    expect(result.latencyMs).toBeLessThan(950);
  });

  it('times out attempts still queued for a connection too', async () => {
    const narrow = new Sender(settings({ connectionsPerOrigin: 1 }));
    try {
      const results = await Promise.all([send('/silent', narrow), send('/silent', narrow), send('/silent', narrow)]);
      expect(results.map((result) => result.kind)).toEqual(['timeout', 'timeout', 'timeout']);
      expect(Math.max(...results.map((result) => result.latencyMs))).toBeLessThan(950);
    } finally {
      await narrow.close();
    }
  });

  it('reports a refused connection as a network failure, and a guarded address as blocked', async () => {
    const closedPort = await freePort();
    const refused = await sender.send(new URL(`http://127.0.0.1:${closedPort}/hook`), {}, '{}');
    expect(refused).toMatchObject({ kind: 'network' });
    expect(refused.kind !== 'response' && refused.error).toMatch(/ECONNREFUSED/);

    const guarded = new Sender(settings({ guard: createAddressGuard({ allow: [] }) }));
    try {
      const blocked = await send('/ok', guarded);
      expect(blocked).toMatchObject({ kind: 'blocked' });
      expect(blocked.kind !== 'response' && blocked.error).toMatch(/127\.0\.0\.1/);
    } finally {
      await guarded.close();
    }
  });
});

describe('sender through an egress proxy (DISPATCHER_PROXY_URL)', () => {
  it('tunnels every request through the proxy with CONNECT, sending its credentials to it and not to the endpoint', async () => {
    const proxy = await startConnectProxy();
    const via = new Sender(settings({ proxy: new URL(`http://egress:s3cret@${proxy.url.host}`) }));
    try {
      const before = seen.length;
      expect(await send('/ok', via)).toMatchObject({ kind: 'response', status: 204 });
      expect(proxy.tunnels).toEqual([new URL(base).host]);
      expect(proxy.authorizations).toEqual([`Basic ${Buffer.from('egress:s3cret').toString('base64')}`]);
      expect(seen).toHaveLength(before + 1);
      expect(seen.at(-1)!.headers['proxy-authorization']).toBeUndefined();
      // An https endpoint goes through the same tunnel: its TLS handshake happens inside it, with the endpoint.
      const tls = await via.send(new URL(`https://127.0.0.1:${new URL(base).port}/ok`), {}, '{}');
      expect(proxy.tunnels).toEqual([new URL(base).host, new URL(base).host]);
      // The endpoint here speaks plain HTTP: the handshake fails, as a TLS failure (the endpoint's breaker ignores those).
      expect(tls).toMatchObject({ kind: 'tls', error: expect.stringMatching(/^TLS: ERR_SSL_/) });
      expect(tls.kind !== 'response' && tls.error).not.toContain('s3cret');
    } finally {
      await via.close();
      await proxy.close();
    }
  });

  it('judges the target before the request with the guard on, while the proxy itself is dialled as configured', async () => {
    const proxy = await startConnectProxy();
    // Loopback is not allowed, yet the proxy on loopback is reached: it is allowed by being configured.
    const via = new Sender(settings({ guard: createAddressGuard({ allow: [] }), proxy: proxy.url }));
    try {
      const blocked = await send('/ok', via);
      expect(blocked).toMatchObject({ kind: 'blocked', error: expect.stringMatching(/^refused to connect to 127\.0\.0\.1: 127\.0\.0\.1 is loopback/) });
      expect(proxy.tunnels).toEqual([]);
      const allowed = new Sender(settings({ guard: createAddressGuard({ allow: ['127.0.0.1/32'] }), proxy: proxy.url }));
      try {
        expect(await send('/ok', allowed)).toMatchObject({ kind: 'response', status: 204 });
        expect(proxy.tunnels).toHaveLength(1);
      } finally {
        await allowed.close();
      }
    } finally {
      await via.close();
      await proxy.close();
    }
  });

  it('reports a proxy that refuses the tunnel or cannot be reached as a retryable network failure naming the proxy, never its credentials', async () => {
    const proxy = await startConnectProxy();
    proxy.refuse = () => true;
    const refusing = new Sender(settings({ proxy: new URL(`http://egress:s3cret@${proxy.url.host}`) }));
    const closedPort = await freePort();
    const down = new Sender(settings({ proxy: new URL(`http://egress:s3cret@127.0.0.1:${closedPort}`) }));
    try {
      expect(await send('/ok', refusing)).toEqual({ kind: 'network', error: `the proxy ${proxy.url.origin} refused the tunnel: it answered 403 to CONNECT`, latencyMs: expect.any(Number) });
      const unreachable = await send('/ok', down);
      expect(unreachable).toMatchObject({ kind: 'network', error: expect.stringMatching(new RegExp(`^the proxy http://127\\.0\\.0\\.1:${closedPort} could not be reached: .*ECONNREFUSED`)) });
      expect(JSON.stringify(unreachable)).not.toContain('s3cret');
    } finally {
      await Promise.all([refusing.close(), down.close()]);
      await proxy.close();
    }
  });
});

describe('failure classification', () => {
  it("counts undici's own timeouts as timeouts, whichever of them ends the attempt first", () => {
    // undici's headers timer and the sender's deadline sweep both fire at the attempt limit; either may win.
    expect(classifyFailure(new errors.HeadersTimeoutError(), 5000)).toEqual({ kind: 'timeout', error: 'timed out (UND_ERR_HEADERS_TIMEOUT; attempt limit 5000 ms)' });
    expect(classifyFailure(new errors.BodyTimeoutError(), 5000)).toMatchObject({ kind: 'timeout' });
    expect(classifyFailure(new errors.ConnectTimeoutError(), 5000)).toMatchObject({ kind: 'timeout' });
    expect(classifyFailure(new errors.SocketError('other side closed'), 5000)).toEqual({ kind: 'network', error: 'UND_ERR_SOCKET: other side closed' });
  });
});
