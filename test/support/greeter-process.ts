/**
 * A Greeter app in its own process, so a test can SIGKILL it (or SIGSTOP it) like a crashing
 * container. Run as a script, it serves on the given port and prints `{"ready":true,"port":N}`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { startGreeter } from '../../shared/src/sample-app/greeter';

export interface GreeterProcess {
  proc: ChildProcess;
  port: number;
  /** host:port */
  address: string;
  backend: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a Greeter process (on `port`, or a free one) and waits until it serves. */
export function startGreeterProcess(o: { backend: string; version: string; port?: number }): Promise<GreeterProcess> {
  const proc = spawn(process.execPath, [__filename, o.backend, o.version, String(o.port ?? 0)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`greeter ${o.backend} did not start in 20s: ${stderr}`)); }, 20_000);
    void exited.then(() => { clearTimeout(timer); reject(new Error(`greeter ${o.backend} exited before it was ready: ${stderr}`)); });
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      let msg: { ready?: boolean; port?: number };
      try { msg = JSON.parse(line) as typeof msg; } catch { return; }
      if (msg.ready !== true) return;
      clearTimeout(timer);
      resolve({
        proc, port: msg.port!, address: `127.0.0.1:${msg.port!}`, backend: o.backend,
        async kill(signal = 'SIGKILL') {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          proc.kill(signal);
          if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
        },
      });
    });
  });
}

if (require.main === module) {
  const [backend, version, port] = process.argv.slice(2);
  void startGreeter({ backend: backend!, version: version!, port: Number(port) }).then((g) => {
    process.stdout.write(`${JSON.stringify({ ready: true, port: g.port })}\n`);
  });
}
