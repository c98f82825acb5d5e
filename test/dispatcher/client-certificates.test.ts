/**
 * Rules with their own TLS settings against nginx on loopback requiring a client certificate (ssl_verify_client on):
 * the right certificate is delivered, a wrong or missing one ends as a failed attempt naming the TLS cause, and none
 * of them opens the breaker of the other rules on the same origin.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryLog } from '../../schemas/index.ts';
import { checkRule, redactRule } from '../../services/common/rules.ts';
import { ruleView } from '../../services/operator/rule-view.ts';
import { createCa, issueCertificate } from '../../stack/tls.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { rule } from '../fixtures/rules.ts';
import { startNginx, type Nginx } from '../fixtures/nginx.ts';
import { testCluster, waitFor } from '../helpers.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import type { Receiver } from './fixtures.ts';
import { readLog } from './fixtures.ts';

const cluster = testCluster('mtls', { RETRY_SCHEDULE: [60_000] });
let pipeline: Pipeline;
let nginx: Nginx;
let upstream: Receiver;
let dir: string;
let right: { cert: string; key: string };
let wrong: { cert: string; key: string };
const pem = async (files: { cert: string; key: string }) => ({ cert: await readFile(files.cert, 'utf8'), key: await readFile(files.key, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mtls-'));
  const ca = await createCa(join(dir, 'ca'), 'endpoint-ca');
  const server = await issueCertificate(ca, join(dir, 'server'), 'endpoint', 'server');
  // Few failures open a breaker here: a rule's TLS failures must not count toward it.
  pipeline = await startPipeline(cluster, { breakerFailures: 2, maxAgeMs: 3_600_000 });
  upstream = await pipeline.receiver('/hook');
  nginx = await startNginx(join(dir, 'nginx'), (port) => `
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${server.cert};
    ssl_certificate_key ${server.key};
    ssl_client_certificate ${ca.cert};
    ssl_verify_client on;
    location / {
      proxy_pass http://${new URL(upstream.url).host};
      proxy_set_header X-Client-Subject $ssl_client_s_dn;
    }`);
  const url = `https://127.0.0.1:${nginx.port}/hook`;
  right = await pem(await issueCertificate(ca, join(dir, 'client'), 'right-client', 'client'));
  const otherCa = await createCa(join(dir, 'other'), 'other-ca');
  wrong = await pem(await issueCertificate(otherCa, join(dir, 'other'), 'wrong-client', 'client'));
  const endpointCa = await readFile(ca.cert, 'utf8');
  // Each rule takes its own event type, so the TLS failures of one come first, back to back, then the others' turn.
  const failing = { eventTypes: ['workflow_completed' as const], url };
  await pipeline.io.rules.put(
    rule('mtls-right', 'mtls-app', { eventTypes: ['workflow_started'], url, tls: { clientCertificate: right.cert, clientKey: right.key, ca: endpointCa } }),
    rule('mtls-wrong', 'mtls-app', { ...failing, tls: { clientCertificate: wrong.cert, clientKey: wrong.key, ca: endpointCa } }),
    rule('mtls-missing', 'mtls-app', { ...failing, tls: { clientCertificate: null, clientKey: null, ca: endpointCa } }),
    rule('mtls-untrusted', 'mtls-app', { eventTypes: ['workflow_failed'], url, tls: null }),
  );
  await waitFor('rules in the matcher', () => pipeline.matcher.rules.get('mtls-untrusted') !== undefined);
}, 120_000);
afterAll(async () => {
  await pipeline?.stop();
  await nginx?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('client certificates per rule (mutual TLS)', () => {
  it('delivers with the right certificate; a wrong, missing or untrusting one fails naming the TLS cause; no breaker opens for the others', async () => {
    const events = (type: 'workflow_failed' | 'workflow_started' | 'workflow_completed') => [1, 2, 3].map((index) => harnessEvent(type, { eventId: `mtls-${type}-${index}`, application: { id: 'mtls-app', name: null } }));
    const firstAttempts = (entries: DeliveryLog[]) => entries.filter((entry) => entry.attempt === 1 && entry.ruleId.startsWith('mtls-'));
    await pipeline.io.events.publish(events('workflow_failed'));
    // Three TLS failures in a row on the origin: counted as the endpoint's, they would open its breaker (at 2).
    await readLog(cluster, (entries) => firstAttempts(entries).length === 3, 60_000);
    await pipeline.io.events.publish([...events('workflow_started'), ...events('workflow_completed')]);
    const log = firstAttempts(await readLog(cluster, (entries) => firstAttempts(entries).length === 12, 60_000));
    const of = (ruleId: string) => log.filter((entry) => entry.ruleId === ruleId);

    // Every event reached the right rule's endpoint at its first attempt: the failures beside it opened no breaker.
    expect(of('mtls-right').map((entry) => entry.outcome)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(upstream.received.map((request) => request.headers['x-client-subject'])).toEqual(['CN=right-client', 'CN=right-client', 'CN=right-client']);
    // nginx completes the handshake and answers 400, naming the cause in its body.
    for (const entry of of('mtls-wrong')) expect(entry).toMatchObject({ outcome: 'retrying', httpStatus: 400, response: { body: expect.stringContaining('The SSL certificate error') } });
    for (const entry of of('mtls-missing')) expect(entry).toMatchObject({ outcome: 'retrying', httpStatus: 400, response: { body: expect.stringContaining('No required SSL certificate was sent') } });
    // Without the endpoint's CA the handshake itself fails: a TLS failure, for the rule, not the endpoint.
    for (const entry of of('mtls-untrusted')) {
      expect(entry).toMatchObject({ outcome: 'retrying', httpStatus: null, error: expect.stringMatching(/^TLS: \w+: .*: the endpoint's certificate is not one the system's CAs \(or the rule's tls\.ca\) vouch for$/) });
    }
  });

  it('keeps the client key a secret: masked in the rule as shown, redacted in a dead-letter copy, never quoted in an issue', () => {
    const tls = { clientCertificate: right.cert, clientKey: right.key, ca: null };
    const checked = checkRule({ ...rule('keys', 'mtls-app', { url: 'https://hooks.example.com/in', tls }), updatedAt: Date.now() });
    if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
    const keyLine = right.key.split('\n')[1]!;
    expect(JSON.stringify(ruleView(checked.rule))).not.toContain(keyLine);
    expect(ruleView(checked.rule).tls).toEqual({ clientCertificate: right.cert, clientKey: '[redacted]', ca: null });
    expect(JSON.stringify(redactRule(checked.rule))).not.toContain(keyLine);

    const issues = (overrides: object) => {
      const result = checkRule({ ...rule('keys', 'mtls-app', { url: 'https://hooks.example.com/in' }), updatedAt: Date.now(), ...overrides });
      return result.ok ? [] : result.issues;
    };
    expect(issues({ tls: { ...tls, clientKey: wrong.key } })).toEqual([{ field: 'tls.clientKey', reason: 'is not the private key of tls.clientCertificate' }]);
    expect(issues({ tls: { ...tls, clientKey: null } })).toEqual([{ field: 'tls.clientKey', reason: 'is needed too: a client certificate goes with its private key' }]);
    const garbled = issues({ tls: { ...tls, clientKey: right.key.replace(keyLine, `${keyLine.slice(0, 10)}!!`) } });
    expect(garbled).toEqual([{ field: 'tls.clientKey', reason: expect.stringMatching(/^must be an unencrypted PEM private key/) }]);
    expect(JSON.stringify(garbled)).not.toContain(keyLine.slice(0, 10));
    expect(issues({ url: 'http://hooks.example.com/in', tls })).toEqual([{ field: 'tls', reason: 'applies to https:// endpoints only' }]);
  });
});
