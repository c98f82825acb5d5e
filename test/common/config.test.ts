import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseSettings, ConfigError, connectionEnv, loadConfig } from '../../services/common/config.ts';
import { kafkaConnection } from '../../services/common/kafka.ts';
import { registryConnection } from '../../services/common/registry.ts';
import { createCa, issueCertificate } from '../../stack/tls.ts';
import { dispatcherSettings } from '../../services/dispatcher/main.ts';

describe('configuration', () => {
  it('has working defaults', () => {
    expect(loadConfig({ ...baseSettings, ...dispatcherSettings }, {})).toMatchObject({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      RETRY_SCHEDULE: [5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      DISPATCHER_ATTEMPT_TIMEOUT: 15_000,
      DISPATCHER_ALLOW_NETWORKS: [],
    });
  });

  it('names every bad variable and says what it must be', () => {
    const load = () => loadConfig({ ...baseSettings, ...dispatcherSettings }, {
      KAFKA_BROKERS: 'localhost',
      RETRY_SCHEDULE: '5s,soon',
      DISPATCHER_ATTEMPT_TIMEOUT: '10s,20s',
      DISPATCHER_MAX_IN_FLIGHT: '-3',
      LOG_LEVEL: 'loud',
      LOG_FORMAT: 'fancy',
    });
    expect(load).toThrow(ConfigError);
    const message = (() => { try { load(); } catch (error) { return (error as Error).message; } return ''; })();
    expect(message).toContain('KAFKA_BROKERS.0: each broker must be host:port');
    expect(message).toContain('RETRY_SCHEDULE: "soon" is not a duration');
    expect(message).toContain('DISPATCHER_ATTEMPT_TIMEOUT: one duration, not a list');
    expect(message).toMatch(/DISPATCHER_MAX_IN_FLIGHT: .*>=1/);
    expect(message).toMatch(/LOG_LEVEL: /);
    expect(message).toMatch(/LOG_FORMAT: .*"pretty"\|"json"/);
  });
});

const messageOf = (load: () => unknown): string => {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('secured-cluster settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'config-'));
  const password = 'pa55-word-not-to-print';

  it('builds TLS, SASL and registry auth from files and _FILE secrets', async () => {
    const ca = await createCa(dir, 'ca');
    const client = await issueCertificate(ca, dir, 'svc', 'client');
    writeFileSync(join(dir, 'password'), `${password}\n`);
    const config = loadConfig(baseSettings, {
      KAFKA_BROKERS: 'b-1.example:9096',
      KAFKA_SSL_CA_FILE: ca.cert,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD_FILE: join(dir, 'password'),
      SCHEMA_REGISTRY_URL: 'https://registry.example/apis/ccompat/v7',
      SCHEMA_REGISTRY_USERNAME: 'key',
      SCHEMA_REGISTRY_PASSWORD: 'secret',
      SCHEMA_REGISTRY_CA_FILE: ca.cert,
      SCHEMA_REGISTRY_CERT_FILE: client.cert,
      SCHEMA_REGISTRY_KEY_FILE: client.key,
    });
    expect(kafkaConnection(config)).toEqual({
      brokers: ['b-1.example:9096'],
      ssl: { ca: expect.stringContaining('-----BEGIN CERTIFICATE-----') },
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password },
    });
    expect(registryConnection(config)).toEqual({
      registryUrl: 'https://registry.example/apis/ccompat/v7',
      registryAuth: { username: 'key', password: 'secret' },
      registryCa: expect.stringContaining('-----BEGIN CERTIFICATE-----'),
      registryCertificate: { cert: expect.stringContaining('-----BEGIN CERTIFICATE-----'), key: expect.stringContaining('PRIVATE KEY-----') },
    });
    expect(kafkaConnection(loadConfig(baseSettings, { KAFKA_SSL: 'true' })).ssl).toBe(true);
    expect(kafkaConnection(loadConfig(baseSettings, {}))).toEqual({ brokers: ['127.0.0.1:9092'] });
    // A child process gets the same settings, and none of the parent's stray ones.
    expect(connectionEnv(config)).toMatchObject({ KAFKA_SASL_PASSWORD: password, KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SSL_CERT_FILE: '' });
  });

  it('names the setting that is missing, contradictory or unreadable, never quoting a secret', () => {
    writeFileSync(join(dir, 'not-pem'), 'hello');
    const message = messageOf(() => loadConfig(baseSettings, {
      KAFKA_SASL_MECHANISM: 'gssapi',
      KAFKA_SASL_PASSWORD: password,
      KAFKA_SSL: 'false',
      KAFKA_SSL_CA_FILE: join(dir, 'missing.crt'),
      KAFKA_SSL_CERT_FILE: join(dir, 'not-pem'),
      SCHEMA_REGISTRY_PASSWORD: password,
    }));
    expect(message).toContain(`KAFKA_SSL_CA_FILE: cannot read ${join(dir, 'missing.crt')} (ENOENT)`);
    expect(message).toContain(`KAFKA_SSL_CERT_FILE: ${join(dir, 'not-pem')} holds no PEM certificate`);
    expect(message).toMatch(/KAFKA_SASL_MECHANISM: .*plain.*scram-sha-256.*scram-sha-512/);
    expect(message).not.toContain(password);

    const pairs = messageOf(() => loadConfig(baseSettings, {
      KAFKA_SSL: 'false',
      KAFKA_SSL_KEY_FILE: join(dir, 'not-pem'),
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_PASSWORD: password,
      SCHEMA_REGISTRY_PASSWORD: password,
      SCHEMA_REGISTRY_CA_FILE: join(dir, 'ca.crt'),
    }));
    expect(pairs).toContain(`KAFKA_SSL_KEY_FILE: ${join(dir, 'not-pem')} holds no unencrypted PEM private key`);
    expect(messageOf(() => loadConfig(baseSettings, { KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: join(dir, 'ca.crt') })))
      .toContain('KAFKA_SSL: is false, but KAFKA_SSL_CA_FILE asks for TLS');
    expect(messageOf(() => loadConfig(baseSettings, { KAFKA_SSL_CERT_FILE: join(dir, 'ca.crt') })))
      .toContain('KAFKA_SSL_KEY_FILE: mutual TLS needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE');
    expect(messageOf(() => loadConfig(baseSettings, { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: password })))
      .toContain('KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=plain');
    expect(messageOf(() => loadConfig(baseSettings, { KAFKA_SASL_USERNAME: 'svc' })))
      .toContain('KAFKA_SASL_MECHANISM: required with SASL credentials');
    expect(messageOf(() => loadConfig(baseSettings, { SCHEMA_REGISTRY_PASSWORD: password })))
      .toContain('SCHEMA_REGISTRY_USERNAME: basic auth needs both');
    expect(messageOf(() => loadConfig(baseSettings, { SCHEMA_REGISTRY_CA_FILE: join(dir, 'ca.crt') })))
      .toContain('SCHEMA_REGISTRY_CA_FILE: is set, but SCHEMA_REGISTRY_URL is http:// (use https://)');
    const halfPair = messageOf(() => loadConfig(baseSettings, { SCHEMA_REGISTRY_CERT_FILE: join(dir, 'ca.crt') }));
    expect(halfPair).toContain('SCHEMA_REGISTRY_KEY_FILE: mutual TLS needs both SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE');
    expect(halfPair).toContain('SCHEMA_REGISTRY_CERT_FILE: is set, but SCHEMA_REGISTRY_URL is http:// (use https://)');
    const inUrl = messageOf(() => loadConfig(baseSettings, { SCHEMA_REGISTRY_URL: `https://key:${password}@registry.example/` }));
    expect(inUrl).toContain('SCHEMA_REGISTRY_URL: must not hold credentials');
    expect(inUrl).not.toContain(password);
    expect(messageOf(() => loadConfig(baseSettings, { KAFKA_SASL_PASSWORD: password, KAFKA_SASL_PASSWORD_FILE: join(dir, 'password') })))
      .toContain('KAFKA_SASL_PASSWORD_FILE: set together with KAFKA_SASL_PASSWORD; set one of them');
    expect(messageOf(() => loadConfig(baseSettings, { KAFKA_SASL_PASSWORD_FILE: join(dir, 'nope') })))
      .toContain(`KAFKA_SASL_PASSWORD_FILE: cannot read ${join(dir, 'nope')} (ENOENT)`);
  });

  it('item 4: refuses a retry delay of 0 (every deferral would step in place for ever) and one past a timer\'s limit, naming RETRY_SCHEDULE', () => {
    for (const schedule of ['5s,0s', '0ms', '30d']) {
      expect(() => loadConfig(baseSettings, { RETRY_SCHEDULE: schedule })).toThrow(/RETRY_SCHEDULE: each delay must be at least 100ms .* and at most 24d/);
    }
    expect(loadConfig(baseSettings, { RETRY_SCHEDULE: '100ms,24d' }).RETRY_SCHEDULE).toEqual([100, 24 * 86_400_000]);
  });

  it('takes DISPATCHER_PROXY_URL as an http(s) URL, and refuses anything else naming the variable, never quoting it', () => {
    const load = (url: string) => loadConfig({ ...baseSettings, ...dispatcherSettings }, { DISPATCHER_PROXY_URL: url });
    expect(load('http://egress:s3cret@127.0.0.1:3128').DISPATCHER_PROXY_URL?.href).toBe('http://egress:s3cret@127.0.0.1:3128/');
    for (const url of ['socks5://egress:s3cret@127.0.0.1:1080', 'egress:s3cret@proxy']) {
      const message = (() => {
        try {
          load(url);
        } catch (error) {
          return (error as Error).message;
        }
        return 'accepted';
      })();
      expect(message).toMatch(/DISPATCHER_PROXY_URL: must be an http:\/\/ or https:\/\/ URL of the proxy/);
      expect(message).not.toContain('s3cret');
    }
    expect(loadConfig({ ...baseSettings, ...dispatcherSettings }, {}).DISPATCHER_PROXY_URL).toBeUndefined();
  });
});
