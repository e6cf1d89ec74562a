import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fetchTrusting } from '../../shared/src/identity/api-trust';

/** What this process knows of each control plane it started, by API origin. */
const STARTED = new Map<string, { adminToken: string; trustBundleFile: string; dataDir: string }>();

/** The admin token of the control plane serving `api`, if this process started it. */
export function adminTokenFor(api: string): string | undefined {
  return STARTED.get(new URL(api).origin)?.adminToken;
}

const TRUST = new Map<string, string>();

/** Trust `caPem` for the API at `origin` (a control plane this process runs in-process). */
export function registerApiTrust(origin: string, caPem: string): void { TRUST.set(new URL(origin).origin, caPem); }

/**
 * fetch to a control plane's API (HTTPS from the mesh CA), verifying it against the trust
 * bundle of that control plane, when this process started it (or registered its trust).
 */
export function apiFetch(url: string | URL, init: Parameters<typeof fetchTrusting>[1] = {}): ReturnType<typeof fetchTrusting> {
  const origin = new URL(url).origin;
  // Read each time: a root rotation rewrites the bundle (the agents are cached per bundle).
  const file = STARTED.get(origin)?.trustBundleFile;
  const ca = file !== undefined && fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : TRUST.get(origin);
  return fetchTrusting(url, init, ca);
}

/** The trust bundle file of the control plane serving `api`, if this process started it. */
export function trustBundleFor(api: string): string | undefined {
  return STARTED.get(new URL(api).origin)?.trustBundleFile;
}

let tokenSeq = 0;

/**
 * Mints a join token on the control plane serving `api` (which this process started) and writes
 * it to a 0600 file in that control plane's data dir; returns the file's path.
 */
export async function joinTokenFile(api: string, service: string, opts: { namespace?: string; serviceAccount?: string; reusable?: boolean; ttl?: string } = {}): Promise<string> {
  const cp = STARTED.get(new URL(api).origin);
  if (cp === undefined) throw new Error(`joinTokenFile: ${api} is not a control plane this process started`);
  const res = await apiFetch(new URL('/v1/tokens', api), {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.adminToken}` },
    body: JSON.stringify({ service, ...opts }),
  });
  const body = (await res.json()) as { token?: string; error?: { message?: string } };
  if (res.status !== 201 || body.token === undefined) throw new Error(`cannot create a join token for ${service}: HTTP ${res.status} ${body.error?.message ?? ''}`);
  const dir = path.join(cp.dataDir, 'harness-tokens');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${service}-${process.pid}-${++tokenSeq}.token`);
  fs.writeFileSync(file, `${body.token}\n`, { mode: 0o600 });
  return file;
}

/** The `skein` entry point in the built tree. */
export const SKEIN_MAIN = path.resolve(__dirname, '../../cli/src/main.js');

export interface ControlPlaneProcess {
  proc: ChildProcess;
  /** host:port of the xDS server. */
  xds: string;
  /** Base URL of the SRE API. */
  api: string;
  /** host:port of the monitoring listener (GET /metrics); undefined when started with --monitoring-listen off. */
  monitoring: string | undefined;
  /** host:port of the plaintext xDS listener, when started with --xds-insecure-listen. */
  xdsInsecure: string | undefined;
  /** The PEM roots of the mesh (what sidecars verify the control plane with). */
  trustBundleFile: string;
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
 * Ports default to 0 (free ports) unless `xdsListen` / `apiListen` / `monitoringListen` are given
 * (`monitoringListen` 'off': no monitoring listener), so parallel processes never collide.
 */
export function startControlPlaneProcess(opts: { dataDir: string; xdsListen?: string; apiListen?: string; monitoringListen?: string; extraArgs?: string[]; logLevel?: string }): Promise<ControlPlaneProcess> {
  const args = [SKEIN_MAIN, 'control-plane', '--data-dir', opts.dataDir, '--xds-listen', opts.xdsListen ?? '127.0.0.1:0',
    '--api-listen', opts.apiListen ?? '127.0.0.1:0', '--monitoring-listen', opts.monitoringListen ?? '127.0.0.1:0', '--log-level', opts.logLevel ?? 'info', ...(opts.extraArgs ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-200_000); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`control plane did not become ready in 20s:\n${stderr}`)); }, 20_000);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`control plane exited with ${code} before it was ready:\n${stderr}`)); });
    const lines = readline.createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      let msg: { ready?: boolean; xds?: string; api?: string; monitoring?: string; adminTokenFile?: string; trustBundleFile?: string; xdsInsecure?: string };
      try { msg = JSON.parse(line) as typeof msg; } catch { return; }
      if (msg.ready !== true) return;
      clearTimeout(timer);
      const adminToken = fs.readFileSync(msg.adminTokenFile!, 'utf8').trim();
      TRUST.delete(new URL(msg.api!).origin);
      STARTED.set(new URL(msg.api!).origin, { adminToken, trustBundleFile: msg.trustBundleFile!, dataDir: opts.dataDir });
      resolve({
        proc, xds: msg.xds!, api: msg.api!, monitoring: msg.monitoring, xdsInsecure: msg.xdsInsecure, trustBundleFile: msg.trustBundleFile!, adminToken, adminTokenFile: msg.adminTokenFile!, logs: () => stderr,
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
