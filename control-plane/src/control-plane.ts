import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { buildMesh } from '../../shared/src/config/mesh';
import type { MeshConfig } from '../../shared/src/config/mesh';
import { systemClock } from '../../shared/src/clock';
import type { Clock } from '../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import type { Logger } from '../../shared/src/log';
import { createLogger } from '../../shared/src/log';
import { DiscoveryServer } from './discovery/discovery-server';
import { SnapshotCache } from './discovery/snapshot-cache';
import { forecastNacks } from './discovery/nack-forecast';
import type { NackWarning } from './discovery/nack-forecast';
import { EndpointRegistry } from './registry/endpoint-registry';
import { LeaseFile } from './registry/lease-file';
import { FileRevisionLog } from './store/file-revision-log';
import { VersionedConfigStore } from './store/versioned-store';
import type { ConfigStore } from './store/config-store';
import { translate } from './translate/translate';
import type { XdsResourceSet } from './translate/translate';
import { ApiServer } from './api/api-server';
import { parseListen } from '../../shared/src/listen-address';

export interface ControlPlaneOptions {
  /** Where the embedded store keeps revisions. Default ./.skein-data */
  dataDir: string;
  /** host:port for the xDS gRPC server. Default 127.0.0.1:18000 (port 0 picks a free port). */
  xdsListen: string;
  /** host:port for the SRE HTTP API. Default 127.0.0.1:18001. */
  apiListen: string;
  /** Revisions kept in history. Default 1000. */
  historyLimit?: number;
  /** Largest accepted API request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Endpoint lease TTL when a registration names none. Default 10s. */
  defaultLeaseTtlMs?: number;
  clock?: Clock;
  log?: Logger;
}

/** The control plane: store, registry, translation, snapshot cache, ADS server and SRE API. */
export class ControlPlane {
  readonly cache = new SnapshotCache();
  readonly discovery: DiscoveryServer;
  readonly registry: EndpointRegistry;
  readonly log: Logger;
  store!: ConfigStore;
  xdsPort = 0;
  apiPort = 0;
  private readonly grpcServer = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
  private api!: ApiServer;
  private rebuildScheduled = false;
  private leases: LeaseFile | undefined;
  private readonly clock: Clock;

  private constructor(opts: ControlPlaneOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? createLogger('skein-control-plane');
    this.registry = new EndpointRegistry(this.clock, opts.defaultLeaseTtlMs === undefined ? {} : { defaultTtlMs: opts.defaultLeaseTtlMs });
    this.discovery = new DiscoveryServer(this.cache, this.clock, this.log);
  }

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    const log = await FileRevisionLog.open(path.resolve(opts.dataDir), opts.historyLimit === undefined ? {} : { historyLimit: opts.historyLimit });
    cp.store = new VersionedConfigStore(log, cp.clock, (mesh) => cp.precommit(mesh));
    cp.leases = new LeaseFile(path.resolve(opts.dataDir), cp.registry, cp.log);
    cp.leases.load();
    cp.rebuild(); // the snapshot exists before any client can connect
    cp.registry.onChange(() => { cp.scheduleRebuild(); cp.leases!.schedule(); });
    void cp.watchStore();
    cp.discovery.register(cp.grpcServer);
    cp.xdsPort = await bind(cp.grpcServer, opts.xdsListen);
    cp.api = new ApiServer(cp, { maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024 });
    cp.apiPort = await cp.api.listen(opts.apiListen);
    cp.log.info({ xds: `${host(opts.xdsListen)}:${cp.xdsPort}`, api: `${host(opts.apiListen)}:${cp.apiPort}`, revision: cp.store.current().revision, dataDir: path.resolve(opts.dataDir) }, 'control plane started');
    return cp;
  }

  /**
   * Brings the snapshot up to the stored revision now, instead of on the next tick, so a change's
   * rollout can be followed from the moment the change answers.
   */
  syncSnapshot(): void {
    if (this.store.current().revision !== this.cache.revision) this.rebuild();
  }

  /**
   * The NACKs `candidate` is certain to get from the proxies connected now (known client
   * incompatibilities; see discovery/client-compat.ts). For dry runs.
   */
  forecastNacks(candidate: MeshConfig): NackWarning[] {
    return forecastNacks(this.cache, translate(candidate, this.registry.endpoints()), this.discovery.connected());
  }

  /** The xDS resources for the current config and endpoints. */
  resources(): XdsResourceSet {
    return translate(buildMesh(this.store.current().resources), this.registry.endpoints());
  }

  async close(): Promise<void> {
    this.discovery.closeAll();
    await this.api?.close();
    // Graceful first; anything still open after 2s (a client ignoring the end) is cut.
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => { this.grpcServer.forceShutdown(); resolve(); }, 2000);
      this.grpcServer.tryShutdown(() => { clearTimeout(force); resolve(); });
    });
    this.leases?.save();
    this.registry.close();
    await this.store?.close();
  }

  private precommit(mesh: MeshConfig): void {
    // Translating and encoding the candidate proves it can be served. A failure here is a bug in
    // validation (it let through something xDS cannot carry); the config is refused, not stored.
    const probe = new SnapshotCache();
    try {
      probe.set(translate(mesh, this.registry.endpoints()), 0);
    } catch (e) {
      throw new MeshError(ErrorCodes.VALIDATION, `config cannot be translated to xDS: ${(e as Error).message}`, { cause: e });
    }
  }

  private async watchStore(): Promise<void> {
    for await (const rev of this.store.watch()) {
      if (rev.revision !== this.cache.revision) this.scheduleRebuild();
    }
  }

  /** Coalesces bursts (endpoint churn, several applies) into one rebuild per tick. */
  private scheduleRebuild(): void {
    if (this.rebuildScheduled) return;
    this.rebuildScheduled = true;
    setImmediate(() => { this.rebuildScheduled = false; this.rebuild(); });
  }

  private rebuild(): void {
    const rev = this.store.current();
    try {
      const change = this.cache.set(translate(buildMesh(rev.resources), this.registry.endpoints()), rev.revision);
      const counts = Object.fromEntries([...change.changed].map(([t, n]) => [t.slice(t.lastIndexOf('.') + 1), n.size]));
      if (change.changed.size > 0) this.log.info({ revision: rev.revision, changed: counts }, 'snapshot updated');
    } catch (e) {
      // Keep serving the last good snapshot. Stored config was validated, so this is a bug.
      this.log.error({ err: e, revision: rev.revision }, 'failed to build the xDS snapshot; serving the previous one');
    }
  }
}

function host(listen: string): string { return listen.slice(0, listen.lastIndexOf(':')); }

function bind(server: grpc.Server, listen: string): Promise<number> {
  parseListen(listen, '--xds-listen');
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new MeshError(ErrorCodes.STORE, `cannot listen for xDS on ${listen}: ${err.message}`)) : resolve(port)));
  });
}
