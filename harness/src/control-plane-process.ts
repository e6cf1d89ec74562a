import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** The admin token of each control plane this process started, by API base URL. */
const ADMIN_TOKENS = new Map<string, string>();

/** The admin token of the control plane serving `api`, if this process started it. */
export function adminTokenFor(api: string): string | undefined {
  return ADMIN_TOKENS.get(new URL(api).origin);
}

/** The `skein` entry point in the built tree. */
export const SKEIN_MAIN = path.resolve(__dirname, '../../cli/src/main.js');

export interface ControlPlaneProcess {
  proc: ChildProcess;
  /** host:port of the xDS server. */
  xds: string;
  /** Base URL of the SRE API. */
  api: string;
  /** The admin token (from its data dir): the credential for API changes. */
  adminToken: string;
  /** The file it is in. */
  adminTokenFile: string;
  /** Everything it wrote to stderr so far (its logs). */
  logs(): string;
  /** SIGTERM, then wait for exit (SIGKILL after 5s). Resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `skein control-plane` as a real child process and waits for its ready line.
 * Ports default to 0 (free ports) unless `xdsListen` / `apiListen` are given.
 */
export function startControlPlaneProcess(opts: { dataDir: string; xdsListen?: string; apiListen?: string; extraArgs?: string[]; logLevel?: string }): Promise<ControlPlaneProcess> {
  const args = [SKEIN_MAIN, 'control-plane', '--data-dir', opts.dataDir, '--xds-listen', opts.xdsListen ?? '127.0.0.1:0',
    '--api-listen', opts.apiListen ?? '127.0.0.1:0', '--log-level', opts.logLevel ?? 'info', ...(opts.extraArgs ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-200_000); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`control plane did not become ready in 20s:\n${stderr}`)); }, 20_000);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`control plane exited with ${code} before it was ready:\n${stderr}`)); });
    const lines = readline.createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      let msg: { ready?: boolean; xds?: string; api?: string; adminTokenFile?: string };
      try { msg = JSON.parse(line) as typeof msg; } catch { return; }
      if (msg.ready !== true) return;
      clearTimeout(timer);
      const adminToken = fs.readFileSync(msg.adminTokenFile!, 'utf8').trim();
      ADMIN_TOKENS.set(new URL(msg.api!).origin, adminToken);
      resolve({
        proc, xds: msg.xds!, api: msg.api!, adminToken, adminTokenFile: msg.adminTokenFile!, logs: () => stderr,
        async stop(signal = 'SIGTERM') {
          if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
          proc.kill(signal);
          const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
          const code = await exited;
          clearTimeout(kill);
          return code;
        },
      });
    });
  });
}
