/**
 * npm run rules -- <command>: the operator's rules tool. Rules change only by producing to the event-rules topic.
 * Its result goes to stdout, progress and errors to stderr (one line, exit code 1; 2 for a command line it does not
 * understand); `--help` prints the usage below.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { SIGNATURE_SCHEMES, type EndpointTls, type EventRule, type SignatureScheme } from '../../schemas/index.ts';
import { baseSettings, loadConfig } from '../common/config.ts';
import { cliLogger, CliError, orExit, parseCommandLine, runCli, USAGE_EXIT_CODE } from '../common/cli.ts';
import { parseDuration } from '../common/duration.ts';
import { kafkaConnection, createKafka, type Kafka } from '../common/kafka.ts';
import { createLogger } from '../common/logger.ts';
import { poolGroupId, PoolsTable } from '../common/pools.ts';
import { progressLine } from '../common/progress.ts';
import { registryConnection, SchemaRegistryClient } from '../common/registry.ts';
import { RuleValidationError, RuleWriter } from '../common/rule-writer.ts';
import { loggableUrl } from '../common/rules.ts';
import { RulesTable } from '../common/rules-table.ts';
import { topicNames } from '../common/topics.ts';
import { ActionError, OperatorActions, type Actor, type OperatorResources, type Saved } from '../operator/actions.ts';
import { CommandSender } from '../operator/command-sender.ts';
import { DeliveryLogTail } from '../operator/delivery-log-tail.ts';
import { filterDeadDeliveries, readDeadDeliveries, type DlqFilter } from '../operator/dlq.ts';
import { POOL_RETIRED, poolState, RetirementRefused, type RetirementResult } from '../operator/pool-retirement.ts';
import { parseRuleFile, ruleFromFlags, RuleInputError, type RulePut } from '../operator/rule-input.ts';
import { HEADER_MASK, ruleView } from '../operator/rule-view.ts';


const USAGE = `
usage: npm run rules -- <command> [flags]

  put --file rule.json|rule.yaml
  put --id ID --application APP --name NAME --url URL [--event-types a,b|all]
      [--scope all|workflows:<ids|all>|pipelines:<ids|all>] [--header K=V]... [--secret whsec_...]... [--scheme v1|v1a]
      [--selector TAG]... [--format standard|harness-v1|sharering] [--no-user-data] [--enabled|--disabled]
      [--rate-limit N] [--client-cert FILE --client-key FILE] [--ca FILE]
                            (an update keeps the rule's secrets, headers and enabled state unless told
                            otherwise; --header K=${HEADER_MASK} keeps K's value and drops headers not given)
  get ID                    the rule as JSON, secrets as fingerprints, header values as ${HEADER_MASK}
  list [--application APP]  a table
  enable ID | disable ID | delete ID | delete-application APP
  rotate-secret ID [--overlap 24h] [--secret whsec_...] [--scheme v1|v1a]
                            (v1: HMAC, a secret shown once; v1a: ed25519, the receiver gets the public key)
  test ID [--timeout 30s]   a sample event through the dispatcher to this rule only (exit 1 unless delivered)
  dlq list [--rule ID] [--since 2h|ISO] [--until ISO] [--reason exhausted]
  dlq replay (--offset P:O | --rule ID | --since ... [--until ...] | --all) [--reason R]
  pools list
  pools retire POOL [--group G] [--force [--timeout 30s]]

Settings (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_PREFIX, ...) come from the environment; LOG_LEVEL=debug shows the
Kafka client's own messages on stderr.
`;

/** Each command and, where it takes one, its action. */
const COMMANDS = {
  put: [], get: [], list: [], enable: [], disable: [], delete: [], 'delete-application': [], 'rotate-secret': [], test: [],
  dlq: ['list', 'replay'], pools: ['list', 'retire'],
} as const satisfies Record<string, readonly string[]>;

const { positionals, values } = parseCommandLine({
  allowPositionals: true,
  options: {
    file: { type: 'string', short: 'f' },
    id: { type: 'string' },
    application: { type: 'string' },
    name: { type: 'string' },
    url: { type: 'string' },
    'event-types': { type: 'string' },
    scope: { type: 'string' },
    header: { type: 'string', multiple: true },
    secret: { type: 'string', multiple: true },
    scheme: { type: 'string' },
    'client-cert': { type: 'string' },
    'client-key': { type: 'string' },
    ca: { type: 'string' },
    selector: { type: 'string', multiple: true },
    format: { type: 'string' },
    'no-user-data': { type: 'boolean' },
    enabled: { type: 'boolean' },
    disabled: { type: 'boolean' },
    'rate-limit': { type: 'string' },
    overlap: { type: 'string', default: '24h' },
    timeout: { type: 'string', default: '30s' },
    rule: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    reason: { type: 'string' },
    offset: { type: 'string' },
    all: { type: 'boolean' },
    group: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
}, USAGE, COMMANDS);

const config = orExit(() => loadConfig(baseSettings));
const logger = cliLogger('rules', config.LOG_LEVEL, config.LOG_FORMAT);
const names = topicNames(config.TOPIC_PREFIX);
const kafka: Kafka = createKafka({ ...kafkaConnection(config), clientId: `${config.KAFKA_CLIENT_ID}-rules-cli`, logger, retries: 3 });
const registry = new SchemaRegistryClient(registryConnection(config));
const closers: Array<() => Promise<unknown>> = [];

/** `open` on first use only, so a command starts just what it needs; each open registers its own close. */
const once = <T>(open: () => Promise<T>): (() => Promise<T>) => {
  let opened: Promise<T> | undefined;
  return () => (opened ??= open());
};
const tables = { kafka, registry, logger, groupPrefix: names.group('rules-cli') };
const resources: OperatorResources = {
  kafka, registry, names,
  // The rules and the pools as they are now: their whole topics, read to the end (once per run), then followed.
  rules: once(async () => {
    const table = new RulesTable({ ...tables, topic: names.eventRules });
    closers.push(() => table.stop());
    await table.start();
    return table;
  }),
  pools: once(async () => {
    const table = new PoolsTable({ ...tables, topic: names.dispatcherPools });
    closers.push(() => table.stop());
    await table.start();
    return table;
  }),
  writer: once(async () => {
    const writer = await RuleWriter.create(kafka, registry, names.eventRules, await resources.rules());
    closers.push(() => writer.close());
    return writer;
  }),
  sender: once(async () => {
    const sender = await CommandSender.create(kafka, registry);
    closers.push(() => sender.close());
    return sender;
  }),
  deliveryLog: once(async () => {
    const tail = await DeliveryLogTail.start(kafka, registry, names, 'rules-cli');
    closers.push(() => tail.stop());
    return tail;
  }),
};
// The audit lines of the changes made here, as the console writes its own: on stderr, whatever LOG_LEVEL says.
const actions = new OperatorActions(resources, createLogger('rules-cli', 'info', { format: config.LOG_FORMAT, destination: process.stderr }));
const actor: Actor = { by: 'rules-cli', user: userInfo().username };

function ruleId(id: string | undefined): string {
  if (!id) throw new CliError('which rule? give its id');
  return id;
}

/** A rule as the console's API shows it (secrets fingerprinted, header values masked), with readable times. */
const show = (rule: EventRule) => {
  const view = ruleView(rule);
  return { ...view, secrets: view.secrets.map((key) => ({ ...key, notAfter: key.notAfter && new Date(key.notAfter).toISOString() })), updatedAt: new Date(rule.updatedAt).toISOString() };
};

/** A v1a rule's current public key: what its receivers verify with (it is not a secret: it cannot sign). */
function printPublicKey(rule: EventRule): void {
  const current = ruleView(rule).secrets.findLast((key) => key.notAfter === null);
  if (current?.publicKey) console.log(`public key (give it to the receiver; it verifies v1a signatures, it cannot sign): ${current.publicKey}`);
}

/** `--client-cert`, `--client-key`, `--ca`: PEM files read into the rule's TLS settings (checkRule judges them). */
async function tlsFromFiles(): Promise<EndpointTls | undefined> {
  const read = (flag: 'client-cert' | 'client-key' | 'ca') => {
    const file = values[flag];
    return file === undefined ? null : readFile(file, 'utf8').catch((error: Error) => { throw new CliError(`--${flag}: cannot read ${file}: ${error.message}`); });
  };
  const [clientCertificate, clientKey, ca] = await Promise.all([read('client-cert'), read('client-key'), read('ca')]);
  return clientCertificate === null && clientKey === null && ca === null ? undefined : { clientCertificate, clientKey, ca };
}

function signatureScheme(text: string | undefined): SignatureScheme | undefined {
  if (text === undefined || (SIGNATURE_SCHEMES as readonly string[]).includes(text)) return text as SignatureScheme | undefined;
  throw new CliError(`--scheme: "${text}" is not a signature scheme (one of ${SIGNATURE_SCHEMES.join(', ')}); see --help`, USAGE_EXIT_CODE);
}

/** After a save: why the rule will not be delivered as the pools stand, if it will not (the rule is saved either way). */
function warn({ warnings }: Saved): void {
  for (const warning of warnings) console.error(`warning: saved, but it will not be delivered: ${warning}`);
}

async function put(): Promise<void> {
  let input: RulePut;
  if (values.file) input = parseRuleFile(await readFile(values.file, 'utf8').catch((error: Error) => { throw new CliError(`cannot read ${values.file}: ${error.message}`); }), values.file);
  else input = ruleFromFlags({ ...values, scheme: signatureScheme(values.scheme) });
  const tls = await tlsFromFiles();
  if (tls) input = { ...input, tls };
  const saved = await actions.put(actor, input);
  const { rule } = saved;
  console.log(`put rule ${rule.id} (${rule.enabled ? 'enabled' : 'disabled: enable it with `npm run rules -- enable ' + rule.id + '`'})`);
  if (saved.secret) console.log(`signing secret (shown once, store it now): ${saved.secret}`);
  printPublicKey(rule);
  warn(saved);
}

async function setEnabled(id: string, enabled: boolean): Promise<void> {
  const saved = await actions.setEnabled(actor, id, enabled);
  console.log(`rule ${id} ${enabled ? 'enabled' : 'disabled'}`);
  if (enabled) warn(saved);
}

async function rotateSecret(id: string): Promise<void> {
  const { rule, secret, until } = await actions.rotateSecret(actor, id, parseDuration(values.overlap!), values.secret?.[0], signatureScheme(values.scheme));
  console.log(`rule ${id}: new secret added; the old one(s) sign until ${new Date(until).toISOString()}`);
  if (secret) console.log(`new signing secret (shown once, store it now): ${secret}`);
  printPublicKey(rule);
}

function list(table: RulesTable): void {
  const rows = [...table.values()].filter((rule) => !values.application || rule.application === values.application).sort((a, b) => a.id.localeCompare(b.id));
  if (rows.length === 0) return console.log('no rules');
  const scope = (rule: EventRule) => (rule.scope.kind === 'everything' ? 'everything' : `${rule.scope.kind}:${rule.scope.ids?.join(',') ?? 'all'}`);
  const table2 = [['ID', 'APPLICATION', 'NAME', 'ENABLED', 'SCOPE', 'EVENTS', 'FORMAT', 'URL'], ...rows.map((rule) => [
    rule.id, rule.application, rule.name, rule.enabled ? 'yes' : `no${rule.disabledReason ? ` (${rule.disabledReason})` : ''}`, scope(rule), rule.eventTypes?.join(',') ?? 'all', rule.payloadFormat, loggableUrl(rule.url),
  ])];
  const widths = table2[0]!.map((_, column) => Math.max(...table2.map((row) => row[column]!.length)));
  for (const row of table2) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
}

/** The Harness seed's Test button: one sample event through the dispatcher to this rule only, then its log record. */
async function test(id: string): Promise<number> {
  const rule = await actions.rule(id);
  const { entry: log, pool } = await actions.test(actor, id, parseDuration(values.timeout!), (through) => {
    const disabled = rule.enabled ? '' : ' (the rule is disabled; a Test goes out anyway)';
    console.error(`sent a sample event to rule ${rule.id} through pool ${through}${disabled}; waiting for its delivery-log record…`);
  });
  if (!log) throw new CliError(`no delivery-log record within ${values.timeout}: is a dispatcher of pool "${pool}" running?`);
  const details = [log.httpStatus === null ? undefined : `HTTP ${log.httpStatus}`, log.latencyMs === null ? undefined : `${log.latencyMs} ms`, log.error ?? undefined].filter(Boolean).join(', ');
  console.log(`${log.outcome}${details ? `: ${details}` : ''} → ${log.url ?? '(no URL)'}`);
  return log.outcome === 'delivered' ? 0 : 1;
}

/** `2h` (that long ago) or an ISO date. */
function pointInTime(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(ms|s|m|h|d)$/.test(text)) return Date.now() - parseDuration(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new CliError(`--${flag}: "${text}" is neither a duration ago (2h) nor a date (2026-11-22T10:00:00Z)`);
  return at;
}

function dlqFilter(): DlqFilter {
  return { ruleId: values.rule, since: pointInTime('since', values.since), until: pointInTime('until', values.until), reason: values.reason, position: values.offset };
}

async function dlq(action: string | undefined): Promise<number> {
  const entries = filterDeadDeliveries(await readDeadDeliveries(kafka, registry, names), dlqFilter());
  if (action === 'list') {
    if (entries.length === 0) return console.log('no dead-lettered deliveries'), 0;
    console.log(['POSITION', 'DEAD-LETTERED AT', 'RULE', 'EVENT', 'TYPE', 'ATTEMPTS', 'REASON', 'ERROR'].join('\t'));
    for (const { partition, offset, at, reason, error, command } of entries) {
      console.log([`${partition}:${offset}`, new Date(at).toISOString(), command?.ruleId ?? '-', command?.event.eventId ?? '-', command?.event.type ?? '-', command?.attempt ?? '-', reason, error].join('\t'));
    }
    return 0;
  }
  if (action !== 'replay') throw new CliError('usage: npm run rules -- dlq list|replay [filters]');
  if (!values.all && !values.rule && !values.since && !values.offset) throw new CliError('say what to replay: --offset P:O, --rule ID, --since …, or --all');
  const bar = progressLine();
  const { replayed, refused } = await actions.replay(actor, entries, (sent, of) => {
    const width = 30;
    const filled = Math.round((sent / of) * width);
    bar.update(`replaying [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${sent}/${of}`);
  });
  bar.done();
  for (const { entry, why } of refused) console.log(`not replayed ${entry.partition}:${entry.offset}: ${why}`);
  console.log(`replayed ${replayed}, not replayed ${refused.length}`);
  return refused.length === 0 ? 0 : 1;
}

/** How long a retirement waits for matchers to apply the tombstone before it checks that no command arrived after. */
const RETIRE_SETTLE_MS = 3000;

async function pools(action: string | undefined, pool: string | undefined): Promise<number> {
  const table = await resources.pools();
  if (action === 'list') {
    const announced = [...table.values()].sort((a, b) => a.pool.localeCompare(b.pool));
    if (announced.length === 0) return console.log('no dispatcher pools have announced themselves'), 0;
    const admin = kafka.admin();
    await admin.connect();
    closers.push(() => admin.disconnect());
    const rows = [['POOL', 'TAGS', 'ANNOUNCED', 'GROUP', 'MEMBERS']];
    for (const entry of announced) {
      const state = await poolState(admin, names, entry.pool, poolGroupId(names, entry.pool), entry);
      rows.push([entry.pool, entry.tags.join(',') || '-', new Date(entry.updatedAt).toISOString(), state.group, state.members ? String(state.members) : 'none (stopped?)']);
    }
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
    return 0;
  }
  if (action !== 'retire' || !pool) throw new CliError('usage: npm run rules -- pools list | pools retire <pool> [--group G] [--force [--timeout 30s]]');
  const drained = progressLine();
  let result: RetirementResult;
  try {
    result = await actions.retirePool(actor, pool, {
      group: values.group ?? poolGroupId(names, pool), force: values.force ?? false, emptyTimeoutMs: parseDuration(values.timeout!), settleMs: RETIRE_SETTLE_MS,
      onProgress: (count) => drained.update(`dead-lettering ${count}`),
    });
  } catch (error) {
    if (error instanceof RetirementRefused) throw new CliError(`pool ${pool} not retired: ${error.message}`);
    throw error;
  }
  drained.done();
  const undecodable = result.undecodable ? ` (${result.undecodable} undecodable, kept with their decode reason)` : '';
  console.log(`pool ${pool} ${result.tombstoned ? 'retired: matchers no longer route to it' : 'was already retired'}; dead-lettered ${result.deadLettered} command(s)${undecodable} `
    + `from ${result.topics.length} topic(s) to ${names.deliveriesDlq} as ${POOL_RETIRED}; resend them through another pool with \`npm run rules -- dlq replay --all --reason ${POOL_RETIRED}\``);
  return 0;
}

async function main(): Promise<number> {
  const [command, argument] = positionals;
  switch (command) {
    case 'put':
      await put();
      return 0;
    case 'get':
      console.log(JSON.stringify(show(await actions.rule(ruleId(argument))), null, 2));
      return 0;
    case 'list':
      list(await resources.rules());
      return 0;
    case 'enable':
    case 'disable':
      await setEnabled(ruleId(argument), command === 'enable');
      return 0;
    case 'delete':
      await actions.delete(actor, ruleId(argument));
      console.log(`rule ${argument} deleted`);
      return 0;
    case 'delete-application': {
      if (!argument) throw new CliError('which application? give its id');
      const deleted = await actions.deleteApplication(actor, argument);
      console.log(`deleted ${deleted.length} rule(s) of application ${argument}`);
      return 0;
    }
    case 'rotate-secret':
      await rotateSecret(ruleId(argument));
      return 0;
    case 'test':
      return test(ruleId(argument));
    case 'dlq':
      return dlq(argument);
    case 'pools':
      return pools(argument, positionals[2]);
    default:
      throw new CliError(`which command? one of ${Object.keys(COMMANDS).join(', ')}; see --help`, USAGE_EXIT_CODE);
  }
}

await runCli(async () => {
  try {
    return await main();
  } catch (error) {
    if (error instanceof RuleInputError || error instanceof RuleValidationError) {
      throw new CliError(`invalid rule, nothing published: ${error.issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; ')}`);
    }
    if (error instanceof ActionError) throw new CliError(error.message);
    throw error;
  }
}, () => Promise.allSettled(closers.reverse().map((close) => close())));
