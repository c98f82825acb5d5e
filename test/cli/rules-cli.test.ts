import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, kafkaConnection } from '../../services/common/kafka.ts';
import { registryConnection, SchemaRegistryClient } from '../../services/common/registry.ts';
import { RulesTable } from '../../services/common/rules-table.ts';
import { prepareCluster } from '../../services/common/setup.ts';
import { topicNames } from '../../services/common/topics.ts';
import type { Dispatcher } from '../../services/dispatcher/dispatcher.ts';
import { startDispatcher, startReceiver, type Receiver } from '../dispatcher/fixtures.ts';
import { newSecret, rule } from '../fixtures/rules.ts';
import { writers } from '../matcher/fixtures.ts';
import { freePorts } from '../../stack/ports.ts';
import { createCa, issueCertificate } from '../../stack/tls.ts';
import { clusterEnv, testCluster, testLogger, topicSize } from '../helpers.ts';

const run = promisify(execFile);
const fingerprint = (secret: string) => createHash('sha256').update(secret).digest('hex').slice(0, 12);
const cluster = testCluster('rules-cli');
const cli = join(import.meta.dirname, '../../services/cli/rules-cli.ts');
const env = clusterEnv(cluster);

async function rules(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return rulesWith(env, ...args);
}

async function rulesWith(environment: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: environment });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** A rule's headers as stored (values in clear, unlike what the CLI shows): the event-rules topic read to its end. */
async function storedHeaders(id: string): Promise<Record<string, string> | undefined> {
  const kafka = createKafka({ ...kafkaConnection(cluster), clientId: 'test-rules-reader', logger: testLogger });
  const table = new RulesTable({ kafka, registry: new SchemaRegistryClient(registryConnection(cluster)), topic: topicNames(cluster.TOPIC_PREFIX).eventRules, logger: testLogger, groupPrefix: 'test' });
  await table.start();
  try {
    return table.get(id)?.headers;
  } finally {
    await table.stop();
  }
}

const MAX_AGE_MS = 6_000;
let dispatcher: Dispatcher;
let receiver: Receiver;
let dir: string;

beforeAll(async () => {
  await prepareCluster(cluster, testLogger);
  dir = await mkdtemp(join(tmpdir(), 'rules-'));
  receiver = await startReceiver();
  // A maximum age the replay test can outlive (the schedule, 1 s and 2 s, ends well inside it).
  dispatcher = await startDispatcher(cluster, { maxAgeMs: MAX_AGE_MS });
});
afterAll(async () => {
  await dispatcher?.stop();
  await receiver?.close();
});

describe('npm run rules', () => {
  it('fails in one line on stderr that says what to do, with a non-zero exit code', async () => {
    const oneLine = (result: { stderr: string }) => expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    const unknownFlag = await rules('list', '--colour', 'blue');
    expect(unknownFlag).toMatchObject({ code: 2, stdout: '', stderr: "error: Unknown option '--colour'; see --help\n" });
    const unknownCommand = await rules('frobnicate');
    expect(unknownCommand).toMatchObject({ code: 2, stderr: expect.stringMatching(/^error: unknown command "frobnicate" \(one of put, get, list, .*\); see --help\n$/) });
    expect(await rules('dlq', 'purge')).toMatchObject({ code: 2, stderr: 'error: dlq needs one of list, replay (not "purge"); see --help\n' });
    const badSetting = await rulesWith({ ...env, KAFKA_BROKERS: 'localhost' }, 'list');
    expect(badSetting).toMatchObject({ code: 1, stderr: 'error: Invalid configuration: KAFKA_BROKERS.0: each broker must be host:port\n' });
    const [closed] = await freePorts(1);
    const unreachable = await rulesWith({ ...env, KAFKA_BROKERS: `127.0.0.1:${closed}` }, 'list');
    expect(unreachable.code).toBe(1);
    oneLine(unreachable);
    expect(unreachable.stderr).not.toContain('LOG_LEVEL=debug'); // it says what to check already
    expect(unreachable.stderr).toMatch(new RegExp(`^error: cannot connect to Kafka at 127\\.0\\.0\\.1:${closed}: is it running`));
    const missing = await rules('get', 'no-such-rule');
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: 'error: no rule with id "no-such-rule"\n' });
    const help = await rules('pools', 'retire', '--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: npm run rules -- <command>/);
  });

  it('refuses bad rules naming the field, exits non-zero and publishes nothing', async () => {
    const bad = async (name: string, content: string) => {
      const file = join(dir, name);
      await writeFile(file, content);
      return rules('put', '--file', file);
    };
    const valid = { id: 'x', application: 'a', name: 'n', url: 'https://hooks.example.com/x', scope: { kind: 'everything' }, secrets: [{ secret: newSecret() }] };
    const cases = [
      [await bad('broken.json', '{"id": '), /broken\.json: is not valid JSON/],
      [await bad('broken.yaml', 'id: [unclosed'), /broken\.yaml: is not valid YAML/],
      [await bad('unknown.json', JSON.stringify({ ...valid, colour: 'blue' })), /colour: unknown field/],
      [await bad('no-id.json', JSON.stringify({ ...valid, id: undefined })), /id: is required: a put creates or updates the rule with this id/],
      [await bad('url.yaml', `id: x\napplication: a\nname: n\nurl: not a url\nscope: {kind: everything}\nsecrets: [{secret: ${newSecret()}}]\n`), /url: must be an absolute http\(s\) URL/],
      [await bad('types.json', JSON.stringify({ ...valid, eventTypes: ['deploy_done'] })), /eventTypes\.0: must be one of/],
      [await rules('put', '--id', 'x', '--application', 'a', '--name', 'n', '--url', 'https://h.example/x', '--secret', 'hunter2'), /secrets\.0\.secret: must be whsec_/],
      [await rules('put', '--id', 'x', '--application', 'a', '--url', 'https://h.example/x', '--event-types', 'workflow_started,nope'), /--name: is required[\s\S]*--event-types: unknown event type nope/],
      // Credentials in a URL that does not parse, or in a header without its `=`, are never quoted.
      [await rules('put', '--id', 'x', '--application', 'a', '--name', 'n', '--url', 'htps//ops:hunter2@h.example/x?token=hunter2'), /url: must be an absolute http\(s\) URL \(this one does not parse/],
      [await rules('put', '--id', 'x', '--application', 'a', '--name', 'n', '--url', 'ftp://ops:hunter2@h.example/x'), /url: must be an absolute http\(s\) URL \(its scheme is ftp:\)/],
      [await rules('put', '--id', 'x', '--application', 'a', '--name', 'n', '--url', 'https://h.example/x', '--header', 'Authorization: Bearer hunter2'), /--header: number 1 must be NAME=VALUE/],
    ] as const;
    for (const [result, message] of cases) {
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: invalid rule, nothing published: [^\n]+\n$/);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain('hunter2');
    }
    expect(await topicSize(cluster, topicNames(cluster.TOPIC_PREFIX).eventRules)).toBe(0);
  });

  it('puts, lists, disables, enables, rotates, tests and deletes rules', async () => {
    const put = await rules('put', '--id', 'cli-1', '--application', 'cli-app', '--name', 'Deploys', '--url', receiver.url,
      '--event-types', 'workflow_completed', '--scope', 'workflows:wf-1,wf-2', '--header', 'X-Team=ops', '--format', 'harness-v1', '--enabled');
    expect(put.code).toBe(0);
    const secret = /signing secret \(shown once, store it now\): (whsec_\S+)/.exec(put.stdout)![1]!;
    // A change made here is an audit line as one made in the console is (docs/security.md), on stderr, never a secret.
    const audit = (result: { stderr: string }) => result.stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => (JSON.parse(line) as { audit: Record<string, unknown> }).audit);
    expect(audit(put)).toEqual([{ action: 'rule created', by: 'rules-cli', user: expect.any(String), ruleId: 'cli-1', application: 'cli-app', enabled: true }]);
    expect(put.stderr).not.toContain(secret.slice('whsec_'.length));
    const file = join(dir, 'rule.yaml');
    await writeFile(file, `id: cli-2\napplication: cli-app\nname: Tasks\nurl: ${receiver.url}\nscope: {kind: everything}\neventTypes: [task_started]\npayloadFormat: sharering\nsecrets: [{secret: ${newSecret()}}]\n`);
    expect((await rules('put', '--file', file)).stdout).toContain('put rule cli-2 (disabled');

    const list = (await rules('list')).stdout.trim().split('\n');
    expect(list[0]).toMatch(/^ID\s+APPLICATION\s+NAME\s+ENABLED\s+SCOPE\s+EVENTS\s+FORMAT\s+URL$/);
    expect(list[1]).toMatch(/^cli-1\s+cli-app\s+Deploys\s+yes\s+workflows:wf-1,wf-2\s+workflow_completed\s+harness_v1\s+http:\/\/127\.0\.0\.1/);
    expect(list[2]).toMatch(/^cli-2\s+cli-app\s+Tasks\s+no\s+everything\s+task_started\s+sharering/);

    const tested = await rules('test', 'cli-1');
    expect(tested.code, tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/delivered: HTTP 200, [\d.]+ ms → http:\/\/127\.0\.0\.1:\d+\/hook/);
    const request = receiver.received.at(-1)!;
    expect(new Webhook(secret).verify(request.body, request.headers as Record<string, string>)).toMatchObject({ eventType: 'workflow_end', version: 'v1' });

    // A rule can be tried before it goes live: Test sends its sample whatever the toggle, and says so.
    const before = receiver.received.length;
    const disabledTest = await rules('test', 'cli-2');
    expect(disabledTest.code, disabledTest.stderr).toBe(0);
    expect(disabledTest.stderr).toContain('(the rule is disabled; a Test goes out anyway)');
    expect(disabledTest.stdout).toMatch(/delivered: HTTP 200/);
    expect(receiver.received).toHaveLength(before + 1);

    expect((await rules('disable', 'cli-1')).stdout).toContain('rule cli-1 disabled');
    // The result and nothing else: stdout is the JSON document alone, and no library warning reaches stderr.
    const got = await rules('get', 'cli-1');
    expect(got.stderr).toBe('');
    // Header values are write-only, like secrets: the name with the mask.
    expect(JSON.parse(got.stdout)).toMatchObject({ enabled: false, disabledReason: 'disabled by an operator', headers: { 'X-Team': '[redacted]' } });
    expect(got.stdout).not.toContain('ops"');
    // LOG_LEVEL=debug opens the logger (on stderr) again.
    expect(await rulesWith({ ...env, LOG_LEVEL: 'debug' }, 'get', 'cli-1')).toMatchObject({ code: 0, stderr: expect.stringContaining('"msg":"table bootstrapped"') });
    expect((await rules('enable', 'cli-1')).stdout).toContain('rule cli-1 enabled');

    const rotated = await rules('rotate-secret', 'cli-1', '--overlap', '1h');
    const fresh = /new signing secret \(shown once, store it now\): (whsec_\S+)/.exec(rotated.stdout)![1]!;
    const shown = (await rules('get', 'cli-1')).stdout;
    // Fingerprints (as the console shows them), never a part of the secret.
    expect((JSON.parse(shown) as { secrets: unknown[] }).secrets).toEqual([{ fingerprint: fingerprint(secret), notAfter: expect.any(String) }, { fingerprint: fingerprint(fresh), notAfter: null }]);
    for (const key of [secret, fresh]) expect(shown).not.toContain(key.slice('whsec_'.length, 'whsec_'.length + 4));
    expect((await rules('test', 'cli-1')).code).toBe(0);
    const signed = receiver.received.at(-1)!;
    for (const key of [secret, fresh]) expect(() => new Webhook(key).verify(signed.body, signed.headers as Record<string, string>)).not.toThrow();

    // An ed25519 rule: the CLI prints its public key, never its private key, and no "shown once" secret.
    const ed25519 = await rules('put', '--id', 'cli-v1a', '--application', 'cli-app', '--name', 'Ed25519', '--url', receiver.url, '--scheme', 'v1a');
    expect(ed25519.code, ed25519.stderr).toBe(0);
    expect(ed25519.stdout).not.toContain('signing secret');
    const printed = /public key \(give it to the receiver; it verifies v1a signatures, it cannot sign\): (whpk_\S+)/.exec(ed25519.stdout)![1]!;
    expect(JSON.parse((await rules('get', 'cli-v1a')).stdout)).toMatchObject({ signatureScheme: 'v1a', secrets: [{ publicKey: printed, notAfter: null }] });
    expect(await rules('rotate-secret', 'cli-v1a', '--scheme', 'v2')).toMatchObject({ code: 2, stderr: 'error: --scheme: "v2" is not a signature scheme (one of v1, v1a); see --help\n' });
    expect((await rules('delete', 'cli-v1a')).code).toBe(0);

    // Mutual TLS from PEM files: the key is read, kept, and shown as the mask only.
    const ca = await createCa(join(dir, 'tls'), 'ca');
    const client = await issueCertificate(ca, join(dir, 'tls'), 'client', 'client');
    const withTls = await rules('put', '--id', 'cli-tls', '--application', 'cli-app', '--name', 'TLS', '--url', 'https://127.0.0.1:9/hook',
      '--client-cert', client.cert, '--client-key', client.key, '--ca', ca.cert);
    expect(withTls.code, withTls.stderr).toBe(0);
    const tlsShown = (await rules('get', 'cli-tls')).stdout;
    expect(JSON.parse(tlsShown)).toMatchObject({ tls: { clientCertificate: expect.stringMatching(/^-----BEGIN CERTIFICATE-----/), clientKey: '[redacted]', ca: expect.stringMatching(/^-----BEGIN CERTIFICATE-----/) } });
    expect(tlsShown).not.toContain((await readFile(client.key, 'utf8')).split('\n')[1]);
    expect(await rules('put', '--id', 'cli-tls', '--application', 'cli-app', '--name', 'TLS', '--url', 'https://127.0.0.1:9/hook', '--client-key', join(dir, 'nope.pem')))
      .toMatchObject({ code: 1, stderr: expect.stringContaining(`--client-key: cannot read ${join(dir, 'nope.pem')}`) });
    expect((await rules('delete', 'cli-tls')).code).toBe(0);

    const deleted = await rules('delete', 'cli-2');
    expect(deleted.stdout).toContain('rule cli-2 deleted');
    expect(audit(deleted)).toEqual([{ action: 'rule deleted', by: 'rules-cli', user: expect.any(String), ruleId: 'cli-2' }]);
    expect(audit(rotated)).toEqual([expect.objectContaining({ action: 'secret rotated', ruleId: 'cli-1' })]);
    expect(audit(tested)).toEqual([expect.objectContaining({ action: 'rule tested', ruleId: 'cli-1', deliveryId: expect.any(String) })]);
    expect(rotated.stderr).not.toContain(fresh.slice('whsec_'.length));
    expect((await rules('get', 'cli-2')).stderr).toContain('no rule with id "cli-2"');
    expect((await rules('delete-application', 'cli-app')).stdout).toContain('deleted 1 rule(s) of application cli-app');
    expect((await rules('list')).stdout.trim()).toBe('no rules');
  });

  it('rules put on an existing id keeps its secret, header values and enabled state unless told otherwise', async () => {
    const first = await rules('put', '--id', 'keep', '--application', 'keep-app', '--name', 'Keep', '--url', receiver.url, '--enabled', '--header', 'Authorization=Bearer t0ken', '--header', 'X-Team=ops');
    const secret = /signing secret \(shown once, store it now\): (whsec_\S+)/.exec(first.stdout)![1]!;
    const updated = await rules('put', '--id', 'keep', '--application', 'keep-app', '--name', 'Keep renamed', '--url', `${receiver.url}/v2`);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toContain('put rule keep (enabled)');
    expect(updated.stdout).not.toContain('signing secret');
    const kept = JSON.parse((await rules('get', 'keep')).stdout) as { name: string; enabled: boolean; secrets: Array<{ secret: string }> };
    expect(kept).toMatchObject({ name: 'Keep renamed', enabled: true, secrets: [{ fingerprint: fingerprint(secret) }], headers: { Authorization: '[redacted]', 'X-Team': '[redacted]' } });
    const stored = () => storedHeaders('keep');
    expect(await stored()).toEqual({ Authorization: 'Bearer t0ken', 'X-Team': 'ops' });
    // The mask keeps a value (names ignore case); headers not given go; a header new to the rule needs its value.
    expect((await rules('put', '--id', 'keep', '--application', 'keep-app', '--name', 'Keep renamed', '--url', `${receiver.url}/v2`, '--header', 'authorization=[redacted]', '--header', 'X-Env=prod')).code).toBe(0);
    expect(await stored()).toEqual({ authorization: 'Bearer t0ken', 'X-Env': 'prod' });
    const unknownMask = await rules('put', '--id', 'keep', '--application', 'keep-app', '--name', 'Keep renamed', '--url', receiver.url, '--header', 'X-New=[redacted]');
    expect(unknownMask).toMatchObject({ code: 1, stderr: expect.stringContaining('headers.X-New: is [redacted], which keeps the value the rule has, but it has no such header') });

    const file = join(dir, 'keep.yaml');
    await writeFile(file, `id: keep\napplication: keep-app\nname: From a file\nurl: ${receiver.url}\nscope: {kind: everything}\n`);
    expect((await rules('put', '--file', file)).stdout).toContain('put rule keep (enabled)');
    expect(JSON.parse((await rules('get', 'keep')).stdout)).toMatchObject({ name: 'From a file', enabled: true, secrets: [{ fingerprint: fingerprint(secret) }], headers: { authorization: '[redacted]', 'X-Env': '[redacted]' } });
    expect(await stored()).toEqual({ authorization: 'Bearer t0ken', 'X-Env': 'prod' });

    expect((await rules('put', '--id', 'keep', '--application', 'keep-app', '--name', 'Off', '--url', receiver.url, '--disabled')).stdout).toContain('put rule keep (disabled');
    expect((await rules('delete', 'keep')).code).toBe(0);
  });

  it('rules list shows why the system disabled a rule', async () => {
    const io = await writers(cluster);
    try {
      await io.rules.put(rule('gone', 'gone-app', { enabled: false, disabledReason: 'the endpoint answered 410 Gone' }));
    } finally {
      await io.close();
    }
    expect((await rules('list', '--application', 'gone-app')).stdout).toMatch(/^gone\s+gone-app\s+rule gone\s+no \(the endpoint answered 410 Gone\)\s+everything/m);
    await rules('delete', 'gone');
  });

  it('lists dead-lettered deliveries and replays them with the same delivery id and a new age, even past the maximum age', async () => {
    const failing = await startReceiver();
    try {
      failing.respond = () => 503;
      await rules('put', '--id', 'dead', '--application', 'dead-app', '--name', 'Dead', '--url', failing.url, '--enabled', '--secret', newSecret());
      expect((await rules('test', 'dead')).stdout).toMatch(/retrying: HTTP 503/);
      // Attempts at 0 s, 1 s and 3 s (RETRY_SCHEDULE 1s,2s), then the dead-letter topic.
      const listed = async () => (await rules('dlq', 'list', '--rule', 'dead')).stdout;
      let output = await listed();
      for (let tries = 0; !output.includes('exhausted') && tries < 20; tries += 1) output = await listed();
      const [header, row] = output.trim().split('\n');
      expect(header).toBe('POSITION\tDEAD-LETTERED AT\tRULE\tEVENT\tTYPE\tATTEMPTS\tREASON\tERROR');
      expect(row).toMatch(/^\d+:\d+\t\S+Z\tdead\ttest-\S+\tworkflow_started\t3\texhausted\tgave up after 3 attempts; last: HTTP 503$/);
      expect((await rules('dlq', 'list', '--rule', 'someone-else')).stdout.trim()).toBe('no dead-lettered deliveries');
      expect((await rules('dlq', 'replay')).stderr).toContain('say what to replay');

      failing.respond = () => 200;
      // Past the delivery's maximum age: kept, the replay would be dead-lettered as expired at once, never sent.
      await new Promise((resolve) => setTimeout(resolve, MAX_AGE_MS));
      const replay = await rules('dlq', 'replay', '--rule', 'dead');
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain('replayed 1, not replayed 0');
      expect(replay.stderr).toContain('replaying [##############################] 1/1');
      const deadlineAt = Date.now() + 10_000;
      while (failing.received.length < 4 && Date.now() < deadlineAt) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(failing.received).toHaveLength(4);
      expect(new Set(failing.received.map((request) => request.headers['webhook-id'])).size).toBe(1);
    } finally {
      await failing.close();
    }
  });
});
