/**
 * npm run stack:up | stack:down | stack:status | stack:logs [-- kafka|registry] [--follow] | stack:fetch
 */
import { spawn } from 'node:child_process';
import { parseCommandLine } from '../services/common/cli.ts';
import { ensureArtifacts } from './artifacts.ts';
import { externalEndpoints, logFiles, stackDown, stackSettings, stackStatus, stackUp } from './index.ts';

const progress = (line: string) => process.stderr.write(`stack › ${line}\n`);

const USAGE = `
usage: npm run stack:up | stack:down | stack:status | stack:logs [-- kafka|registry] [-f] [-n 100] | stack:fetch

The local Kafka (KRaft) and Apicurio Registry as JVM processes from Maven Central jars, on 127.0.0.1 (STACK_* settings).
`;

async function main(): Promise<number> {
  const { positionals, values } = parseCommandLine({
    allowPositionals: true,
    options: { follow: { type: 'boolean', short: 'f', default: false }, lines: { type: 'string', short: 'n', default: '100' }, help: { type: 'boolean', short: 'h' } },
  }, USAGE, { up: [], down: [], status: [], logs: [], fetch: [] });
  const [command, ...rest] = positionals;
  const external = externalEndpoints();
  const settings = stackSettings();

  switch (command) {
    case 'up': {
      if (external) {
        progress(`KAFKA_BROKERS and SCHEMA_REGISTRY_URL are set: using ${external.brokers.join(',')} and ${external.registryUrl}; nothing started`);
        return 0;
      }
      const began = Date.now();
      const { brokers, registryUrl, started } = await stackUp(settings, progress);
      if (started.length) progress(`up in ${((Date.now() - began) / 1000).toFixed(1)} s`);
      console.log(`KAFKA_BROKERS=${brokers.join(',')}\nSCHEMA_REGISTRY_URL=${registryUrl}`);
      return 0;
    }
    case 'down':
      await stackDown(settings, progress);
      return 0;
    case 'status': {
      if (external) progress('KAFKA_BROKERS and SCHEMA_REGISTRY_URL are set: services use those, not this local stack');
      const status = await stackStatus(settings);
      const line = (name: string, s: { pid?: number; ready: boolean }, where: string) =>
        console.log(`${name.padEnd(9)} ${s.ready ? 'ready  ' : s.pid ? 'starting' : 'stopped'} ${s.pid ? `pid ${s.pid}`.padEnd(11) : ''.padEnd(11)} ${where}`);
      line('kafka', status.kafka, status.endpoints.brokers.join(','));
      line('registry', status.registry, status.endpoints.registryUrl);
      return status.kafka.ready && status.registry.ready ? 0 : 3;
    }
    case 'logs': {
      const files = logFiles(settings);
      const which = rest.length ? rest : ['kafka', 'registry'];
      const unknown = which.filter((name) => !(name in files));
      if (unknown.length) throw new Error(`unknown component ${unknown.join(', ')}: choose kafka or registry`);
      const args = ['-n', values.lines!, ...(values.follow ? ['-F'] : []), ...which.map((name) => files[name as keyof typeof files])];
      return await new Promise((resolve) => spawn('tail', args, { stdio: 'inherit' }).on('exit', (code) => resolve(code ?? 0)));
    }
    case 'fetch':
      await ensureArtifacts(progress);
      progress('artifacts present');
      return 0;
    default:
      console.error(USAGE.trim());
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    progress(`error: ${error.message}`);
    process.exit(1);
  },
);
