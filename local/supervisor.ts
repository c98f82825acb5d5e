/**
 * Runs the services as child processes for `npm start`: their log records (stdout) go to `relay` with the child's
 * name, anything they write to stderr (a crash before their logger exists) to ours with that name in front; a child that dies
 * is restarted with backoff (1 s doubling to 30 s, reset after a minute of health), and stop() ends them all cleanly
 * (SIGTERM, then SIGKILL after a grace period).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ChildSpec {
  name: string;
  script: string;
  args?: string[];
  /** Flags for the child's Node, before its script. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

interface Running {
  spec: ChildSpec;
  child: ChildProcess | undefined;
  backoffMs: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
}

export class Supervisor {
  readonly #children = new Map<string, Running>();
  readonly #say: (line: string) => void;
  readonly #relay: (name: string, line: string) => void;
  #stopping = false;

  constructor(say: (line: string) => void, relay: (name: string, line: string) => void) {
    this.#say = say;
    this.#relay = relay;
  }

  start(spec: ChildSpec): void {
    const running: Running = { spec, child: undefined, backoffMs: 1000, startedAt: 0 };
    this.#children.set(spec.name, running);
    this.#spawn(running);
  }

  #spawn(running: Running): void {
    const { spec } = running;
    running.startedAt = Date.now();
    const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), spec.script, ...(spec.args ?? [])], { env: { ...process.env, ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => this.#relay(spec.name, line));
    createInterface({ input: child.stderr! }).on('line', (line) => process.stderr.write(`[${spec.name}] ${line}\n`));
    child.on('exit', (code, signal) => {
      running.child = undefined;
      if (this.#stopping) return;
      if (Date.now() - running.startedAt > 60_000) running.backoffMs = 1000;
      this.#say(`${spec.name} exited (${signal ?? `code ${code}`}); restarting in ${running.backoffMs / 1000} s`);
      running.timer = setTimeout(() => this.#spawn(running), running.backoffMs);
      running.backoffMs = Math.min(running.backoffMs * 2, 30_000);
    });
  }

  async stop(graceMs = 30_000): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#children.values()].map(async (running) => {
      clearTimeout(running.timer);
      const child = running.child;
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }));
  }
}
