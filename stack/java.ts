/** Finds a Java runtime of a given major version: an explicit *_JAVA_HOME, JAVA_HOME, the PATH, then /usr/lib/jvm. */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface JavaRuntime {
  bin: string;
  major: number;
}

async function javaMajor(bin: string): Promise<number | undefined> {
  try {
    const { stderr, stdout } = await run(bin, ['-version'], { timeout: 15_000 });
    const match = /version "(\d+)(?:\.(\d+))?/.exec(stderr + stdout);
    if (!match) return undefined;
    // Java 8 and older report "1.8.0_…".
    return match[1] === '1' ? Number(match[2]) : Number(match[1]);
  } catch {
    return undefined;
  }
}

async function candidates(homeVariable: string): Promise<string[]> {
  const homes = [process.env[homeVariable], process.env.JAVA_HOME].filter((home): home is string => Boolean(home));
  const jvmDir = '/usr/lib/jvm';
  const installed = await readdir(jvmDir).then((names) => names.sort().reverse().map((name) => join(jvmDir, name)), () => []);
  return [...homes.map((home) => join(home, 'bin', 'java')), 'java', ...installed.map((home) => join(home, 'bin', 'java'))];
}

/**
 * The first Java whose major version lies in [min, max]. `homeVariable` names the setting that pins one explicitly
 * (e.g. REGISTRY_JAVA_HOME), and the error says what to install when none fits.
 */
export async function findJava(purpose: string, homeVariable: string, min: number, max = Infinity): Promise<JavaRuntime> {
  const seen: string[] = [];
  for (const bin of await candidates(homeVariable)) {
    const major = await javaMajor(bin);
    if (major === undefined) continue;
    seen.push(`${bin} (${major})`);
    if (major >= min && major <= max) return { bin, major };
  }
  const range = max === Infinity ? `${min} or newer` : `${min} to ${max}`;
  throw new Error(
    `${purpose} needs Java ${range}; found ${seen.length ? seen.join(', ') : 'no Java at all'}.\n` +
      `Install one (e.g. \`apt-get install openjdk-17-jre-headless\`, or a Temurin ${min} JDK) and/or set ${homeVariable} to its home.`,
  );
}
