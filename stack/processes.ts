/** Background JVM processes owned by one stack directory: started detached, tracked by pid file, stopped by pid. */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DaemonSpec {
  command: string;
  args: string[];
  cwd: string;
  logFile: string;
  pidFile: string;
}

/** Starts a process that outlives this one; its output goes to `logFile`. */
export async function startDaemon({ command, args, cwd, logFile, pidFile }: DaemonSpec): Promise<number> {
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', log, log] });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    await writeFile(pidFile, `${pid}\n`);
    return pid;
  } finally {
    closeSync(log);
  }
}

/**
 * The pid in `pidFile` if that process is alive and is really ours: its command line must mention `marker` (the stack
 * directory), so a recycled pid of some unrelated process is never reported, let alone killed.
 */
export async function runningPid(pidFile: string, marker: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) {
    try {
      process.kill(pid, 0); // no /proc (macOS): fall back to "a process with this pid exists"
    } catch {
      return undefined;
    }
    return pid;
  }
  return cmdline.includes(marker) ? pid : undefined;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Removes the pid file. */
export async function stopDaemon(pidFile: string, marker: string, graceMs = 20_000): Promise<boolean> {
  const pid = await runningPid(pidFile, marker);
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while ((await runningPid(pidFile, marker)) !== undefined) {
      if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
      await sleep(200);
    }
  }
  await rm(pidFile, { force: true });
  return pid !== undefined;
}

/** Polls `check` until it resolves true; reports elapsed seconds through `tick` and fails with `hint` after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean>,
  { timeoutMs, tick, hint, alive }: { timeoutMs: number; tick: (seconds: number) => void; hint: string; alive?: () => Promise<boolean> },
): Promise<void> {
  const started = Date.now();
  let lastTick = 0;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (alive && !(await alive())) throw new Error(`exited during start-up. ${hint}`);
    const elapsed = Date.now() - started;
    if (elapsed > timeoutMs) throw new Error(`not ready after ${timeoutMs / 1000} s. ${hint}`);
    if (elapsed - lastTick >= 2000) {
      lastTick = elapsed;
      tick(Math.round(elapsed / 1000));
    }
    await sleep(250);
  }
}
