/**
 * The product against secured parts, all real and started here: the test stack's SASL_SSL listener (a SCRAM-SHA-512
 * user added through the broker's admin API; the JVM broker's or the Kafka container's alike), its mutual-TLS listener, and the registry behind nginx with TLS and
 * basic auth. Certificates are made now with openssl. Skipped (and says so) when the suite runs against an external
 * cluster, which has no such listeners to borrow.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { baseSettings, connectionSettings, loadConfig } from '../../services/common/config.ts';
import { createKafka, kafkaConnection, KafkaConnectError } from '../../services/common/kafka.ts';
import { createLogger } from '../../services/common/logger.ts';
import { registryConnection, RegistryError, SchemaRegistryClient } from '../../services/common/registry.ts';
import type { ClusterConfig } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import { Console } from '../../services/console/console.ts';
import { addScramUser } from '../../stack/scram.ts';
import { createCa, issueCertificate } from '../../stack/tls.ts';
import { harnessApp, harnessEvent } from '../fixtures/seed-events.ts';
import { clusterEnv, readTopic, testCluster } from '../helpers.ts';
import { startPipeline, type Pipeline } from '../pipeline.ts';
import { startRegistryProxy, type RegistryProxy } from './registry-proxy.ts';

const run = promisify(execFile);
const listeners = inject('securedListeners');
const plainBrokers = inject('kafkaBrokers');
const rulesCli = join(import.meta.dirname, '../../services/cli/rules-cli.ts');

const kafkaUser = `svc-${randomBytes(3).toString('hex')}`;
const kafkaPassword = randomBytes(18).toString('base64url');
const registryUser = 'registry-client';
const registryPassword = randomBytes(18).toString('base64url');
const secrets = [kafkaPassword, registryPassword];

/** Everything services log in this file, to prove no secret is in it. */
let logged = '';
const logger = createLogger('secured-test', 'debug', { destination: new Writable({ write(chunk, _encoding, done) { logged += chunk.toString(); done(); } }) });

let dir: string;
let proxy: RegistryProxy;
let env: Record<string, string>;
let cluster: ClusterConfig;

/** The connection settings from environment variables, parsed as every service parses them. */
const connection = (variables: Record<string, string>) =>
  loadConfig({ KAFKA_BROKERS: baseSettings.KAFKA_BROKERS, SCHEMA_REGISTRY_URL: baseSettings.SCHEMA_REGISTRY_URL, ...connectionSettings }, variables);

/** connect() of an admin client with these settings: how long it took and the error, if any. */
async function tryConnect(variables: Record<string, string>, retries = 5): Promise<{ ms: number; error?: Error }> {
  const started = Date.now();
  const admin = createKafka({ ...kafkaConnection(connection(variables)), clientId: 'secured-probe', logger, retries }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return { ms: Date.now() - started };
  } catch (error) {
    return { ms: Date.now() - started, error: error as Error };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function rules(variables: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  try {
    const { stdout, stderr } = await run(process.execPath, [rulesCli, ...args], { env: variables });
    return { code: 0, stdout, stderr, ms: Date.now() - started };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr, ms: Date.now() - started };
  }
}

const expectNoSecret = (text: string) => { for (const secret of secrets) expect(text).not.toContain(secret); };

describe.skipIf(listeners === undefined)('secured cluster: SASL_SSL and mutual TLS listeners, registry behind TLS + basic auth', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secured-'));
    await addScramUser(listeners!.admin, kafkaUser, kafkaPassword, 'SCRAM-SHA-512');
    const registryCa = await createCa(join(dir, 'registry-tls'), 'registry-ca');
    const registryCertificate = await issueCertificate(registryCa, join(dir, 'registry-tls'), 'registry', 'server');
    proxy = await startRegistryProxy(join(dir, 'nginx'), inject('registryUrl'), registryCertificate, registryUser, registryPassword);
    // The password comes from a mounted-secret style file, as in Kubernetes.
    await writeFile(join(dir, 'kafka-password'), `${kafkaPassword}\n`, { mode: 0o600 });
    env = {
      KAFKA_BROKERS: listeners!.saslSsl,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: listeners!.ca.cert,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: kafkaUser,
      KAFKA_SASL_PASSWORD_FILE: join(dir, 'kafka-password'),
      SCHEMA_REGISTRY_URL: proxy.url,
      SCHEMA_REGISTRY_USERNAME: registryUser,
      SCHEMA_REGISTRY_PASSWORD: registryPassword,
      SCHEMA_REGISTRY_CA_FILE: registryCa.cert,
    };
    cluster = { ...testCluster('secured'), ...connection(env) };
  });
  afterAll(async () => {
    await proxy?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('end to end', () => {
    let pipeline: Pipeline;
    let console_: Console;
    const token = 'secured-console-token-0123456789';
    afterAll(async () => {
      await console_?.stop();
      await pipeline?.stop();
    });

    it('producer SDK, matcher, dispatcher, console and rules CLI work through SASL_SSL and the authenticated registry', async () => {
      pipeline = await startPipeline(cluster);
      console_ = new Console(cluster, { groupId: `${cluster.TOPIC_PREFIX}console`, httpHost: '127.0.0.1', httpPort: 0, adminToken: token, dataDir: join(dir, 'console') }, logger);
      await console_.start();
      const receiver = await pipeline.receiver();
      const cliEnv = clusterEnv(cluster);
      const put = await rules(cliEnv, 'put', '--id', 'secured-1', '--application', harnessApp.id, '--name', 'Secured',
        '--url', receiver.url, '--event-types', 'workflow_completed', '--enabled');
      // Nothing but the change's audit line: no library warning about the secured connection.
      expect(put.stderr.trim().split('\n').map((line) => JSON.parse(line).msg)).toEqual(['audit: rule created']);
      expect(put.code).toBe(0);
      await pipeline.io.events.publish(harnessEvent('workflow_completed', { eventId: 'secured-event-1' }));
      await expect.poll(() => receiver.received.length, { timeout: 30_000 }).toBe(1);
      expect(receiver.received[0]!.body).toContain('secured-event-1');

      const listed = await rules(cliEnv, 'list');
      expect(listed.code).toBe(0);
      expect(listed.stdout).toContain('secured-1');
      await expect.poll(async () => {
        const response = await fetch(new URL('/api/logs', console_.url), { headers: { authorization: `Bearer ${token}` } });
        return JSON.stringify(await response.json());
      }, { timeout: 30_000 }).toContain('secured-event-1');

      // The records on the topics went through the secured listener and the authenticated registry too.
      const [log] = await readTopic(cluster, topicNames(cluster.TOPIC_PREFIX).deliveryLog, 1);
      const record = await new SchemaRegistryClient(registryConnection(cluster)).decode(contracts.deliveryLog, log!.value);
      expect(record).toMatchObject({ outcome: 'delivered', eventId: 'secured-event-1' });
      expectNoSecret(`${put.stdout}${listed.stdout}${listed.stderr}${log!.value!.toString('latin1')}${logged}`);
    });
  });

  it('connects with SCRAM-SHA-256 and PLAIN too, and with a client certificate on the mutual-TLS listener', async () => {
    const scram256User = `${kafkaUser}-256`;
    await addScramUser(listeners!.admin, scram256User, kafkaPassword, 'SCRAM-SHA-256');
    const sasl = { KAFKA_BROKERS: listeners!.saslSsl, KAFKA_SSL_CA_FILE: listeners!.ca.cert };
    expect((await tryConnect({ ...sasl, KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: scram256User, KAFKA_SASL_PASSWORD: kafkaPassword })).error).toBeUndefined();
    expect((await tryConnect({ ...sasl, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: listeners!.plainUser.username, KAFKA_SASL_PASSWORD: listeners!.plainUser.password })).error).toBeUndefined();

    const client = await issueCertificate(listeners!.ca, join(dir, 'client-tls'), 'workflow-webhooks', 'client');
    const mtls = { KAFKA_BROKERS: listeners!.mtls, KAFKA_SSL_CA_FILE: listeners!.ca.cert };
    expect((await tryConnect({ ...mtls, KAFKA_SSL_CERT_FILE: client.cert, KAFKA_SSL_KEY_FILE: client.key })).error).toBeUndefined();
    const withoutCertificate = await tryConnect(mtls, 1);
    expect(withoutCertificate.error).toBeInstanceOf(KafkaConnectError);
    expect(withoutCertificate.error!.message).toMatch(/refused the client certificate.*KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE/);
  });

  it('a wrong password fails fast, naming the setting, without retrying or printing the password', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const { ms, error } = await tryConnect({ ...env, KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: wrong });
    expect(error).toBeInstanceOf(KafkaConnectError);
    expect(error!.message).toContain(`cannot connect to Kafka at ${listeners!.saslSsl}: it refused the SASL scram-sha-512 login of user "${kafkaUser}"`);
    expect(error!.message).toContain('KAFKA_SASL_PASSWORD');
    expect(error!.message).not.toContain(wrong);
    // No reconnect storm: one refusal ends it (the retry schedule alone would take seconds).
    expect(ms).toBeLessThan(2000);

    const cli = await rules({ ...clusterEnv(cluster), KAFKA_SASL_PASSWORD: wrong }, 'list');
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/error: cannot connect to Kafka .* refused the SASL scram-sha-512 login .*KAFKA_SASL_PASSWORD/);
    expect(cli.stderr.match(/refused the SASL/g)).toHaveLength(1);
    expect(`${cli.stdout}${cli.stderr}`).not.toContain(wrong);
    expect(cli.ms).toBeLessThan(10_000);
  });

  it('plaintext against the TLS listener, TLS against the plaintext one and an unknown CA say what to set', async () => {
    const plaintext = await tryConnect({ KAFKA_BROKERS: listeners!.saslSsl }, 1);
    expect(plaintext.error!.message).toMatch(/^cannot connect to Kafka at 127\.0\.0\.1:\d+: is it running, and is this a plaintext listener\? For a TLS listener set KAFKA_SSL=true/);

    const tlsToPlaintext = await tryConnect({ KAFKA_BROKERS: plainBrokers.join(','), KAFKA_SSL: 'true' }, 1);
    expect(tlsToPlaintext.error!.message).toMatch(/it did not complete a TLS handshake; is this a TLS listener\?/);

    const otherCa = await createCa(join(dir, 'other-ca'), 'someone-else');
    const wrongCa = await tryConnect({ ...env, KAFKA_SSL_CA_FILE: otherCa.cert }, 1);
    expect(wrongCa.error!.message).toMatch(/its TLS certificate is not trusted; set KAFKA_SSL_CA_FILE to the CA that signed it \(.*unable to verify/);
    const systemCas = await tryConnect({ ...env, KAFKA_SSL_CA_FILE: '' }, 1);
    expect(systemCas.error!.message).toMatch(/KAFKA_SSL_CA_FILE/);
  });

  it('the registry: wrong or missing credentials, an unknown CA and plain HTTP give clear errors, no secret in them', async () => {
    const attempt = (variables: Record<string, string>) =>
      new SchemaRegistryClient(registryConnection(connection({ ...env, ...variables })), { retries: 0 }).register('secured-probe-value', contracts.eventRule.schema);
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    await expect(attempt({ SCHEMA_REGISTRY_PASSWORD: wrong })).rejects.toThrow(
      `schema registry at ${proxy.url} refused the credentials of SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD (HTTP 401)`);
    await expect(attempt({ SCHEMA_REGISTRY_USERNAME: '', SCHEMA_REGISTRY_PASSWORD: '' })).rejects.toThrow('needs credentials: set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD (HTTP 401)');
    const otherCa = await createCa(join(dir, 'other-registry-ca'), 'someone-else');
    await expect(attempt({ SCHEMA_REGISTRY_CA_FILE: otherCa.cert })).rejects.toThrow(/its TLS certificate is not trusted .*; set SCHEMA_REGISTRY_CA_FILE/);
    await expect(attempt({ SCHEMA_REGISTRY_URL: proxy.url.replace('https:', 'http:'), SCHEMA_REGISTRY_CA_FILE: '' }))
      .rejects.toThrow(/HTTP 400, not a schema registry's answer: .*plain HTTP request was sent to HTTPS port/);
    const refused = await attempt({ SCHEMA_REGISTRY_PASSWORD: wrong }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RegistryError);
    expect((refused as RegistryError).message).not.toContain(wrong);
  });
});
