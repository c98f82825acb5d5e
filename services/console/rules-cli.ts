/**
 * npm run rules -- <command>: the operator's rules tool. Rules change only by producing to the event-rules topic.
 * Its result goes to stdout, progress and errors to stderr (one line, exit code 1; 2 for a command line it does not
 * understand); `--help` prints the usage below.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { contracts, type DeliveryLog, type EventRule } from '../../schemas/index.ts';
import { baseSettings, loadConfig } from '../common/config.ts';
import { cliLogger, CliError, orExit, parseCommandLine, runCli, USAGE_EXIT_CODE } from '../common/cli.ts';
import { deliveryId } from '../common/delivery-id.ts';
import { newDeliveryCommand } from '../common/deliveries.ts';
import { parseDuration } from '../common/duration.ts';
import { progressLine } from '../common/progress.ts';
import { kafkaConnection, createKafka, type Kafka } from '../common/kafka.ts';
import { choosePool, poolGroupId, PoolsTable } from '../common/pools.ts';
import { unreachableWarnings } from '../common/reachability.ts';
import { registryConnection, SchemaRegistryClient } from '../common/registry.ts';
import { RuleValidationError, RuleWriter, StaleRuleError } from '../common/rule-writer.ts';
import { generateSecret, loggableUrl } from '../common/rules.ts';
import { RulesTable } from '../common/rules-table.ts';
import { topicNames } from '../common/topics.ts';
import { CommandSender } from './command-sender.ts';
import { POOL_RETIRED, poolState, retirePool, RetirementRefused, type RetirementResult } from './pool-retirement.ts';
import { filterDeadDeliveries, planReplay, readDeadDeliveries, sendReplays, type DlqFilter } from './dlq.ts';
import { resolvePut, sampleEvent, withEnabled, withRotatedSecret } from './rule-changes.ts';
import { parseRuleFile, ruleFromFlags, RuleInputError, type RulePut } from './rule-input.ts';
import { HEADER_MASK, ruleView } from './rule-view.ts';


const USAGE = `
usage: npm run rules -- <command> [flags]

  put --file rule.json|rule.yaml
  put --id ID --application APP --name NAME --url URL [--event-types a,b|all]
      [--scope all|workflows:<ids|all>|pipelines:<ids|all>] [--header K=V]... [--secret whsec_...]...
      [--selector TAG]... [--format standard|harness-v1|sharering] [--no-user-data] [--enabled|--disabled]
      [--rate-limit N]      (an update keeps the rule's secrets, headers and enabled state unless told
                            otherwise; --header K=${HEADER_MASK} keeps K's value and drops headers not given)
  get ID                    the rule as JSON, secrets as fingerprints, header values as ${HEADER_MASK}
  list [--application APP]  a table
  enable ID | disable ID | delete ID | delete-application APP
  rotate-secret ID [--overlap 24h] [--secret whsec_...]
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
const closers: Array<() => Promise<void>> = [];

/** A writer whose changes are made from, and read back in, rulesTable(). */
async function writer(): Promise<RuleWriter> {
  const created = await RuleWriter.create(kafka, registry, names.eventRules, await rulesTable());
  closers.push(() => created.close());
  return created;
}

let table: Promise<RulesTable> | undefined;

/** The rules as they are now: the whole event-rules topic, read to its end (once per run), and followed on. */
function rulesTable(): Promise<RulesTable> {
  table ??= (async () => {
    const started = new RulesTable({ kafka, registry, topic: names.eventRules, logger, groupPrefix: names.group('rules-cli') });
    closers.push(() => started.stop());
    await started.start();
    return started;
  })();
  return table;
}

/** The dispatcher pools as announced now: the whole dispatcher-pools topic, read to its end. */
async function poolsTable(): Promise<PoolsTable> {
  const table = new PoolsTable({ kafka, registry, topic: names.dispatcherPools, logger, groupPrefix: names.group('rules-cli') });
  closers.push(() => table.stop());
  await table.start();
  return table;
}

async function existing(id: string | undefined): Promise<EventRule> {
  if (!id) throw new CliError('which rule? give its id');
  const rule = (await rulesTable()).get(id);
  if (!rule) throw new CliError(`no rule with id "${id}"`);
  return rule;
}

/** A rule as the console's API shows it (secrets fingerprinted, header values masked), with readable times. */
const show = (rule: EventRule) => {
  const view = ruleView(rule);
  return { ...view, secrets: view.secrets.map(({ fingerprint, notAfter }) => ({ fingerprint, notAfter: notAfter && new Date(notAfter).toISOString() })), updatedAt: new Date(rule.updatedAt).toISOString() };
};

async function sender(): Promise<CommandSender> {
  const created = await CommandSender.create(kafka, registry);
  closers.push(() => created.close());
  return created;
}

/** After a save: why the rule will not be delivered as the pools stand, if it will not (the rule is saved either way). */
async function warnUnreachable(rule: EventRule): Promise<void> {
  const warnings = await unreachableWarnings(rule, sampleEvent(rule), (await poolsTable()).values());
  for (const warning of warnings) console.error(`warning: saved, but it will not be delivered: ${warning}`);
}

async function put(): Promise<void> {
  let input: RulePut;
  if (values.file) input = parseRuleFile(await readFile(values.file, 'utf8').catch((error: Error) => { throw new CliError(`cannot read ${values.file}: ${error.message}`); }), values.file);
  else input = ruleFromFlags(values);
  const current = typeof input.id === 'string' ? (await rulesTable()).get(input.id) : undefined;
  const { draft, generatedSecret } = resolvePut(input, current);
  const rule = await (await writer()).change(draft.id, current, draft);
  console.log(`put rule ${rule!.id} (${rule!.enabled ? 'enabled' : 'disabled: enable it with `npm run rules -- enable ' + rule!.id + '`'})`);
  if (generatedSecret) console.log(`signing secret (shown once, store it now): ${generatedSecret}`);
  await warnUnreachable(rule!);
}

async function setEnabled(id: string | undefined, enabled: boolean): Promise<void> {
  const rule = await existing(id);
  const saved = await (await writer()).change(rule.id, rule, withEnabled(rule, enabled));
  console.log(`rule ${rule.id} ${enabled ? 'enabled' : 'disabled'}`);
  if (enabled) await warnUnreachable(saved!);
}

async function rotateSecret(id: string | undefined): Promise<void> {
  const rule = await existing(id);
  const now = Date.now();
  const overlapMs = parseDuration(values.overlap!);
  const fresh = values.secret?.[0] ?? generateSecret();
  await (await writer()).change(rule.id, rule, withRotatedSecret(rule, fresh, overlapMs, now));
  console.log(`rule ${rule.id}: new secret added; the old one(s) sign until ${new Date(now + overlapMs).toISOString()}`);
  if (!values.secret) console.log(`new signing secret (shown once, store it now): ${fresh}`);
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
async function test(id: string | undefined): Promise<number> {
  const rule = await existing(id);
  const event = sampleEvent(rule);
  const route = choosePool(rule, event, (await poolsTable()).values());
  if (!route.ok) throw new CliError(route.error);

  const id2 = deliveryId(event.eventId, rule.id);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(names.deliveryLog);
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: names.group(`rules-cli-test-${randomUUID()}`), maxWaitTimeInMs: 250 });
  closers.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic: names.deliveryLog });
  const timeoutMs = parseDuration(values.timeout!);
  const outcome = new Promise<DeliveryLog | undefined>((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    consumer.run({
      eachMessage: async ({ message }) => {
        if (message.key?.toString() !== id2) return;
        clearTimeout(timer);
        resolve(await registry.decode(contracts.deliveryLog, message.value));
      },
    }).catch(reject);
  });
  for (const { partition, offset } of ends) consumer.seek({ topic: names.deliveryLog, partition, offset });

  await (await sender()).send(names.deliveries(route.pool), newDeliveryCommand(event, rule.id, Date.now(), { sample: true }));
  const disabled = rule.enabled ? '' : ' (the rule is disabled; a Test goes out anyway)';
  console.error(`sent a sample ${event.type} event to rule ${rule.id} through pool ${route.pool}${disabled}; waiting for its delivery-log record…`);

  const log = await outcome;
  if (!log) throw new CliError(`no delivery-log record within ${values.timeout}: is a dispatcher of pool "${route.pool}" running?`);
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
  const [table, pools] = [await rulesTable(), await poolsTable()];
  const plan = planReplay(entries, (id) => table.get(id), pools.values(), names);
  for (const { entry, why } of plan.refused) console.log(`not replayed ${entry.partition}:${entry.offset}: ${why}`);
  const bar = progressLine();
  const done = await sendReplays(plan, await sender(), (sent) => {
    const width = 30;
    const filled = Math.round((sent / plan.replay.length) * width);
    bar.update(`replaying [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${sent}/${plan.replay.length}`);
  });
  bar.done();
  console.log(`replayed ${done}, not replayed ${plan.refused.length}`);
  return plan.refused.length === 0 ? 0 : 1;
}

/** How long a retirement waits for matchers to apply the tombstone before it checks that no command arrived after. */
const RETIRE_SETTLE_MS = 3000;

async function pools(action: string | undefined, pool: string | undefined): Promise<number> {
  const table = await poolsTable();
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
  const rules = await rulesTable();
  const drained = progressLine();
  let result: RetirementResult;
  try {
    result = await retirePool({ service: 'rules-cli', kafka, registry, names, announcement: (name) => table.get(name), rule: (id) => rules.get(id) }, pool, {
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
      console.log(JSON.stringify(show(await existing(argument)), null, 2));
      return 0;
    case 'list':
      list(await rulesTable());
      return 0;
    case 'enable':
    case 'disable':
      await setEnabled(argument, command === 'enable');
      return 0;
    case 'delete':
      const rule = await existing(argument);
      await (await writer()).change(rule.id, rule, null);
      console.log(`rule ${rule.id} deleted`);
      return 0;
    case 'delete-application': {
      if (!argument) throw new CliError('which application? give its id');
      const rules = [...(await rulesTable()).values()].filter((rule) => rule.application === argument);
      const rulesWriter = await writer();
      // One by one: a rule changed meanwhile stops the run, naming it, with the ones before it deleted and said so.
      for (const [index, rule] of rules.entries()) {
        await rulesWriter.change(rule.id, rule, null).catch((error: Error) => { throw new CliError(`deleted ${index} of ${rules.length} rule(s) of application ${argument}; ${error.message}`); });
      }
      console.log(`deleted ${rules.length} rule(s) of application ${argument}`);
      return 0;
    }
    case 'rotate-secret':
      await rotateSecret(argument);
      return 0;
    case 'test':
      return test(argument);
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
    if (error instanceof StaleRuleError) throw new CliError(error.message);
    throw error;
  }
}, () => Promise.allSettled(closers.reverse().map((close) => close())));
