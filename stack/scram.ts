/**
 * Adds (or changes) a SCRAM user through the broker's admin API (AlterUserScramCredentials), with Kafka's own
 * kafka-configs tool: kafkajs cannot. The tool runs from the stack's jars, or inside the broker's container. One call
 * per mechanism (the broker refuses two credentials of one user in one request). The tool's --add-config-file mangles
 * SCRAM keys, so the password is an argument: this is for the local stacks' throwaway users.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { artifacts } from './artifacts.ts';
import { execInContainer } from './containers.ts';
import type { BrokerAdmin } from './index.ts';
import { findJava } from './java.ts';

const run = promisify(execFile);

async function runLocally(args: string[]): Promise<{ exitCode: number; output: string }> {
  const java = await findJava('Kafka', 'KAFKA_JAVA_HOME', 17, 23);
  try {
    await run(java.bin, ['-cp', `${artifacts.kafkaLibs}/*`, 'kafka.admin.ConfigCommand', ...args]);
    return { exitCode: 0, output: '' };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string; message: string };
    return { exitCode: typeof failed.code === 'number' ? failed.code : 1, output: failed.stderr || failed.message };
  }
}

export async function addScramUser(admin: BrokerAdmin, username: string, password: string, mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512'): Promise<void> {
  const args = ['--bootstrap-server', admin.bootstrap, '--alter', '--entity-type', 'users', '--entity-name', username, '--add-config', `${mechanism}=[password=${password}]`];
  const { exitCode, output } = admin.kind === 'jvm' ? await runLocally(args) : await execInContainer(admin.containerId, ['/opt/kafka/bin/kafka-configs.sh', ...args]);
  if (exitCode === 0) return;
  const said = output.split(password).join('[redacted]').trim().split('\n').slice(-5).join('\n');
  throw new Error(`adding SCRAM user ${username} failed: ${said || `exit ${exitCode}`}`);
}
