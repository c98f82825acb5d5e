/**
 * SchemaRegistryClient over @kafkajs/confluent-schema-registry, against scripted registries on loopback (no stack):
 * what it adds to the library, each next to the library alone doing without it, and the errors it turns into a setting
 * to change.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterEach, describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { DecodeError, RegistryError, SchemaRegistryClient } from '../../services/common/registry.ts';
import { createCa, issueCertificate } from '../../stack/tls.ts';

type Handler = (request: { method: string; path: string; body: string; authorization?: string }, response: ServerResponse) => void;
const servers: Array<() => Promise<void>> = [];
afterEach(async () => { await Promise.all(servers.splice(0).map((close) => close())); });

/** An HTTP server on 127.0.0.1 answering with `handler`; its URL carries Apicurio's path prefix. */
async function registry(handler: Handler): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((incoming: IncomingMessage, outgoing) => {
    let body = '';
    incoming.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    incoming.on('end', () => {
      const path = incoming.url!.replace(/^\/apis\/ccompat\/v7/, '');
      seen.push(`${incoming.method} ${path}`);
      handler({ method: incoming.method!, path, body, ...(incoming.headers.authorization ? { authorization: incoming.headers.authorization } : {}) }, outgoing);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/apis/ccompat/v7`, seen };
}

const json = (response: ServerResponse, status: number, body: unknown) => {
  response.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
  response.end(JSON.stringify(body));
};
const notFound = (response: ServerResponse) => json(response, 404, { error_code: 40401, message: 'Subject not found' });
const schema = contracts.eventRule.schema;
const subject = 'rules-value';

describe('SchemaRegistryClient adds to the library', () => {
  it('looks a registered schema up without writing: credentials that may only read suffice', async () => {
    // A registry that answers lookups and refuses every write, as one with read-only credentials does.
    const readOnly: Handler = ({ method, path }, response) => {
      if (method === 'POST' && path === `/subjects/${subject}`) return json(response, 200, { subject, version: 1, id: 7, schema: JSON.stringify(schema) });
      if (method === 'GET' && path === `/config/${subject}`) return json(response, 200, { compatibilityLevel: 'BACKWARD' });
      json(response, 403, { error_code: 40301, message: 'read-only credentials' });
    };
    const { url, seen } = await registry(readOnly);
    await expect(new SchemaRegistryClient({ registryUrl: url }).register(subject, schema)).resolves.toBe(7);
    expect(seen).toEqual([`POST /subjects/${subject}`]);
    // The library's register() always writes a version.
    await expect(new SchemaRegistry({ host: url }).register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject }))
      .rejects.toMatchObject({ status: 403 });
  });

  it('registers again when another setup created the subject\'s compatibility rule first (Apicurio answers 409)', async () => {
    // Both setups found no rule; the other one's create landed first, so this one's is refused once.
    let rule: string | undefined;
    let conflicts = 1;
    const racing: Handler = ({ method, path, body }, response) => {
      if (method === 'POST' && path === `/subjects/${subject}`) return notFound(response);
      if (method === 'GET' && path === `/config/${subject}`) return rule ? json(response, 200, { compatibilityLevel: rule }) : json(response, 404, { error_code: 40408, message: 'no rule' });
      if (method === 'POST' && path === `/subjects/${subject}/versions`) return json(response, 200, { id: 9 });
      if (method === 'PUT' && path === `/config/${subject}`) {
        rule = (JSON.parse(body) as { compatibility: string }).compatibility;
        if (conflicts-- > 0) return json(response, 409, { error_code: 409, message: 'A rule named COMPATIBILITY already exists' });
        return json(response, 200, { compatibility: rule });
      }
      notFound(response);
    };
    const { url } = await registry(racing);
    await expect(new SchemaRegistry({ host: url }).register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject }))
      .rejects.toMatchObject({ status: 409 });
    conflicts = 1;
    rule = undefined;
    await expect(new SchemaRegistryClient({ registryUrl: url }).register(subject, schema)).resolves.toBe(9);
    expect(rule).toBe('BACKWARD');
  });

  it('refuses what is not the wire format as a DecodeError, where the library throws a RangeError or fetches id 0', async () => {
    const { url, seen } = await registry((_request, response) => notFound(response));
    const client = new SchemaRegistryClient({ registryUrl: url });
    for (const record of [null, Buffer.from([0, 0, 0]), Buffer.from('{"not":"avro"}')]) {
      await expect(client.decode(contracts.eventRule, record)).rejects.toMatchObject({ name: 'DecodeError', reason: 'not-wire-format' });
    }
    await expect(client.decode(contracts.eventRule, Buffer.alloc(64), 32)).rejects.toMatchObject({ reason: 'too-large' });
    expect(seen).toEqual([]);
    await expect(new SchemaRegistry({ host: url }).decode(Buffer.from([0, 0, 0]))).rejects.toBeInstanceOf(RangeError);
  });

  it('keeps the verdict on a schema it cannot read: one fetch for any number of its records', async () => {
    const badDefault = { type: 'record', name: contracts.eventRule.name, fields: [{ name: 'retries', type: ['null', 'int'], default: 5 }] };
    const { url, seen } = await registry(({ path }, response) => (path === '/schemas/ids/5' ? json(response, 200, { schema: JSON.stringify(badDefault) }) : notFound(response)));
    const record = Buffer.from([0, 0, 0, 0, 5, 0]);
    const client = new SchemaRegistryClient({ registryUrl: url });
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const refused = await client.decode(contracts.eventRule, record).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(DecodeError);
      expect(refused).toMatchObject({ reason: 'unreadable-schema', message: expect.stringMatching(/^schema 5 cannot be read: .*default/) });
    }
    expect(seen).toEqual(['GET /schemas/ids/5']);
    // The library keeps no failure: each record would ask the registry again.
    const library = new SchemaRegistry({ host: url });
    for (let attempt = 0; attempt < 2; attempt += 1) await expect(library.getSchema(5)).rejects.toThrow(/default/);
    expect(seen).toHaveLength(3);
  });

  it('an unknown id is not kept: the registry may know it later (an emptied registry whose contracts come back)', async () => {
    const { url, seen } = await registry((_request, response) => json(response, 404, { error_code: 40403, message: 'Schema not found' }));
    const client = new SchemaRegistryClient({ registryUrl: url });
    const record = Buffer.from([0, 0, 0, 0, 6, 0]);
    await expect(client.decode(contracts.eventRule, record)).rejects.toMatchObject({ reason: 'unknown-schema-id' });
    await expect(client.decode(contracts.eventRule, record)).rejects.toMatchObject({ reason: 'unknown-schema-id' });
    expect(seen).toEqual(['GET /schemas/ids/6', 'GET /schemas/ids/6']);
  });
});

describe('deleteSubjects (no such call in the library)', () => {
  it("deletes the prefix's subjects soft then permanently, with the client's credentials, a referenced one after the others", async () => {
    const subjects = new Map([['run1.a-value', false], ['run1.b-value', false], ['other-value', false]]);
    const auth = `Basic ${Buffer.from('svc:secret').toString('base64')}`;
    const { url, seen } = await registry(({ method, path, authorization }, response) => {
      if (authorization !== auth) return json(response, 401, { message: 'Unauthorized' });
      if (method === 'GET' && path === '/subjects') return json(response, 200, [...subjects.keys()]);
      const [, name, permanent] = /^\/subjects\/([^?]+)(\?permanent=true)?$/.exec(path) ?? [];
      const subject = decodeURIComponent(name ?? '');
      // run1.b-value refers to run1.a-value: a is refused while b is there; b was soft-deleted by another cleanup.
      if (subject === 'run1.a-value' && subjects.has('run1.b-value')) return json(response, 422, { error_code: 42206, message: 'referenced' });
      if (!subjects.has(subject) || (subject === 'run1.b-value' && !permanent)) return notFound(response);
      if (permanent) subjects.delete(subject);
      json(response, 200, [1]);
    });
    const client = new SchemaRegistryClient({ registryUrl: url, registryAuth: { username: 'svc', password: 'secret' } });
    await expect(client.deleteSubjects('run1.')).resolves.toEqual(['run1.a-value', 'run1.b-value']);
    expect([...subjects.keys()]).toEqual(['other-value']);
    expect(seen.filter((request) => request.startsWith('DELETE'))).toEqual([
      'DELETE /subjects/run1.a-value', 'DELETE /subjects/run1.b-value', 'DELETE /subjects/run1.b-value?permanent=true',
      'DELETE /subjects/run1.a-value', 'DELETE /subjects/run1.a-value?permanent=true',
    ]);
    await expect(client.deleteSubjects('')).rejects.toThrow(/without a prefix/);
  });
});

describe('SchemaRegistryClient errors say what to change, and quote no credential', () => {
  it('refused or missing credentials name the settings; the library sends basic auth', async () => {
    const { url } = await registry(({ authorization }, response) => {
      if (authorization === `Basic ${Buffer.from('svc:right').toString('base64')}`) return json(response, 200, { id: 3 });
      json(response, 401, { error_code: 401, message: 'Unauthorized' });
    });
    const attempt = (registryAuth?: { username: string; password: string }) =>
      new SchemaRegistryClient({ registryUrl: url, ...(registryAuth ? { registryAuth } : {}) }, { retries: 0 }).register(subject, schema);
    await expect(attempt({ username: 'svc', password: 'right' })).resolves.toBe(3);
    const refused = await attempt({ username: 'svc', password: 'wrong-secret' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RegistryError);
    expect((refused as RegistryError).message).toBe(`schema registry at ${url} refused the credentials of SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD (HTTP 401)`);
    await expect(attempt()).rejects.toThrow(`schema registry at ${url} needs credentials: set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD (HTTP 401)`);
  });

  it('a registry that is not there, one that does not answer in time, and an answer that is not a registry\'s', async () => {
    const closed = await registry(() => undefined);
    await servers.pop()!();
    await expect(new SchemaRegistryClient({ registryUrl: closed.url }, { retries: 1 }).register(subject, schema))
      .rejects.toThrow(new RegExp(`^schema registry at ${closed.url} is unreachable \\(connect ECONNREFUSED .*\\); is it running\\?`));

    const silent = await registry(() => undefined);
    const started = Date.now();
    await expect(new SchemaRegistryClient({ registryUrl: silent.url }, { retries: 1, requestTimeoutMs: 200 }).register(subject, schema))
      .rejects.toThrow(/is unreachable \(Timeout \(200ms\)\)/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(silent.seen).toEqual([`POST /subjects/${subject}`, `POST /subjects/${subject}`]);

    const proxy = await registry((_request, response) => { response.writeHead(502, { 'content-type': 'text/html' }); response.end('<html><h1>502 Bad Gateway</h1></html>'); });
    await expect(new SchemaRegistryClient({ registryUrl: proxy.url }, { retries: 0 }).register(subject, schema))
      .rejects.toThrow(`looking up ${subject}: HTTP 502, not a schema registry's answer: 502 Bad Gateway`);
  });

  it('over HTTPS: the CA given is trusted, another one is named as the setting to change; a refusal naming a certificate is not one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-tls-'));
    try {
      const [ca, otherCa] = [await createCa(join(dir, 'ca'), 'registry-ca'), await createCa(join(dir, 'other'), 'other-ca')];
      const certificate = await issueCertificate(ca, join(dir, 'ca'), 'registry', 'server');
      const server = createTlsServer({ cert: readFileSync(certificate.cert), key: readFileSync(certificate.key) }, (_incoming, outgoing) =>
        json(outgoing, 404, { error_code: 40401, message: "Subject 'certificates-value' not found" }));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
      const registryUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/apis/ccompat/v7`;
      const attempt = (caFile: string) => new SchemaRegistryClient({ registryUrl, registryCa: readFileSync(caFile, 'utf8') }, { retries: 0 }).register('certificates-value', schema);
      await expect(attempt(otherCa.cert)).rejects.toThrow(new RegExp(`^schema registry at ${registryUrl}: its TLS certificate is not trusted \\(.*\\); set SCHEMA_REGISTRY_CA_FILE`));
      // Trusted: the lookup reaches the registry (404), then the registration its answer refuses.
      await expect(attempt(ca.cert)).rejects.toThrow("registering certificates-value: Subject 'certificates-value' not found");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('behind mutual TLS: the client certificate given is sent; without one the error names the settings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'registry-mtls-'));
    try {
      const ca = await createCa(join(dir, 'ca'), 'registry-ca');
      const [server, client] = [await issueCertificate(ca, join(dir, 'ca'), 'registry', 'server'), await issueCertificate(ca, join(dir, 'ca'), 'svc', 'client')];
      const tls = createTlsServer({ cert: readFileSync(server.cert), key: readFileSync(server.key), ca: readFileSync(ca.cert), requestCert: true, rejectUnauthorized: true },
        (_incoming, outgoing) => json(outgoing, 200, { id: 4 }));
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      servers.push(() => new Promise((resolve) => { tls.closeAllConnections(); tls.close(() => resolve()); }));
      const registryUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/apis/ccompat/v7`;
      const registryCa = readFileSync(ca.cert, 'utf8');
      const registryCertificate = { cert: readFileSync(client.cert, 'utf8'), key: readFileSync(client.key, 'utf8') };
      await expect(new SchemaRegistryClient({ registryUrl, registryCa, registryCertificate }).register(subject, schema)).resolves.toBe(4);
      await expect(new SchemaRegistryClient({ registryUrl, registryCa }, { retries: 0 }).register(subject, schema))
        .rejects.toThrow(`schema registry at ${registryUrl} refused the client certificate (mutual TLS); set SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE to a certificate its CA trusts`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
