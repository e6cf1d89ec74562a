import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { joinTokenFile, SKEIN_MAIN, trustBundleFor } from './control-plane-process';

export interface SidecarProcess {
  proc: ChildProcess;
  /** Its xDS node id. */
  nodeId: string;
  /** host:port of the outbound listener (where the local app sends requests). */
  outbound: string;
  /** host:port of the inbound listener, when started with a service. */
  inbound: string | undefined;
  /** host:port of the admin listener. */
  admin: string;
  logs(): string;
  /** SIGTERM (drain), then wait for exit (SIGKILL after `killAfterMs`, default 30s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SidecarProcessOptions {
  xds: string;
  /** The control plane's API: a join token is minted there (it must be a control plane this process started). */
  api: string;
  /**
   * How the sidecar gets its identity. Default: a single-use join token minted for
   * `serviceAccount ?? service ?? 'sidecar'`. `tokenFile`: that file instead. `insecure`: no
   * identity; `xds` must then be a plaintext (--xds-insecure-listen) port.
   */
  tokenFile?: string;
  insecure?: boolean;
  serviceAccount?: string;
  nodeId: string;
  /** The local service; with it, `app` is required and the inbound listener starts. */
  service?: string;
  version?: string;
  app?: string;
  appProtocol?: 'grpc' | 'http';
  logLevel?: string;
  extraArgs?: string[];
  /**
   * --h2-engine. Default: $SKEIN_TEST_H2_ENGINE when set (a whole test run on one engine, e.g.
   * SKEIN_TEST_H2_ENGINE=skein node test/run.mjs e2e), else the sidecar's own default.
   */
  h2Engine?: 'node' | 'skein';
  /** Node options before the script, e.g. ['--expose-gc'] (tests that measure memory). */
  nodeArgs?: string[];
  killAfterMs?: number;
}

/** Starts `skein sidecar` as a real process on free ports and waits for its ready line. */
export async function startSidecarProcess(o: SidecarProcessOptions): Promise<SidecarProcess> {
  const sa = o.serviceAccount ?? o.service ?? 'sidecar';
  const identity = o.insecure === true ? ['--xds-insecure']
    : ['--token-file', o.tokenFile ?? await joinTokenFile(o.api, o.service ?? sa, { serviceAccount: sa }), '--xds-ca-file', trustBundleFor(o.api) ?? '',
      ...(o.serviceAccount === undefined ? [] : ['--service-account', o.serviceAccount])];
  const args = [...(o.nodeArgs ?? []), SKEIN_MAIN, 'sidecar', '--xds', o.xds, ...identity, '--node-id', o.nodeId, '--outbound-listen', '127.0.0.1:0',
    '--admin-listen', '127.0.0.1:0', '--log-level', o.logLevel ?? 'warn',
    ...(o.service ? ['--service', o.service, '--app', o.app!, '--inbound-listen', '127.0.0.1:0', '--version', o.version ?? 'v1'] : []),
    ...(o.appProtocol ? ['--app-protocol', o.appProtocol] : []), ...h2EngineArgs(o.h2Engine), ...(o.extraArgs ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-200_000); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`sidecar ${o.nodeId} did not become ready in 20s:\n${stderr}`)); }, 20_000);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`sidecar ${o.nodeId} exited with ${code} before it was ready:\n${stderr}`)); });
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      let msg: { ready?: boolean; outbound?: string; inbound?: string; admin?: string };
      try { msg = JSON.parse(line) as typeof msg; } catch { return; }
      if (msg.ready !== true) return;
      clearTimeout(timer);
      resolve({
        proc, nodeId: o.nodeId, outbound: msg.outbound!, inbound: msg.inbound, admin: msg.admin!, logs: () => stderr,
        async stop(signal = 'SIGTERM') {
          if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
          proc.kill(signal);
          const kill = setTimeout(() => proc.kill('SIGKILL'), o.killAfterMs ?? 30_000);
          const code = await exited;
          clearTimeout(kill);
          return code;
        },
      });
    });
  });
}

/** The --h2-engine arguments for a sidecar: `engine`, else $SKEIN_TEST_H2_ENGINE, else none (the sidecar's default). */
export function h2EngineArgs(engine?: string): string[] {
  const e = engine ?? process.env['SKEIN_TEST_H2_ENGINE'];
  return e === undefined || e === '' ? [] : ['--h2-engine', e];
}
