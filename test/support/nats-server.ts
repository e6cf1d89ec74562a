/**
 * A real nats-server (Debian's package, installed by scripts/ensure-debian-tools.sh when missing)
 * with JetStream, on a free loopback port and a temp store dir. It can be stopped and started
 * again on the same port and dir, as an outage of the store that control planes share.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { closedPort } from './ports';
import { ensureDebianTools } from './debian-tools';

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Its JetStream store dir (kept across stop/start). */
  storeDir: string;
  /** Everything it logged so far. */
  logs(): string;
  /** Stops it (SIGTERM, SIGKILL after 5 s); the port and store dir are kept for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and store dir; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its store dir. */
  close(): Promise<void>;
}

/**
 * Starts nats-server -js on a free loopback port (`jetstream: false`: without -js, a server a
 * control plane cannot use). Installs the Debian package first if needed (give the hook a long timeout).
 */
export async function startNatsServer(opts: { jetstream?: boolean; cluster?: { name: string; port: number; routes: number[] } } = {}): Promise<NatsServer> {
  ensureDebianTools('nats-server');
  const port = await closedPort();
  const cluster = opts.cluster === undefined ? [] : ['-n', opts.cluster.name, '--cluster_name', 'skein-test', '--cluster', `nats://127.0.0.1:${opts.cluster.port}`,
    '--routes', opts.cluster.routes.map((r) => `nats://127.0.0.1:${r}`).join(',')];
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-nats-'));
  let proc: ChildProcess | undefined;
  let logs = '';
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`, port, storeDir,
    logs: () => logs,
    async start() {
      if (proc !== undefined) return;
      const p = spawn(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(port), ...(opts.jetstream === false ? [] : ['-js']), '-sd', storeDir, ...cluster], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      const collect = (d: Buffer) => { logs = (logs + d.toString()).slice(-100_000); };
      p.stdout!.on('data', collect);
      p.stderr!.on('data', collect);
      p.once('exit', () => { if (proc === p) proc = undefined; });
      await waitListening(port, p, () => logs);
    },
    async stop() {
      const p = proc;
      if (p === undefined) return;
      proc = undefined;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      p.kill('SIGTERM');
      const kill = setTimeout(() => p.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    },
    async close() {
      await server.stop();
      fs.rmSync(storeDir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** Resolves once `port` accepts a TCP connection (JetStream is up by then: the server opens clients last). */
async function waitListening(port: number, p: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`nats-server exited (${p.exitCode ?? p.signalCode}):\n${logs()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} in 20s:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Debian installs it in /usr/sbin, which is not on every user's PATH. */
function natsServerBinary(): string {
  return fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
}

/**
 * `n` nats-servers -js in one cluster on loopback (a JetStream cluster, where streams can have up
 * to `n` replicas). Resolves once each accepts clients; JetStream answers only after the cluster
 * has elected its meta leader, so callers poll their first JetStream request.
 */
export async function startNatsCluster(n: number): Promise<NatsServer[]> {
  const routes: number[] = [];
  for (let i = 0; i < n; i++) routes.push(await closedPort());
  const servers: NatsServer[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await startNatsServer({ cluster: { name: `n${i + 1}`, port: routes[i]!, routes } }));
  } catch (e) {
    for (const s of servers) await s.close();
    throw e;
  }
  return servers;
}
