/**
 * npm start [-- --demo]: the product on its embedded default. Starts the local Kafka + registry stack unless
 * KAFKA_BROKERS and SCHEMA_REGISTRY_URL point at an existing cluster, creates the topics, registers the contracts,
 * then runs the services under a supervisor until Ctrl-C. With --demo (or `npm run demo`) it adds a local receiver,
 * a demo rule and a stream of sample events (see demo.ts).
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { orExit, orExitAsync, parseCommandLine } from '../services/common/cli.ts';
import { baseSettings, duration, integer, loadConfig } from '../services/common/config.ts';
import { createLogger, logRelay } from '../services/common/logger.ts';
import { prepareCluster } from '../services/common/setup.ts';
import { CONSOLE_NODE_FLAGS } from '../services/console/node-flags.ts';
import { externalEndpoints, stackSettings, stackUp } from '../stack/index.ts';
import { DEMO_POOL, startDemo, type Demo } from './demo.ts';
import { Supervisor } from './supervisor.ts';

const USAGE = `
usage: npm start [-- --demo]     (npm run demo is the same as npm start -- --demo)

Starts the local Kafka + schema registry stack (unless KAFKA_BROKERS and SCHEMA_REGISTRY_URL name a cluster), creates
the topics, registers the contracts and runs the matcher, the dispatcher and the console until Ctrl-C. --demo adds a
local receiver, an enabled demo rule and a sample event every DEMO_EVENT_INTERVAL. Logs are one readable line per
record on a terminal, JSON otherwise (LOG_FORMAT=pretty|json decides).
`;
const { values } = parseCommandLine({ options: { demo: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } }, USAGE);
const logging = orExit(() => loadConfig({ LOG_LEVEL: baseSettings.LOG_LEVEL, LOG_FORMAT: baseSettings.LOG_FORMAT }));
const log = createLogger('start', logging.LOG_LEVEL, { format: logging.LOG_FORMAT });
const say = (line: string) => log.info(line);
const script = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const external = externalEndpoints();
const endpoints = external ?? (await stackUp(stackSettings(), (line) => say(`stack: ${line}`)));
if (external) say(`using Kafka at ${external.brokers.join(',')} and the registry at ${external.registryUrl}`);

// The children log JSON whatever the terminal: this process renders their records (logRelay), so it alone decides the format.
const env = { KAFKA_BROKERS: endpoints.brokers.join(','), SCHEMA_REGISTRY_URL: endpoints.registryUrl, LOG_FORMAT: 'json' };
const config = orExit(() => loadConfig({
  ...baseSettings,
  MATCHER_HTTP_PORT: integer(0, 65535).default(9401),
  DISPATCHER_HTTP_PORT: integer(0, 65535).default(9402),
  CONSOLE_HTTP_PORT: integer(0, 65535).default(8080),
  DEMO_DISPATCHER_HTTP_PORT: integer(0, 65535).default(9403),
  DEMO_RECEIVER_PORT: integer(0, 65535).default(9409),
  DEMO_EVENT_INTERVAL: duration('2s'),
  DEMO: z.stringbool().default(false),
}, { ...process.env, ...env }));
const demo = values.demo || config.DEMO;
// The clients' own messages at warn and above only: topic lists and connection chatter are not the start-up's story.
const logger = log.child({}, { level: 'warn' });
// A failure is one line saying what to do, as from `npm run setup`, not a stack trace.
await orExitAsync(() => prepareCluster(config, logger, demo ? [DEMO_POOL] : []));
say('topics created and contracts registered');

const supervisor = new Supervisor((line) => log.warn(line), logRelay(logging.LOG_FORMAT));
supervisor.start({ name: 'matcher', script: script('../services/matcher/main.ts'), env });
supervisor.start({ name: 'dispatcher', script: script('../services/dispatcher/main.ts'), env });
supervisor.start({ name: 'console', script: script('../services/console/main.ts'), nodeArgs: CONSOLE_NODE_FLAGS, env });
let demoRun: Demo | undefined;
if (demo) {
  // The demo pool alone may dial loopback: the default pool keeps the SSRF guard's public-only policy.
  supervisor.start({
    name: 'dispatcher-demo',
    script: script('../services/dispatcher/main.ts'),
    env: { ...env, DISPATCHER_POOL: DEMO_POOL, DISPATCHER_TAGS: DEMO_POOL, DISPATCHER_ALLOW_NETWORKS: '127.0.0.0/8,::1/128', DISPATCHER_HTTP_PORT: String(config.DEMO_DISPATCHER_HTTP_PORT) },
  });
  const demoReady = async () => {
    const url = `http://127.0.0.1:${config.DEMO_DISPATCHER_HTTP_PORT}/readyz`;
    while (!(await fetch(url).then((response) => response.ok, () => false))) await new Promise((resolve) => setTimeout(resolve, 250));
  };
  const demoLog = log.child({ component: 'demo' });
  demoRun = await startDemo(config, config.DEMO_RECEIVER_PORT, config.DEMO_EVENT_INTERVAL, logger, (line) => demoLog.info(line), demoReady);
}

say(`console: http://127.0.0.1:${config.CONSOLE_HTTP_PORT}/ (log in with CONSOLE_TOKEN or the token in .stack/console-token)`);
say(`Kafka ${config.KAFKA_BROKERS.join(',')}, schema registry ${config.SCHEMA_REGISTRY_URL}`);
say(`ops endpoints: matcher http://127.0.0.1:${config.MATCHER_HTTP_PORT}/metrics, dispatcher http://127.0.0.1:${config.DISPATCHER_HTTP_PORT}/metrics`);
if (!demo) say('see deliveries arrive: npm run demo; manage rules: npm run rules -- list');
say('publish events: npm run publish-events -- --file examples/events.jsonl');
say('Ctrl-C stops the services; the stack keeps running until `npm run stack:down`.');

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    say('stopping…');
    void (async () => {
      await demoRun?.stop();
      await supervisor.stop();
      process.exit(0);
    })();
  });
}
