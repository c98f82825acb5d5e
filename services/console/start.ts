/**
 * npm start [-- --demo]: the product on its embedded default. Starts the local Kafka + registry stack unless
 * KAFKA_BROKERS and SCHEMA_REGISTRY_URL point at an existing cluster, creates the topics, registers the contracts,
 * then runs the services under a supervisor until Ctrl-C. With --demo (or `npm run demo`) it adds a local receiver,
 * a demo rule and a stream of sample events (see demo.ts).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { baseSettings, duration, integer, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { prepareCluster } from '../common/setup.ts';
import { externalEndpoints, stackSettings, stackUp } from '../../stack/index.ts';
import { DEMO_POOL, startDemo, type Demo } from './demo.ts';
import { Supervisor } from './supervisor.ts';

const { values } = parseArgs({ options: { demo: { type: 'boolean', default: false } } });
const say = (line: string) => process.stderr.write(`start › ${line}\n`);
const script = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const external = externalEndpoints();
const endpoints = external ?? (await stackUp(stackSettings(), (line) => say(`stack: ${line}`)));
if (external) say(`using Kafka at ${external.brokers.join(',')} and the registry at ${external.registryUrl}`);

const env = { KAFKA_BROKERS: endpoints.brokers.join(','), SCHEMA_REGISTRY_URL: endpoints.registryUrl };
const config = loadConfig({
  ...baseSettings,
  MATCHER_HTTP_PORT: integer(0, 65535).default(9401),
  DISPATCHER_HTTP_PORT: integer(0, 65535).default(9402),
  CONSOLE_HTTP_PORT: integer(0, 65535).default(8080),
  DEMO_DISPATCHER_HTTP_PORT: integer(0, 65535).default(9403),
  DEMO_RECEIVER_PORT: integer(0, 65535).default(9409),
  DEMO_EVENT_INTERVAL: duration('2s'),
  DEMO: z.stringbool().default(false),
}, { ...process.env, ...env });
const demo = values.demo || config.DEMO;
const logger = createLogger('start', 'warn');
await prepareCluster(config, logger, demo ? [DEMO_POOL] : []);
say('topics created and contracts registered');

const supervisor = new Supervisor(say);
supervisor.start({ name: 'matcher', script: script('../matcher/main.ts'), env });
supervisor.start({ name: 'dispatcher', script: script('../dispatcher/main.ts'), env });
supervisor.start({ name: 'console', script: script('./main.ts'), env });
let demoRun: Demo | undefined;
if (demo) {
  // The demo pool alone may dial loopback: the default pool keeps the SSRF guard's public-only policy.
  supervisor.start({
    name: 'dispatcher-demo',
    script: script('../dispatcher/main.ts'),
    env: { ...env, DISPATCHER_POOL: DEMO_POOL, DISPATCHER_TAGS: DEMO_POOL, DISPATCHER_ALLOW_NETWORKS: '127.0.0.0/8,::1/128', DISPATCHER_HTTP_PORT: String(config.DEMO_DISPATCHER_HTTP_PORT) },
  });
  const demoReady = async () => {
    const url = `http://127.0.0.1:${config.DEMO_DISPATCHER_HTTP_PORT}/readyz`;
    while (!(await fetch(url).then((response) => response.ok, () => false))) await new Promise((resolve) => setTimeout(resolve, 250));
  };
  demoRun = await startDemo(config, config.DEMO_RECEIVER_PORT, config.DEMO_EVENT_INTERVAL, logger, say, demoReady);
}

say(`console: http://127.0.0.1:${config.CONSOLE_HTTP_PORT}/ (log in with CONSOLE_TOKEN or the token in .stack/console-token)`);
say(`Kafka ${config.KAFKA_BROKERS.join(',')}, schema registry ${config.SCHEMA_REGISTRY_URL}`);
say(`ops endpoints: matcher http://127.0.0.1:${config.MATCHER_HTTP_PORT}/metrics, dispatcher http://127.0.0.1:${config.DISPATCHER_HTTP_PORT}/metrics`);
if (!demo) say('see deliveries arrive: npm run demo; manage rules: npm run rules -- list');
say('publish events: npm run publish-events -- --file events.jsonl');
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
