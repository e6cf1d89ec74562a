/**
 * One control plane process plus the sidecar processes and apps a test starts around it, all on
 * loopback, tracked so `stop()` ends every one of them (after(), even when a test failed).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startControlPlaneProcess } from '../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { startSidecarProcess } from '../../harness/src/sidecar-process';
import type { SidecarProcess, SidecarProcessOptions } from '../../harness/src/sidecar-process';
import { greeterClient } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import { eventually } from './ads-client';
import { api, proxy } from './mesh-api';

export interface AdminCluster { name: string; hosts: { address: string; health: string }[] }

export class Mesh {
  private readonly clients: (() => unknown)[] = [];
  private readonly apps: (() => unknown)[] = [];
  readonly sidecars: SidecarProcess[] = [];

  private constructor(readonly dir: string, public cp: ControlPlaneProcess) {}

  /** `controlPlaneArgs`: extra flags of the control plane process (kept by restartControlPlane). */
  static async start(prefix: string, opts: { controlPlaneArgs?: string[] } = {}): Promise<Mesh> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `skein-${prefix}-`));
    const mesh = new Mesh(dir, await startControlPlaneProcess({ dataDir: dir, logLevel: 'warn', extraArgs: opts.controlPlaneArgs ?? [] }));
    mesh.controlPlaneArgs = opts.controlPlaneArgs ?? [];
    return mesh;
  }

  private controlPlaneArgs: string[] = [];

  /** Stops the control plane (SIGTERM, exit 0 expected). */
  async stopControlPlane(): Promise<void> {
    const code = await this.cp.stop();
    if (code !== 0) throw new Error(`control plane exited with ${code}:\n${this.cp.logs()}`);
  }

  /** Starts the control plane again on the same data dir and ports (after stopControlPlane). */
  async restartControlPlane(): Promise<void> {
    this.cp = await startControlPlaneProcess({ dataDir: this.dir, logLevel: 'warn', xdsListen: this.cp.xds, apiListen: new URL(this.cp.api).host, extraArgs: this.controlPlaneArgs });
  }

  /** A client (or relay) to close at stop(), before the sidecars stop; their drain waits for it. */
  track<T extends { close(): unknown }>(thing: T): T {
    this.clients.push(() => thing.close());
    return thing;
  }

  /** An app to close at stop(), after the sidecars stopped. */
  app<T extends { close(): unknown }>(thing: T): T {
    this.apps.push(() => thing.close());
    return thing;
  }

  /** POST /v1/config; resolves with the new revision. */
  async apply(docs: unknown): Promise<number> {
    return (await api<{ revision: number }>(this.cp.api, 'POST', '/v1/config', docs)).revision;
  }

  /** A sidecar process (server-side with `service` + `app`, else client-side). */
  async sidecar(o: Omit<SidecarProcessOptions, 'xds' | 'api'>): Promise<SidecarProcess> {
    const sc = await startSidecarProcess({ xds: this.cp.xds, api: this.cp.api, killAfterMs: 10_000, ...o });
    this.sidecars.push(sc);
    return sc;
  }

  /** A client-side sidecar, once its admin /ready says it has listeners, routes and clusters. */
  async clientSidecar(nodeId: string, extraArgs: string[] = []): Promise<SidecarProcess> {
    const sc = await this.sidecar({ nodeId, extraArgs });
    await eventually(async () => ((await fetch(`http://${sc.admin}/ready`)).status === 200 ? true : undefined), `${nodeId} to be ready`);
    return sc;
  }

  /** A Greeter client that talks to `sc`'s outbound port with the given authority. */
  greeter(sc: SidecarProcess, authority: string, options: grpc.ChannelOptions = {}): GreeterClient {
    return this.track(greeterClient(sc.outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority, ...options }));
  }

  /** Waits until `sc`'s cluster `name` holds exactly `addresses` (host:port, any order). */
  async hosts(sc: SidecarProcess, name: string, addresses: string[]): Promise<void> {
    const want = [...addresses].sort().join(',');
    let last = '';
    await eventually(async () => {
      const clusters = (await (await fetch(`http://${sc.admin}/clusters`)).json()) as AdminCluster[];
      last = (clusters.find((c) => c.name === name)?.hosts ?? []).map((h) => h.address).sort().join(',');
      return last === want ? true : undefined;
    }, `cluster ${name} to hold ${want} (has ${last})`);
  }

  /** Waits until proxy `nodeId` is SYNCED and has ACKed `type` sent from config revision >= `revision`. */
  synced(nodeId: string, type: string, revision: number): ReturnType<typeof proxy> {
    return eventually(async () => {
      const p = await proxy(this.cp.api, nodeId);
      const t = p?.types.find((x) => x.typeUrl === type);
      return p?.state === 'SYNCED' && t !== undefined && (t.sentRevision ?? 0) >= revision && t.ackedVersion === t.sentVersion ? p : undefined;
    }, `${nodeId} to ACK ${type.slice(type.lastIndexOf('.') + 1)} of revision ${revision}`);
  }

  async stop(): Promise<void> {
    const run = (fns: (() => unknown)[]) => Promise.all(fns.map((f) => Promise.resolve().then(f).catch(() => undefined)));
    await run(this.clients);
    await Promise.all(this.sidecars.map((s) => s.stop().catch(() => undefined)));
    await run(this.apps);
    await this.cp.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Address of a sidecar's inbound listener as registered in EDS. */
export function inboundOf(sc: SidecarProcess): string {
  if (sc.inbound === undefined) throw new Error('not a server sidecar');
  return sc.inbound;
}
