/**
 * A service process the chaos run kills: started like the benchmarks start it (bench/support.ts startService), kill -9'd
 * on demand, and started again by itself when it dies unasked (as `npm start`'s supervisor would), so the run goes on
 * and counts it. Keeps the tail of its output for error reports.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterConfig } from '../../services/common/setup.ts';
import { startService, type ServiceProcess } from '../support.ts';

const TAIL_CHARS = 16_384;

const exited = (child: ChildProcess) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined));

export class KillableService {
  readonly name: 'matcher' | 'dispatcher';
  /** Exits nobody asked for (the process gave up, e.g. while the broker was down). */
  unplannedExits = 0;
  readonly #cluster: ClusterConfig;
  readonly #killed = new WeakSet<ChildProcess>();
  #current: ServiceProcess | undefined;
  #starting: Promise<void> | undefined;
  #stopping = false;
  #tail = '';

  constructor(name: 'matcher' | 'dispatcher', cluster: ClusterConfig) {
    this.name = name;
    this.#cluster = cluster;
  }

  /** The end of its output (pino logs and errors), across restarts. */
  get output(): string {
    return this.#tail;
  }

  /** Starts it and resolves once it is ready; a start that fails (the broker is down, say) is tried again. */
  start(): Promise<void> {
    return (this.#starting ??= this.#start().finally(() => (this.#starting = undefined)));
  }

  /** kill -9, once it is up (a restart under way is waited for); resolves once the process is gone. */
  async kill(): Promise<void> {
    await this.#starting;
    const child = this.#current!.child;
    this.#current = undefined;
    this.#killed.add(child);
    child.kill('SIGKILL');
    await exited(child);
  }

  /** A clean stop (SIGTERM), SIGKILL if it has not exited after 30 s. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#starting;
    const child = this.#current?.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited(child);
    clearTimeout(timer);
  }

  async #start(): Promise<void> {
    while (!this.#stopping) {
      try {
        this.#current = await startService(this.name, this.#cluster, { onOutput: (chunk) => this.#keep(chunk.toString()) });
      } catch (error) {
        this.#keep(`[chaos] ${(error as Error).message}; starting it again in 1 s\n`);
        await sleep(1000);
        continue;
      }
      const { child } = this.#current;
      child.once('exit', (code, signal) => {
        if (this.#killed.has(child) || this.#stopping) return;
        this.unplannedExits += 1;
        this.#current = undefined;
        this.#keep(`[chaos] exited unasked (${signal ?? `code ${code}`}); starting it again\n`);
        void this.start();
      });
      return;
    }
  }

  #keep(text: string): void {
    this.#tail = (this.#tail + text).slice(-TAIL_CHARS);
  }
}
