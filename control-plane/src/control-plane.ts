import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMesh, buildMeshSliced } from '../../shared/src/config/mesh';
import type { MeshConfig, RawResource } from '../../shared/src/config/mesh';
import { TimeSlicer } from '../../shared/src/slicer';
import { systemClock } from '../../shared/src/clock';
import type { Clock, TimerHandle } from '../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import type { Logger } from '../../shared/src/log';
import { createLogger } from '../../shared/src/log';
import { DiscoveryServer } from './discovery/discovery-server';
import { SnapshotCache } from './discovery/snapshot-cache';
import { forecastNacks } from './discovery/nack-forecast';
import type { NackWarning } from './discovery/nack-forecast';
import type { PreparedSnapshot } from './discovery/snapshot-cache';
import { EndpointRegistry } from './registry/endpoint-registry';
import { LeaseFile } from './registry/lease-file';
import { FileRevisionLog } from './store/file-revision-log';
import { NatsRevisionLog } from './store/nats-revision-log';
import { NatsStoreConnection } from './store/nats-connection';
import type { NatsStoreTarget } from './store/nats-store-url';
import { NatsLeases } from './registry/nats-leases';
import type { RevisionLog } from './store/config-store';
import { VersionedConfigStore } from './store/versioned-store';
import type { ConfigStore } from './store/config-store';
import { serviceLoadAssignments, translate, translateSliced } from './translate/translate';
import type { ClusterLoadAssignment, XdsObject } from './translate/xds-json';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { TranslateOptions, XdsResourceSet } from './translate/translate';
import { ApiServer } from './api/api-server';
import { isLoopbackHost, parseListen } from '../../shared/src/listen-address';
import { writeFileAtomic } from '../../shared/src/atomic-file';
import type { RotatingIdentity } from '../../shared/src/identity/rotating-identity';
import { servingIdentity } from './identity/serving-identity';
import { RegistrationService } from './registry/registration-service';
import { RootRotation } from './identity/root-rotation';
import { MeshIdentity } from './identity/mesh-identity';
import { CertificateService } from './identity/certificate-service';
import type { CheckContext } from './check/finding';
import { MetricsExposition } from '../../shared/src/metrics/exposition';
import { MonitoringServer } from './monitoring/monitoring-server';
import { addXdsMetrics } from './monitoring/xds-metrics';
import { RouteStatsStore } from './telemetry/route-stats-store';
import type { RouteStatsView } from './telemetry/route-stats-store';
import { RouteStatsService } from './telemetry/route-stats-service';
import { routeWeights } from './telemetry/route-weights';
import { addRouteStatsMetrics } from './telemetry/route-stats-metrics';

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
  /** SPIFFE trust domain of workload identities. Default skein.local. */
  trustDomain?: string;
  /** A plugged CA: PEM chain from the issuing CA up to the root, and the issuing CA's key. Default: a root generated in <dataDir>/ca. */
  caCertFile?: string;
  caKeyFile?: string;
  /** Workload certificate lifetime. Default 24h. */
  workloadCertTtlMs?: number;
  /** Extra DNS names or IPs in the xDS port's certificate, for clients that dial it by another name. */
  xdsSans?: string[];
  /**
   * host:port of a second, plaintext xDS listener serving ADS only, for proxyless gRPC clients
   * that cannot present a certificate. Default: none. Loopback only unless `xdsInsecureAllowRemote`.
   */
  xdsInsecureListen?: string;
  xdsInsecureAllowRemote?: boolean;
  /**
   * host:port of the plain-HTTP monitoring listener (GET /metrics for Prometheus); port 0 picks a
   * free port. Default: none (the CLI's --monitoring-listen defaults to 127.0.0.1:15014).
   */
  monitoringListen?: string;
  /**
   * Push debounce: after an endpoint change (or a config revision that did not come through this
   * replica's API), wait this long with no further change before rebuilding and pushing, so a
   * burst becomes one push. 0 (default): bursts within one event-loop turn coalesce, nothing waits.
   */
  pushDebounceMs?: number;
  /** The longest a change waits under continuous churn (debounce never delays a push past this). Default 1s. */
  pushDebounceMaxMs?: number;
  /**
   * Share config revisions and endpoint leases with other replicas through NATS JetStream
   * (store/nats-revision-log.ts, registry/nats-leases.ts). Default: the embedded file store in
   * `dataDir`, for one control plane. `replicas`: copies JetStream keeps of the stream and KV
   * buckets (store/nats-replicas.ts); default 1.
   */
  store?: { target: NatsStoreTarget; bucket: string; replicas?: number };
  clock?: Clock;
  log?: Logger;
}

/** The control plane: store, registry, translation, snapshot cache, ADS server and SRE API. */
export class ControlPlane {
  readonly cache = new SnapshotCache();
  readonly discovery: DiscoveryServer;
  readonly registry: EndpointRegistry;
  readonly log: Logger;
  /** Per route × version stats the sidecars report, merged (GET /v1/stats/routes; telemetry/route-stats-metrics.ts for /metrics). */
  readonly routeStats: RouteStatsStore;
  store!: ConfigStore;
  identity!: MeshIdentity;
  xdsPort = 0;
  /** The plaintext xDS port (--xds-insecure-listen), 0 when there is none. */
  xdsInsecurePort = 0;
  apiPort = 0;
  /** The monitoring listener's port, 0 when there is none. */
  monitoringPort = 0;
  /**
   * What GET /metrics on the monitoring listener shows. The extension point for other modules:
   * `metrics.add(collector)` (shared/src/metrics/exposition.ts); xDS and process metrics are in it.
   */
  readonly metrics = new MetricsExposition();
  private monitoring: MonitoringServer | undefined;
  /** The PEM roots workloads and clients trust (<dataDir>/ca/trust-bundle.pem). */
  trustBundleFile = '';
  private readonly grpcServer = new grpc.Server(GRPC_SERVER_OPTIONS);
  private insecureServer: grpc.Server | undefined;
  private serving: RotatingIdentity | undefined;
  /** Root rotation (skein ca rotate). */
  rotation!: RootRotation;
  private certificates!: CertificateService;
  /** host:port of the plaintext xDS listener, when open. */
  private xdsInsecureAddress: string | undefined;
  private api!: ApiServer;
  private rebuildScheduled = false;
  private readonly debounce: { ms: number; maxMs: number };
  /** The debounce timer, and when (clock ms) the first change it holds came. */
  private debounceTimer: { handle: TimerHandle; firstAt: number } | undefined;
  /** Rebuilds run one after another. */
  private rebuilds: Promise<void> = Promise.resolve();
  /** Bumped on every endpoint registry change: a snapshot built before a bump is stale. */
  private registryEpoch = 0;
  /**
   * The services whose endpoints changed since the last rebuild began, or 'all' when the next
   * rebuild must translate everything (a rebuild failed or was superseded, or the trust changed).
   * With only endpoint changes, a rebuild re-translates just these services' load assignments.
   */
  private endpointChanges: Set<string> | 'all' = 'all';
  /** The registry epoch of the installed snapshot. */
  private installedEpoch = -1;
  /** When (clock ms) the first endpoint change not yet in the installed snapshot happened. */
  private endpointsChangedAt: number | undefined;
  /** The config last validated (its documents, as stored), to skip validating it again. */
  private lastMesh: { resources: readonly RawResource[]; mesh: MeshConfig } | undefined;
  /** The snapshot the last precommit encoded, for the documents it validated. */
  private precommitted: { resources: readonly RawResource[]; epoch: number; snapshot: PreparedSnapshot } | undefined;
  private leases: LeaseFile | undefined;
  private nats: NatsStoreConnection | undefined;
  private sharedLeases: NatsLeases | undefined;
  private readonly clock: Clock;

  private constructor(opts: ControlPlaneOptions) {
    this.clock = opts.clock ?? systemClock;
    const ms = opts.pushDebounceMs ?? 0;
    const maxMs = opts.pushDebounceMaxMs ?? DEFAULT_PUSH_DEBOUNCE_MAX_MS;
    if (!(ms >= 0 && maxMs >= ms)) throw new MeshError(ErrorCodes.VALIDATION, `--push-debounce-max (${maxMs}ms) must be at least --push-debounce (${ms}ms)`);
    this.debounce = { ms, maxMs };
    this.log = opts.log ?? createLogger('skein-control-plane');
    this.registry = new EndpointRegistry(this.clock, opts.defaultLeaseTtlMs === undefined ? {} : { defaultTtlMs: opts.defaultLeaseTtlMs });
    this.discovery = new DiscoveryServer(this.cache, this.clock, this.log);
    addXdsMetrics(this.metrics, this.discovery, this.cache);
    this.routeStats = new RouteStatsStore(this.clock);
    addRouteStatsMetrics(this.metrics, { allTimeTotals: () => this.routeStats.allTimeTotals(), query: (windowMs) => this.routeStatsView(windowMs) });
  }

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    if (opts.xdsInsecureListen !== undefined) {
      const { host: h } = parseListen(opts.xdsInsecureListen, '--xds-insecure-listen');
      if (!isLoopbackHost(h) && opts.xdsInsecureAllowRemote !== true) {
        throw new MeshError(ErrorCodes.VALIDATION, `--xds-insecure-listen: ${opts.xdsInsecureListen} is not a loopback address; plaintext xDS shows the mesh's config to anyone who reaches it and lets them pose as any proxy. Use 127.0.0.1 or [::1], or add --xds-insecure-allow-remote`);
      }
    }
    const cp = new ControlPlane(opts);
    cp.identity = await MeshIdentity.open({
      dataDir: path.resolve(opts.dataDir), clock: cp.clock,
      ...(opts.trustDomain === undefined ? {} : { trustDomain: opts.trustDomain }),
      ...(opts.caCertFile === undefined ? {} : { caCertFile: opts.caCertFile }),
      ...(opts.caKeyFile === undefined ? {} : { caKeyFile: opts.caKeyFile }),
      ...(opts.workloadCertTtlMs === undefined ? {} : { workloadCertTtlMs: opts.workloadCertTtlMs }),
    });
    let log: RevisionLog;
    if (opts.store === undefined) {
      log = await FileRevisionLog.open(path.resolve(opts.dataDir), opts.historyLimit === undefined ? {} : { historyLimit: opts.historyLimit });
      cp.leases = new LeaseFile(path.resolve(opts.dataDir), cp.registry, cp.log, cp.clock);
      cp.leases.load();
    } else {
      if (opts.caCertFile === undefined) {
        // The trust bundle is part of the snapshot: replicas with different roots serve different versions, and their proxies cannot verify each other.
        cp.log.warn({ ca: path.join(path.resolve(opts.dataDir), 'ca') }, 'with --store, every replica must run the same CA: this one uses its own (in DATA_DIR/ca); plug the same --ca-cert/--ca-key into every replica');
      }
      cp.nats = await NatsStoreConnection.open(opts.store.target, cp.log);
      try {
        log = await NatsRevisionLog.open(cp.nats, { bucket: opts.store.bucket, historyLimit: opts.historyLimit ?? 1000, replicas: opts.store.replicas ?? 1, log: cp.log });
        cp.sharedLeases = await NatsLeases.open(cp.nats, cp.registry, { bucket: opts.store.bucket, replicas: opts.store.replicas ?? 1, clock: cp.clock, log: cp.log });
      } catch (e) {
        await cp.nats.close();
        throw e;
      }
    }
    cp.store = new VersionedConfigStore(log, cp.clock, (mesh, resources) => cp.precommit(mesh, resources));
    await cp.rebuild(); // the snapshot exists before any client can connect
    cp.registry.onChange((services) => {
      cp.registryEpoch++;
      cp.endpointsChangedAt ??= cp.clock.now();
      if (cp.endpointChanges !== 'all') for (const s of services) cp.endpointChanges.add(s);
      cp.scheduleRebuild();
      cp.leases?.schedule();
    });
    void cp.watchStore();
    const trustDomain = cp.identity.ca.trustDomain;
    cp.trustBundleFile = path.join(path.resolve(opts.dataDir), 'ca', 'trust-bundle.pem');
    // <dataDir>/ca exists already unless the CA is plugged (--ca-cert): then nothing made it.
    fs.mkdirSync(path.dirname(cp.trustBundleFile), { recursive: true, mode: 0o700 });
    writeFileAtomic(cp.trustBundleFile, cp.identity.ca.trustBundlePem(), 0o644);
    cp.serving = servingIdentity(cp.identity.ca, opts.xdsSans ?? [], cp.clock, cp.log);
    await cp.serving.start();
    cp.rotation = new RootRotation({
      ca: cp.identity.ca, clock: cp.clock, log: cp.log, proxies: () => cp.discovery.proxies(),
      bundleChanged: async () => {
        writeFileAtomic(cp.trustBundleFile, cp.identity.ca.trustBundlePem(), 0o644);
        // The serving certificate carries the bundle its TLS servers verify clients with; once the
        // new root issues, it is re-issued from it too.
        await cp.serving!.renewNow();
        // ROOTCA is part of the snapshot: a rebuild with the same revision and endpoints must still run.
        cp.registryEpoch++;
        cp.endpointChanges = 'all';
        cp.scheduleRebuild();
      },
    });
    cp.discovery.register(cp.grpcServer, { trustDomain });
    cp.certificates = new CertificateService(cp.identity, cp.log);
    cp.certificates.register(cp.grpcServer);
    new RegistrationService({ registry: cp.registry, trustDomain, log: cp.log, serviceAccountOf: (s) => cp.serviceAccountOf(s) }).register(cp.grpcServer);
    new RouteStatsService({ store: cp.routeStats, trustDomain, log: cp.log }).register(cp.grpcServer);
    // A client certificate is optional on this port (a new workload has only its join token),
    // and verified against the mesh's roots when present; each service checks what it needs.
    cp.xdsPort = await bind(cp.grpcServer, opts.xdsListen, '--xds-listen', grpc.experimental.createCertificateProviderServerCredentials(cp.serving.provider, cp.serving.provider, false));
    if (opts.xdsInsecureListen !== undefined) {
      cp.insecureServer = new grpc.Server(GRPC_SERVER_OPTIONS);
      cp.discovery.register(cp.insecureServer, 'insecure');
      cp.xdsInsecurePort = await bind(cp.insecureServer, opts.xdsInsecureListen, '--xds-insecure-listen', grpc.ServerCredentials.createInsecure());
      cp.xdsInsecureAddress = `${host(opts.xdsInsecureListen)}:${cp.xdsInsecurePort}`;
      cp.log.warn({ xdsInsecure: cp.xdsInsecureAddress }, 'plaintext xDS listener open (--xds-insecure-listen): clients on it are not authenticated');
    }
    cp.api = new ApiServer(cp, { maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024, tls: { serving: cp.serving, trustDomain, trustBundlePem: () => cp.identity.ca.trustBundlePem() } });
    cp.apiPort = await cp.api.listen(opts.apiListen);
    if (opts.monitoringListen !== undefined) {
      cp.metrics.addProcessMetrics();
      cp.monitoring = new MonitoringServer(cp.metrics);
      cp.monitoringPort = await cp.monitoring.listen(opts.monitoringListen);
    }
    cp.log.info({ xds: `${host(opts.xdsListen)}:${cp.xdsPort}`, xdsTls: true, api: `${host(opts.apiListen)}:${cp.apiPort}`, revision: cp.store.current().revision, dataDir: path.resolve(opts.dataDir), store: opts.store === undefined ? 'file' : opts.store.target.redacted, trustDomain: cp.identity.ca.trustDomain, ca: cp.identity.ca.source, caExpires: new Date(cp.identity.ca.notAfter).toISOString() }, 'control plane started');
    return cp;
  }

  /**
   * Brings the snapshot up to the stored revision now, instead of on the next tick, so a change's
   * rollout can be followed from the moment the change answers.
   */
  async syncSnapshot(): Promise<void> {
    if (this.store.current().revision === this.cache.revision) return;
    if (!this.installPrecommitted()) await this.rebuild();
  }

  /**
   * The NACKs `candidate` is certain to get from the proxies connected now (known client
   * incompatibilities; see discovery/client-compat.ts). For dry runs.
   */
  forecastNacks(candidate: MeshConfig): NackWarning[] {
    // The store calls this (ChangeOptions.inspect) right after precommit encoded this very
    // candidate, with no turn of the event loop between: that snapshot is the candidate's.
    const prepared = this.precommitted?.snapshot;
    if (prepared === undefined) throw new MeshError(ErrorCodes.INTERNAL, `no encoded snapshot for the candidate config (${candidate.services.size} services): forecastNacks must follow precommit`);
    return forecastNacks(this.cache, prepared.types, this.discovery.connected());
  }

  /** The service account allowed to register endpoints of `service` (its spec.serviceAccount, else its name). */
  serviceAccountOf(service: string): string {
    return this.currentMesh().services.get(service)?.spec.serviceAccount ?? service;
  }

  /** The current config, validated (the one the last rebuild or precommit built, when it is current). */
  private currentMesh(): MeshConfig {
    return this.lastMesh !== undefined && this.lastMesh.resources === this.store.current().resources ? this.lastMesh.mesh : buildMesh(this.store.current().resources);
  }

  /** What `skein check` (GET /v1/check) looks at, read once, at one instant of the clock. */
  checkContext(): CheckContext {
    const ca = this.identity.ca;
    const insecure = this.xdsInsecureAddress;
    return {
      now: this.clock.now(), mesh: this.currentMesh(), proxies: this.discovery.proxies(), issued: this.certificates.issued.latest(),
      ca: { subject: ca.subject, source: ca.source, notAfter: ca.notAfter, workloadTtlMs: ca.workloadTtlMs, trustDomain: ca.trustDomain },
      xdsInsecure: insecure === undefined ? undefined : { address: insecure, loopback: isLoopbackHost(parseListen(insecure, '--xds-insecure-listen').host) },
    };
  }

  /** The merged route stats over the last `windowMs`, with each row's weight in the current config. */
  routeStatsView(windowMs: number): RouteStatsView {
    return this.routeStats.query(windowMs, routeWeights(this.currentMesh()));
  }

  /** The xDS resources for the current config and endpoints. */
  resources(): XdsResourceSet {
    return translate(buildMesh(this.store.current().resources), this.registry.endpoints(), this.translateOptions());
  }

  /** The mesh identity translation writes into resources: trust domain and trust bundle (SDS ROOTCA). */
  private translateOptions(): TranslateOptions {
    return { trust: { trustDomain: this.identity.ca.trustDomain, trustBundlePem: this.identity.ca.trustBundlePem() } };
  }

  async close(): Promise<void> {
    this.debounceTimer?.handle.cancel();
    this.discovery.closeAll();
    await this.api?.close();
    await this.monitoring?.close();
    await Promise.all([this.grpcServer, this.insecureServer].map((s) => (s === undefined ? undefined : shutdown(s))));
    this.serving?.close();
    this.rotation?.close();
    this.leases?.save();
    this.registry.close();
    this.sharedLeases?.close();
    await this.store?.close();
    await this.nats?.close();
  }

  private async precommit(mesh: MeshConfig, resources: readonly RawResource[]): Promise<void> {
    // Translating and encoding the candidate proves it can be served. A failure here is a bug in
    // validation (it let through something xDS cannot carry); the config is refused, not stored.
    // The encoded snapshot is kept: if the candidate is stored, it is what gets installed.
    const epoch = this.registryEpoch;
    const slicer = new TimeSlicer();
    try {
      const snapshot = await this.cache.prepare(await translateSliced(mesh, this.registry.endpoints(), this.translateOptions(), slicer), slicer);
      this.precommitted = { resources, epoch, snapshot };
      this.lastMesh = { resources, mesh };
    } catch (e) {
      throw new MeshError(ErrorCodes.VALIDATION, `config cannot be translated to xDS: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Installs the snapshot the last precommit encoded, if it is for the current revision's
   * documents and no endpoint changed since. That is the usual case after a change, and it
   * costs no translation or encoding. Returns false when a rebuild is needed instead.
   */
  private installPrecommitted(): boolean {
    const rev = this.store.current();
    const p = this.precommitted;
    if (p === undefined || p.resources !== rev.resources || p.epoch !== this.registryEpoch) return false;
    this.precommitted = undefined;
    this.install(p.snapshot, rev.revision, p.epoch);
    return true;
  }

  /** Installs a snapshot unless a newer one (a later revision, or later endpoints) is installed; false then. */
  private install(snapshot: PreparedSnapshot, revision: number, epoch: number): boolean {
    if (revision < this.cache.revision || (revision === this.cache.revision && epoch < this.installedEpoch)) return false;
    // Convergence is measured from the change: the revision's commit, or the first endpoint change it takes in.
    const stored = this.store.current();
    let at = revision > this.cache.revision && stored.revision === revision ? Date.parse(stored.createdAt) : Infinity;
    if (epoch > this.installedEpoch && this.endpointsChangedAt !== undefined) at = Math.min(at, this.endpointsChangedAt);
    if (epoch === this.registryEpoch) this.endpointsChangedAt = undefined;
    this.installedEpoch = epoch;
    const change = this.cache.install(snapshot, revision, Number.isFinite(at) ? at : this.clock.now());
    const counts = Object.fromEntries([...change.changed].map(([t, n]) => [t.slice(t.lastIndexOf('.') + 1), n.size]));
    if (change.changed.size > 0) this.log.info({ revision, changed: counts }, 'snapshot updated');
    return true;
  }

  private async watchStore(): Promise<void> {
    for await (const rev of this.store.watch()) {
      if (rev.revision !== this.cache.revision) this.scheduleRebuild();
    }
  }

  /**
   * Coalesces bursts (endpoint churn, several applies) into one rebuild per tick, once the last
   * push is written; with a push debounce, into one rebuild once no change came for
   * `debounce.ms`, or `debounce.maxMs` after the first, whichever is sooner. A change through
   * the API (syncSnapshot) never waits.
   */
  private scheduleRebuild(): void {
    if (this.debounce.ms > 0) {
      const now = this.clock.now();
      const firstAt = this.debounceTimer?.firstAt ?? now;
      this.debounceTimer?.handle.cancel();
      const wait = Math.max(0, Math.min(this.debounce.ms, firstAt + this.debounce.maxMs - now));
      this.debounceTimer = { firstAt, handle: this.clock.setTimer(wait, () => { this.debounceTimer = undefined; void this.rebuild(); }) };
      return;
    }
    if (this.rebuildScheduled) return;
    this.rebuildScheduled = true;
    // After the last snapshot's push is written (DiscoveryServer.settled): changes meanwhile are
    // batched into this rebuild, so under churn pushes adapt to the load instead of queueing.
    setImmediate(() => void this.discovery.settled().then(() => { this.rebuildScheduled = false; return this.rebuild(); }));
  }

  /**
   * Brings the snapshot up to the stored revision and the live endpoints. Rebuilds run one at a
   * time; each yields to the event loop between services and resources, and reuses what it can
   * (the validated config, unchanged encodings), so endpoint churn and changes on a large mesh
   * never hold the event loop (API requests, ADS streams) for long.
   */
  private rebuild(): Promise<void> {
    this.rebuilds = this.rebuilds.then(() => this.rebuildNow());
    return this.rebuilds;
  }

  private async rebuildNow(): Promise<void> {
    if (this.installPrecommitted()) return;
    const rev = this.store.current();
    const epoch = this.registryEpoch;
    if (rev.revision === this.cache.revision && epoch === this.installedEpoch) return;
    const changes = this.endpointChanges;
    this.endpointChanges = new Set();
    const slicer = new TimeSlicer();
    try {
      const known = this.lastMesh;
      let snapshot: PreparedSnapshot;
      if (changes !== 'all' && known !== undefined && known.resources === rev.resources && rev.revision === this.cache.revision) {
        // Only endpoints changed since the installed snapshot: re-translate those services' load assignments.
        const assignments: ClusterLoadAssignment[] = [];
        for (const name of changes) {
          const service = known.mesh.services.get(name);
          if (service !== undefined) assignments.push(...serviceLoadAssignments(service, this.registry.endpointsOf(name)));
        }
        snapshot = await this.cache.prepareUpdate(TYPE_URLS.ENDPOINT, assignments as unknown as XdsObject[], slicer);
      } else {
        const mesh = known !== undefined && known.resources === rev.resources ? known.mesh : await buildMeshSliced(rev.resources, slicer);
        this.lastMesh = { resources: rev.resources, mesh };
        snapshot = await this.cache.prepare(await translateSliced(mesh, this.registry.endpoints(), this.translateOptions(), slicer), slicer);
      }
      // Superseded (a newer snapshot went in meanwhile): what this one took in is translated again, in full.
      if (!this.install(snapshot, rev.revision, epoch)) this.endpointChanges = 'all';
    } catch (e) {
      this.endpointChanges = 'all';
      // Keep serving the last good snapshot. Stored config was validated, so this is a bug.
      this.log.error({ err: e, revision: rev.revision }, 'failed to build the xDS snapshot; serving the previous one');
    }
  }
}

/** The default of --push-debounce-max. */
export const DEFAULT_PUSH_DEBOUNCE_MAX_MS = 1000;

function host(listen: string): string { return listen.slice(0, listen.lastIndexOf(':')); }

const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
};

function bind(server: grpc.Server, listen: string, flag: string, creds: grpc.ServerCredentials): Promise<number> {
  parseListen(listen, flag);
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, creds, (err, port) => (err ? reject(new MeshError(ErrorCodes.STORE, `${flag}: cannot listen for xDS on ${listen}: ${err.message}`)) : resolve(port)));
  });
}

/** Graceful first; anything still open after 2s (a client ignoring the end) is cut. */
function shutdown(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
    server.tryShutdown(() => { clearTimeout(force); resolve(); });
  });
}
