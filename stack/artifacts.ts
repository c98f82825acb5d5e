/**
 * The stack's JVM artifacts, fetched from Maven Central by Maven (stack/pom.xml) into stack/.cache once; later runs
 * find them there (and Maven keeps its own copy in ~/.m2, so a fresh clone on the same machine downloads nothing).
 * Their versions, set in stack/pom.xml alone, also pin the container images.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const stackDir = fileURLToPath(new URL('.', import.meta.url));
const pom = join(stackDir, 'pom.xml');
const cacheDir = join(stackDir, '.cache');

function pomProperty(name: string): string {
  const match = new RegExp(`<${name}>([^<]+)</${name}>`).exec(readFileSync(pom, 'utf8'));
  if (!match) throw new Error(`stack/pom.xml has no <${name}> property`);
  return match[1]!;
}

export const versions = { kafka: pomProperty('kafka.version'), apicurio: pomProperty('apicurio.version') };

/**
 * The container images of the same versions (the test harness's container path, stack/containers.ts; docker-compose.yml
 * names them too, and test/deploy checks it does), so the JVM and container paths cannot drift apart.
 */
export const images = { kafka: `apache/kafka:${versions.kafka}`, registry: `apicurio/apicurio-registry:${versions.apicurio}` };

export const artifacts = {
  kafkaLibs: join(cacheDir, `kafka-${versions.kafka}`, 'libs'),
  registryJar: join(cacheDir, `apicurio-registry-${versions.apicurio}`, 'quarkus-run.jar'),
  /** Written last, so a download interrupted half-way is redone rather than trusted. */
  marker: join(cacheDir, `complete-kafka-${versions.kafka}-apicurio-${versions.apicurio}`),
};

export function artifactsPresent(): boolean {
  return existsSync(artifacts.marker) && existsSync(artifacts.registryJar);
}

/** Runs Maven unless the artifacts are already there; `progress` gets one line per downloaded artifact. */
export async function ensureArtifacts(progress: (line: string) => void): Promise<void> {
  if (artifactsPresent()) return;
  progress(`fetching Kafka ${versions.kafka} and Apicurio Registry ${versions.apicurio} from Maven Central (first run only, about 200 MB)`);
  const started = Date.now();
  let downloaded = 0;
  await new Promise<void>((resolve, reject) => {
    const maven = spawn('mvn', ['-B', '-f', pom, 'package'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      const done = /Downloaded from \S+: \S+\/([^/\s]+) \(([^)]+)\)/.exec(line);
      if (done) progress(`  [${++downloaded}] ${done[1]} (${done[2]})`);
    };
    let buffered = '';
    const onData = (chunk: Buffer) => {
      const lines = (buffered + chunk.toString()).split('\n');
      buffered = lines.pop() ?? '';
      lines.forEach(onLine);
    };
    maven.stdout.on('data', onData);
    maven.stderr.on('data', onData);
    maven.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT'
        ? new Error('Maven (mvn) is not installed; install it (`apt-get install maven`, with a JDK 17+) and run again.')
        : error));
    maven.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`Maven could not fetch the stack (exit ${code}). Its last lines:\n${tail.join('\n')}\n` +
            'Check that Maven Central is reachable (or a mirror is set in ~/.m2/settings.xml), then run `npm run stack:fetch` again.')));
  });
  await writeFile(artifacts.marker, new Date().toISOString());
  progress(`fetched ${downloaded} artifacts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
