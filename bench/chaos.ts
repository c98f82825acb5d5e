/**
 * npm run chaos — kill -9 the matcher and the dispatcher at random moments (5 times each) and restart the broker once
 * during a 20,000-event run with 3 rules, on a private stack; then check that every (event, rule) pair reached its
 * receiver at least once, duplicates with the same webhook-id. Options: --events 20000 --rules 3 --kills 5
 * --broker-restarts 1 --seconds 90 (publishing window) --drain-seconds 120 --seed N (replays a strike plan)
 * --secured (every client through the stack's SASL_SSL listener: SCRAM-SHA-512 over TLS with a private CA).
 * Writes bench/results/chaos.json; exits 1 if a pair was lost, a duplicate's webhook-id differed or a signature failed.
 */
import { chaosDefaults, runChaos } from './chaos/run.ts';
import { progress, writeResults } from './support.ts';
import { parseCommandLine } from '../services/common/cli.ts';

const USAGE = `
usage: npm run chaos -- [--events 20000] [--rules 3] [--kills 5] [--broker-restarts 1] [--seconds 90] [--drain-seconds 120] [--seed N] [--secured]

kill -9 of the services and a broker restart during a run on a private stack; exit 1 if a delivery was lost (docs/benchmarks.md).
`;
const { values } = parseCommandLine({ options: {
  help: { type: 'boolean', short: 'h' },
  events: { type: 'string', default: String(chaosDefaults.events) },
  rules: { type: 'string', default: String(chaosDefaults.rules) },
  kills: { type: 'string', default: String(chaosDefaults.kills) },
  'broker-restarts': { type: 'string', default: String(chaosDefaults.brokerRestarts) },
  seconds: { type: 'string', default: String(chaosDefaults.publishMs / 1000) },
  'drain-seconds': { type: 'string', default: String(chaosDefaults.drainTimeoutMs / 1000) },
  seed: { type: 'string' },
  secured: { type: 'boolean', default: false },
} }, USAGE);

const { serviceOutput, ...result } = await runChaos({
  events: Number(values.events),
  rules: Number(values.rules),
  kills: Number(values.kills),
  brokerRestarts: Number(values['broker-restarts']),
  publishMs: Number(values.seconds) * 1000,
  drainTimeoutMs: Number(values['drain-seconds']) * 1000,
  secured: values.secured,
  ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
}, progress);

const down = (target: string) => result.strikes.filter((strike) => strike.target === target).map((strike) => (strike.downMs / 1000).toFixed(1)).join(', ') || '—';
console.log(`
pairs (events × rules)        ${result.options.events} × ${result.options.rules} = ${result.expectedPairs}
delivered pairs               ${result.deliveredPairs}
lost                          ${result.lost}${result.lost ? '   ✗' : ''}
duplicate POSTs               ${result.duplicatePosts} (on ${result.duplicatedPairs} pairs; ${result.posts} POSTs in all)
duplicates' webhook-id        ${result.webhookIdMismatches === 0 ? 'always the first copy\'s' : `${result.webhookIdMismatches} differ   ✗`}
bad signatures                ${result.badSignatures}${result.badSignatures ? '   ✗' : ''}${result.unexpectedPosts ? `\nPOSTs of unknown events       ${result.unexpectedPosts}   ✗` : ''}
kill -9 matcher               ${result.kills.matcher} (down ${down('matcher')} s)
kill -9 dispatcher            ${result.kills.dispatcher} (down ${down('dispatcher')} s)
broker restarts (kill -9)     ${result.brokerRestarts} (down ${down('broker')} s)
unplanned exits               matcher ${result.unplannedExits.matcher}, dispatcher ${result.unplannedExits.dispatcher}
events published again        ${result.republishedEvents}
duration                      ${result.runSeconds} s from the first publish to the last pair (${result.wallSeconds} s with the stack's start)
seed                          ${result.options.seed}`);
if (!result.ok) {
  console.log(`\nfirst lost pairs (event → rule, webhook-id):\n${result.lostSample.map((pair) => `  ${pair.eventId} → ${pair.ruleId}  ${pair.deliveryId}`).join('\n')}`);
  for (const [name, output] of Object.entries(serviceOutput)) console.log(`\n--- the end of the ${name}'s output ---\n${output}`);
}
console.log(`wrote ${await writeResults('chaos', result)}`);
process.exit(result.ok ? 0 : 1);
