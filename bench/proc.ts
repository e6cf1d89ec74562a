import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';

/** CPU time (user + system) of a process in microseconds, from /proc/<pid>/stat. */
export function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1_000_000) / 100; // USER_HZ is 100 on Linux
}

/** Resident set size in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

export interface Proc { child: ChildProcess; pid: number; ready: Record<string, unknown>; stderr(): string; stop(): Promise<void> }

/**
 * Spawns a process and waits for its first JSON line on stdout (its ready line). `stop()` sends
 * SIGTERM and SIGKILL after `killAfterMs` (default 5 s): a process that must exit on its own (one
 * writing a --cpu-prof profile at exit, after its drain) needs longer.
 */
export function spawnReady(cmd: string, args: string[], what: string, opts: { env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; noReadyLine?: boolean; killAfterMs?: number } = {}): Promise<Proc> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-20_000); });
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 5000).unref();
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${what} did not start:\n${err}`)); }, opts.readyTimeoutMs ?? 20_000);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`${what} exited with ${code}:\n${err}`)); });
    if (opts.noReadyLine) {
      setTimeout(() => { clearTimeout(t); child.removeAllListeners('exit'); resolve({ child, pid: child.pid!, ready: {}, stderr: () => err, stop }); }, 500);
      return;
    }
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try { msg = JSON.parse(line) as Record<string, unknown>; } catch { return; }
      clearTimeout(t);
      child.removeAllListeners('exit');
      resolve({ child, pid: child.pid!, ready: msg, stderr: () => err, stop });
    });
  });
}
