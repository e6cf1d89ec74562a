import { DEFAULT_H2_ENGINE } from './h2/default-engine';
import type * as net from 'node:net';
import { systemClock } from '../../shared/src/clock';
import type { Clock } from '../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import type { Logger } from '../../shared/src/log';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { ConnectionManager } from './http/connection-manager';
import { connectionManager, listenerType, routeType, routerSnapshot } from './pipeline';
import { sniffingServer } from './listener/sniffing-server';
import { Cluster } from './upstream/cluster';
import { XdsClient } from './xds/xds-client';
import type { XdsProtocol } from './xds/xds-client';
import { parseXdsServers, targetOf } from './xds/xds-servers';
import { clusterType, endpointsType } from './xds/decoders';
import { unlistedHttpFilters } from './xds/http-filter-check';
import type { ClusterConfig, EndpointsConfig, ListenerConfig } from './xds/decoders';
import type { RouteTable } from './route/route-table';
import { inboundRouteTable } from './route/inbound';
import { AdminServer } from './admin/admin-server';
import { Stats } from './stats/stats';
import { ClusterStats } from './stats/stat-bundles';
import { Registration } from './registration';
import { DEFAULT_BUCKETS_MS, RequestMetrics } from './stats/request-metrics';
import { sidecarMetrics } from './stats/prometheus';
import { AccessLog } from './stats/access-log';
import { RouteStatsReporter } from './route-stats-reporter';
import type { AccessLogSettings } from './stats/access-log';
/** The tracing module (the OpenTelemetry SDK and exporters): loaded only when the sidecar traces (--trace-endpoint), about 15 MiB of RSS otherwise saved. */
type TracingModule = typeof import('./tracing/tracer');
import type { SidecarTracer } from './tracing/tracer';
import { DEFAULT_HEAP_TRIM_IDLE_MS, HeapTrimmer } from './runtime/heap-trim';
import type { TracingSettings } from './tracing/tracer';
import { MeshTls } from './identity/mesh-tls';
import type { InboundMode, InboundTls } from './listener/sniffing-server';
import { secretType } from './xds/secret-type';
import type { SecretConfig } from './xds/secret-type';
import { SDS_ROOT_CA } from './xds/tls-context';
import { WorkloadIdentity } from './identity/workload-identity';
import { CONTROL_PLANE_CHANNEL_OPTIONS } from '../../shared/src/grpc/certificate-client';
import { AppHealth } from './app-health';
import type { AppHealthSettings } from './app-health';
import { DEFAULT_APP_HEALTH } from './app-health-settings';
import { installFastAsyncResourceBind } from './runtime/async-resource-bind';
import { RateLimitedLog } from './runtime/rate-limited-log';
import type { FilterEnv } from './filters/registry';
import { SKEIN_VERSION } from '../../shared/src/paths';
import type { DownstreamSettings } from './http/downstream-settings';
import { H2Stats } from './h2/limits';
import type { SkeinH2Engine } from './upstream/pool/skein-h2-client';

/** Where the sidecar's workload identity comes from (sidecar/src/identity/workload-identity.ts). */
export interface SidecarIdentityOptions {
  /** File with the join token for the first certificate. */
  tokenFile: string;
  /** The control plane's trust bundle (PEM), to verify it on first contact. */
  caFile: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** Renew at this fraction of the certificate's lifetime (default 0.5), ± `renewJitter` (default 0.1). */
  renewAt?: number;
  renewJitter?: number;
}

export interface SidecarOptions {
  /**
   * The control plane's xDS address (--xds): host:port, or several separated by commas; the xDS
   * client fails over between them (xds/xds-client.ts), and so does registration (registration.ts);
   * certificates and route stats go to the first.
   */
  xdsServer: string;
  /** The ADS protocol (--xds-protocol): 'delta' (default; SotW with a server that lacks delta) or 'sotw'. */
  xdsProtocol?: XdsProtocol;
  /**
   * The workload identity: mTLS to the control plane for xDS and registration. Unset: plaintext
   * xDS (a control plane's --xds-insecure-listen port, or a test's scripted server) and no
   * registration of `service`.
   */
  identity?: SidecarIdentityOptions;
  nodeId: string;
  service?: string;
  app?: string;
  appProtocol?: 'grpc' | 'http';
  version: string;
  outboundListen: string;
  inboundListen: string;
  advertiseAddress: string;
  adminListen: string;
  leaseTtlMs: number;
  drainTimeoutMs: number;
  /** How the sidecar watches its app (with `service`). Default: TCP connect every 1s, 2 to fail, 2 to pass. */
  appHealth?: AppHealthSettings;
  /** Request-body bytes kept for retries (default 65536). */
  retryBufferBytes?: number;
  /** --heap-trim-idle in ms: give the heap back after start-up and after this long with no request; 0: never. Default DEFAULT_HEAP_TRIM_IDLE_MS. */
  heapTrimIdleMs?: number;
  /** Downstream limits and timeouts of both listeners (downstream-settings.ts; defaults DEFAULT_DOWNSTREAM). */
  downstream?: Partial<DownstreamSettings>;
  /** The LDS listener whose routes the outbound port serves. Default skein.outbound. */
  outboundListener?: string;
  /**
   * How long the stats of a cluster or route the config removed stay listed (ms). Default 60000
   * (DEFAULT_STATS_RETENTION_MS); 0 drops them at once.
   */
  statsRetentionMs?: number;
  /** JSON access logs, one line per request (sampled); default: off. */
  accessLog?: AccessLogSettings;
  /** Upper bounds (ms) of skein_request_duration_milliseconds; default DEFAULT_BUCKETS_MS (--metrics-buckets). */
  metricsBuckets?: readonly number[];
  /**
   * How often the outbound listener's per route × version stats go to the control plane (ms;
   * route-stats-reporter.ts). 0 or unset: never. Needs `identity` (the control plane
   * authenticates the reporter by its workload certificate).
   */
  statsReportIntervalMs?: number;
  /** Spans to an OTLP collector (tracing/tracer.ts); default: off. Sampling comes over xDS. */
  tracing?: TracingSettings;
  /**
   * The HTTP/2 engine of the proxied path (--h2-engine). 'node' (default): Node's http2 both
   * ways. 'skein': the upstream HTTP/2 connections (to the app and to peer sidecars) use skein's
   * own engine (sidecar/src/h2/), its counters in /stats as h2.upstream.*; downstream stays Node's.
   */
  h2Engine?: 'node' | 'skein';
  clock?: Clock;
  log: Logger;
}

/**
 * The sidecar: config flows one way, from the xDS client into immutable snapshots that the
 * connection managers read per request.
 */
export class Sidecar {
  readonly clock: Clock;
  readonly stats: Stats;
  readonly outbound: ConnectionManager;
  inbound: ConnectionManager | undefined;
  private readonly servers: net.Server[] = [];
  private readonly bound: Record<string, string> = {};
  private xds!: XdsClient;
  private workload: WorkloadIdentity | undefined;
  /** Mesh mTLS from the workload identity (inbound port, upstream sidecars); none without an identity. */
  private meshTls: MeshTls | undefined;
  /** What the inbound port accepts: STRICT until the control plane's inbound Listener says otherwise. */
  private inboundMode: InboundMode = 'STRICT';
  private inboundMinVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2';
  private inboundKnown: (() => void) | undefined;
  /** Inbound refusals: at most one line per reason every 10s. */
  private readonly inboundRefusalLog: RateLimitedLog;
  /** Where each listener's http filters count and log (RBAC denials: one line per rule every 10s). */
  private readonly filterEnv: { inbound: FilterEnv; outbound: FilterEnv };
  /** The inbound connection manager's routes and cluster (the local app); its filters come with the inbound Listener. */
  private inboundRouting: { routes: RouteTable; clusters: ReadonlyMap<string, Cluster> } | undefined;
  private admin!: AdminServer;
  private registration: Registration | undefined;
  private statsReporter: RouteStatsReporter | undefined;
  private heapTrim: HeapTrimmer | undefined;
  private appHealth: AppHealth | undefined;
  private listeners: ReadonlyMap<string, ListenerConfig> = new Map();
  private routeTables: ReadonlyMap<string, RouteTable> = new Map();
  private readonly clusters = new Map<string, Cluster>();
  private endpoints: ReadonlyMap<string, EndpointsConfig> = new Map();
  private readonly seen = new Set<string>();
  /** Route names the listeners serve now (whose stats the registry keeps): outbound (RDS) and inbound (local). */
  private liveRoutes: ReadonlySet<string> = new Set();
  private inboundRoutes: ReadonlySet<string> = new Set();

  private readonly accessLog: AccessLog | undefined;
  /** Prometheus request metrics (admin /metrics), and what the xDS client told them. */
  readonly requestMetrics: RequestMetrics;
  private readonly xdsUpdatedAt = new Map<string, number>();
  private readonly xdsNacks = new Map<string, number>();
  private readonly tracer: SidecarTracer | undefined;
  /** --h2-engine skein: what every upstream H2Connection shares (its counters); undefined on Node's engine. */
  private readonly h2Upstream: SkeinH2Engine | undefined;
  /** --h2-engine skein: the counters every downstream connection (both listeners) shares, and the listeners' engine option. */
  private readonly h2Downstream: H2Stats | undefined;

  private constructor(private readonly opts: SidecarOptions, private readonly tracing: TracingModule | undefined) {
    this.clock = opts.clock ?? systemClock;
    const skein = (opts.h2Engine ?? DEFAULT_H2_ENGINE) === 'skein';
    this.h2Upstream = skein ? { stats: new H2Stats() } : undefined;
    this.h2Downstream = skein ? new H2Stats() : undefined;
    this.accessLog = opts.accessLog === undefined ? undefined : new AccessLog(opts.accessLog);
    this.requestMetrics = new RequestMetrics(opts.metricsBuckets ?? DEFAULT_BUCKETS_MS, { service: opts.service ?? '', version: opts.version });
    this.stats = new Stats({ clock: this.clock, ...(opts.statsRetentionMs !== undefined ? { retentionMs: opts.statsRetentionMs } : {}) });
    this.stats.setLiveness((scope) => this.statsScopeLive(scope));
    this.inboundRefusalLog = new RateLimitedLog(this.clock);
    const env = (name: string): FilterEnv => Object.freeze({ stats: this.stats, statPrefix: `listener.${name}.`, log: opts.log, warnings: new RateLimitedLog(this.clock) });
    this.filterEnv = { inbound: env('inbound'), outbound: env('outbound') };
    this.tracer = opts.tracing === undefined || tracing === undefined ? undefined : new tracing.SidecarTracer(opts.tracing, { service: opts.service ?? 'sidecar', version: opts.version, nodeId: opts.nodeId }, this.stats);
    this.outbound = connectionManager({ name: 'outbound', metrics: this.requestMetrics, ...(this.accessLog !== undefined ? { accessLog: this.accessLog } : {}), ...(this.tracer !== undefined ? { tracer: new this.tracing!.ListenerTracer(this.tracer, this.tracing!.SpanKind.CLIENT, undefined) } : {}), stats: this.stats, policy: { trustForwardedFor: true }, clock: this.clock, log: opts.log, ...(opts.retryBufferBytes !== undefined ? { retryBufferBytes: opts.retryBufferBytes } : {}), ...(opts.downstream !== undefined ? { downstream: opts.downstream } : {}), ...this.downstreamEngine() });
  }

  static async start(opts: SidecarOptions): Promise<Sidecar> {
    installFastAsyncResourceBind();
    const sc = new Sidecar(opts, opts.tracing === undefined ? undefined : await import('./tracing/tracer'));
    try {
      if (opts.identity !== undefined) await sc.startIdentity(opts.identity);
      await sc.startAdmin();
      sc.bound['outbound'] = await sc.listen(sc.outbound, opts.outboundListen, '--outbound-listen');
      if (opts.service !== undefined) await sc.startInbound();
    } catch (e) {
      // Whatever already listens would keep the process alive with nothing to serve.
      await sc.abandon();
      throw e;
    }
    sc.startXds();
    if (opts.service !== undefined && sc.workload === undefined) {
      // Embedded use with a scripted xDS server: the inbound listener serves, nothing registers
      // (the CLI refuses --service without an identity).
      opts.log.warn({ service: opts.service }, 'no workload identity: the instance is not registered with the control plane');
    } else if (opts.service !== undefined) {
      // Registered once the inbound port knows its mode (the control plane's inbound Listener),
      // so no caller reaches it while it would refuse what the service allows. A control plane
      // that sends none (no Service declared) leaves it STRICT; registration goes ahead after 5s.
      await sc.inboundModeKnown(5000);
      sc.registration = new Registration({ servers: allServers(opts.xdsServer), credentials: sc.workload!.controlPlaneCredentials(), channelOptions: CONTROL_PLANE_CHANNEL_OPTIONS, service: opts.service, address: opts.advertiseAddress, port: Number(sc.bound['inbound']!.split(':').pop()), labels: { version: opts.version }, ttlMs: opts.leaseTtlMs, node: opts.nodeId, clock: sc.clock, log: opts.log });
      await sc.registration.start();
      if (sc.appHealth?.unhealthyReason !== undefined) await sc.registration.setHealth('UNHEALTHY');
    }
    sc.startStatsReporter();
    sc.startHeapTrim();
    opts.log.info({ ...sc.bound, node: opts.nodeId, xds: opts.xdsServer, identity: sc.workload?.spiffeId ?? 'none (plaintext xDS)' }, 'sidecar started');
    return sc;
  }

  addresses(): Record<string, string> { return { ...this.bound }; }

  /** --heap-trim-idle: heap given back after start-up and when idle (runtime/heap-trim.ts). */
  private startHeapTrim(): void {
    const idleMs = this.opts.heapTrimIdleMs ?? DEFAULT_HEAP_TRIM_IDLE_MS;
    if (idleMs <= 0) return;
    const total = (l: string) => this.stats.counter(`listener.${l}.downstream_rq_total`);
    const counters = [total('outbound'), total('inbound')];
    this.heapTrim = new HeapTrimmer({ clock: this.clock, idleMs, log: this.opts.log, activity: () => counters[0]!.value + counters[1]!.value });
    this.heapTrim.start();
  }

  /** Route stats to the control plane (--stats-report-interval), over the workload's mTLS. */
  private startStatsReporter(): void {
    const intervalMs = this.opts.statsReportIntervalMs ?? 0;
    if (intervalMs <= 0) return;
    if (this.workload === undefined) {
      this.opts.log.info('route stats are not reported: no workload identity (the control plane takes reports over mTLS only)');
      return;
    }
    this.statsReporter = new RouteStatsReporter({
      server: firstServer(this.opts.xdsServer), credentials: this.workload.controlPlaneCredentials(), channelOptions: CONTROL_PLANE_CHANNEL_OPTIONS,
      node: this.opts.nodeId, intervalMs, windows: () => this.outbound.backendWindows(), clock: this.clock, log: this.opts.log,
    });
    this.statsReporter.start();
  }

  private inboundModeKnown(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.clock.setTimer(ms, () => { this.inboundKnown = undefined; this.opts.log.warn({ listener: this.inboundListenerName() }, 'no inbound Listener from the control plane yet: the inbound port stays STRICT (mTLS only)'); resolve(); });
      this.inboundKnown = () => { t.cancel(); this.inboundKnown = undefined; resolve(); };
    });
  }

  private inboundListenerName(): string { return `skein.inbound.${this.opts.service ?? ''}`; }

  /** Mesh mTLS on the inbound port: mode from the control plane, certificate from the identity, refusals counted and logged. */
  private inboundTls(): InboundTls | undefined {
    const m = this.meshTls;
    if (m === undefined) return undefined;
    const accepted = { mtls: this.stats.counter('listener.inbound.mtls.cx_accepted'), plaintext: this.stats.counter('listener.inbound.plaintext.cx_accepted') };
    return {
      mode: () => this.inboundMode,
      contextOptions: () => m.contextOptions(this.inboundMinVersion),
      generation: () => m.generation() * 2 + (this.inboundMinVersion === 'TLSv1.3' ? 1 : 0),
      peerOf: (cert) => m.peerOf(cert),
      accepted: (how) => accepted[how].inc(),
      refused: (reason, detail, remote) => {
        this.stats.counter('listener.inbound.cx_refused', { reason }).inc();
        // At most one line per reason every 10s, with how many were not logged: a port scan or a
        // misconfigured client must not flood the log.
        const suppressed = this.inboundRefusalLog.take(reason);
        if (suppressed < 0) return;
        this.opts.log.warn({ reason, remote, mode: this.inboundMode, ...(suppressed > 0 ? { alsoRefusedSinceLastLog: suppressed } : {}) }, `inbound connection refused: ${detail}`);
      },
    };
  }

  /** Gets the workload certificate (failing the start if the control plane refuses) and exports its lifetime. */
  private async startIdentity(o: SidecarIdentityOptions): Promise<void> {
    this.workload = await WorkloadIdentity.start({
      servers: allServers(this.opts.xdsServer), tokenFile: o.tokenFile, caFile: o.caFile,
      ...(o.renewAt !== undefined ? { renewAt: o.renewAt } : {}), ...(o.renewJitter !== undefined ? { renewJitter: o.renewJitter } : {}),
      identity: { trustDomain: o.trustDomain, namespace: o.namespace, serviceAccount: o.serviceAccount },
      clock: this.clock, log: this.opts.log,
    });
    const expires = this.stats.gauge('identity.cert_expires_in_seconds');
    const lifetime = this.stats.gauge('identity.cert_lifetime_seconds');
    const renewals = this.stats.gauge('identity.cert_renewals');
    const failures = this.stats.gauge('identity.cert_renewal_failures');
    const rot = this.workload.rotating;
    this.meshTls = new MeshTls(rot, this.workload.spiffeId, o.trustDomain, this.opts.log);
    this.refreshIdentityGauges = () => {
      expires.set(Math.floor(rot.expiresInSeconds()));
      lifetime.set(Math.round((rot.current.notAfter - rot.current.notBefore) / 1000));
      renewals.set(rot.renewals);
      failures.set(rot.failures);
    };
  }

  private refreshIdentityGauges: () => void = () => undefined;

  /** Closes what a failed start opened. */
  private async abandon(): Promise<void> {
    this.workload?.close();
    await this.appHealth?.close();
    for (const s of this.servers) s.close();
    for (const c of this.inboundClusters()) c.close();
    await this.admin?.close();
  }

  /**
   * SIGTERM: deregister and stop accepting connections, but keep serving the open ones until
   * their peers close them (a peer that has not yet seen this endpoint leave EDS still sends
   * here; a peer that has retires its pool, which closes the connection). Then refuse new
   * requests, let in-flight ones finish, close every connection and exit. All of it within the
   * drain timeout.
   */
  async drain(): Promise<void> {
    const log = this.opts.log;
    log.info({ timeoutMs: this.opts.drainTimeoutMs }, 'draining');
    const deadline = this.clock.now() + this.opts.drainTimeoutMs;
    await this.registration?.stop();
    await this.appHealth?.close();
    let timer: { cancel(): void } | undefined;
    await Promise.race([
      Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r())))),
      new Promise<void>((r) => { timer = this.clock.setTimer(Math.max(0, deadline - this.clock.now()), r); }),
    ]);
    timer?.cancel();
    for (const cm of [this.outbound, this.inbound]) if (cm) cm.draining = true;
    while (this.activeRequests() > 0 && this.clock.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.activeRequests() > 0) log.warn({ active: this.activeRequests() }, 'drain timeout: closing with requests in flight');
    for (const cm of [this.outbound, this.inbound]) if (cm) cm.closeConnections();
    // The inbound cluster too: its pooled session to the local app would keep the process alive.
    for (const c of [...this.clusters.values(), ...this.inboundClusters()]) c.close();
    this.statsReporter?.stop();
    this.heapTrim?.close();
    this.xds.close();
    this.workload?.close();
    this.accessLog?.flush();
    await this.tracer?.shutdown();
    await this.admin.close();
  }

  /**
   * Downstream requests still being served, per connection manager (not upstream attempts: a
   * request in a fault delay, a retry backoff or streaming a failed response has none).
   */
  private activeRequests(): number {
    return this.outbound.activeStreams + (this.inbound?.activeStreams ?? 0);
  }

  private inboundClusters(): Cluster[] { return this.inbound ? [...this.inbound.snapshot.clusters.values()] : []; }

  private async listen(cm: ConnectionManager, listen: string, flag: string, tls?: InboundTls): Promise<string> {
    const i = listen.lastIndexOf(':');
    const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    const port = Number(listen.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: "${listen}" must be host:port`);
    const server = sniffingServer(cm.h1, cm.h2, { acceptH2: cm.acceptH2, ...(tls !== undefined ? { tls } : {}) });
    const ls = cm.listenerStats;
    server.on('connection', (socket: net.Socket) => {
      ls.cxTotal.inc();
      ls.cxActive.add(1);
      socket.once('close', () => ls.cxActive.add(-1));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new MeshError(ErrorCodes.VALIDATION, `${flag}: cannot listen on ${listen}: ${e.message}`)));
      server.listen(port, host, () => resolve());
    });
    this.servers.push(server);
    return `${host}:${(server.address() as net.AddressInfo).port}`;
  }

  private async startInbound(): Promise<void> {
    const o = this.opts;
    const [host, port] = [o.app!.slice(0, o.app!.lastIndexOf(':')), Number(o.app!.slice(o.app!.lastIndexOf(':') + 1))];
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new MeshError(ErrorCodes.VALIDATION, `--app: "${o.app}" must be host:port`);
    const cluster = new Cluster({ name: 'skein.inbound', edsServiceName: 'skein.inbound', lbPolicy: 'round_robin', connectTimeoutMs: 1000, protocol: o.appProtocol === 'http' ? 'h1' : 'h2' } as ClusterConfig, this.clock, { stats: this.stats, log: o.log, ...this.h2Env() });
    cluster.updateEndpoints([{ address: host, port, weight: 1, zone: '', health: 'HEALTHY' }]);
    cluster.stats = new ClusterStats(this.stats, 'skein.inbound');
    const settings = o.appHealth ?? DEFAULT_APP_HEALTH;
    this.appHealth = new AppHealth(cluster.allHosts()[0]!, settings, { clock: this.clock, log: o.log, stats: this.stats, cluster: 'skein.inbound' }, (healthy, reason) => {
      if (healthy) o.log.info({ app: o.app }, 'the app is healthy again: reporting the endpoint HEALTHY');
      else o.log.warn({ app: o.app, reason }, 'the app is down: reporting the endpoint UNHEALTHY');
      void this.registration?.setHealth(healthy ? 'HEALTHY' : 'UNHEALTHY');
    });
    // Connect failures of real requests to the app reach AppHealth (the inbound cluster has no outlier detection).
    cluster.outlier = this.appHealth;
    // Inbound keeps the caller's attempt count (the client sidecar's).
    this.inbound = connectionManager({ name: 'inbound', metrics: this.requestMetrics, ...(this.accessLog !== undefined ? { accessLog: this.accessLog } : {}), ...(this.tracer !== undefined ? { tracer: new this.tracing!.ListenerTracer(this.tracer, this.tracing!.SpanKind.SERVER, o.version) } : {}), stats: this.stats, policy: { trustForwardedFor: false }, clock: this.clock, log: o.log, setAttemptCount: false, refuseUnforwarded: true, ...(o.retryBufferBytes !== undefined ? { retryBufferBytes: o.retryBufferBytes } : {}), ...(o.downstream !== undefined ? { downstream: o.downstream } : {}), ...this.downstreamEngine() });
    const routes = inboundRouteTable('skein.inbound');
    this.inboundRouting = { routes, clusters: new Map([['skein.inbound', cluster]]) };
    this.inbound.snapshot = routerSnapshot(routes, this.inboundRouting.clusters, undefined, this.filterEnv.inbound);
    this.inboundRoutes = routes.routeNames();
    this.bound['inbound'] = await this.listen(this.inbound, o.inboundListen, '--inbound-listen', this.inboundTls());
  }

  private startXds(): void {
    const o = this.opts;
    this.xds = new XdsClient({
      server: o.xdsServer, ...(o.xdsProtocol === undefined ? {} : { protocol: o.xdsProtocol }),
      node: { id: o.nodeId, cluster: o.service ?? 'sidecar', metadata: { ...(o.service ? { service: o.service } : {}), version: o.version }, userAgentName: 'skein-sidecar', userAgentVersion: SKEIN_VERSION },
      types: new Map<string, unknown>([[TYPE_URLS.LISTENER, listenerType], [TYPE_URLS.ROUTE, routeType], [TYPE_URLS.CLUSTER, clusterType], [TYPE_URLS.ENDPOINT, endpointsType], [TYPE_URLS.SECRET, secretType]]) as never,
      clock: this.clock, log: o.log,
      ...(this.workload === undefined ? {} : { credentials: this.workload.controlPlaneCredentials(), channelOptions: CONTROL_PLANE_CHANNEL_OPTIONS }),
      check: (type, resources) => this.checkResources(type, resources),
    });
    this.xds.onUpdate((type, resources) => { this.xdsUpdatedAt.set(type, Date.now()); this.onUpdate(type, resources); });
    this.xds.onNack((n) => this.xdsNacks.set(n.typeUrl, (this.xdsNacks.get(n.typeUrl) ?? 0) + 1));
    // Which control plane, on which protocol: xds.connects{protocol=delta|sotw,server=HOST:PORT} in /stats.
    this.xds.onConnect(() => { const c = this.xds.current; if (c !== undefined) this.stats.counter('xds.connects', { protocol: c.protocol, server: c.server }).inc(); });
    // Only the listener the outbound port serves, and (below) only its RouteConfiguration: the
    // control plane also serves an api_listener and a RouteConfiguration per service (for
    // proxyless clients), which this proxy would decode, compile and hold for nothing.
    this.xds.subscribe(TYPE_URLS.LISTENER, this.listenerNames());
    this.xds.subscribe(TYPE_URLS.CLUSTER, '*');
    // The mesh's roots (SDS ROOTCA): a root rotation reaches this sidecar's mTLS through it.
    if (this.meshTls !== undefined) this.xds.subscribe(TYPE_URLS.SECRET, [SDS_ROOT_CA]);
  }

  /** The listeners this sidecar asks for: its outbound one and, with a service and an identity, its inbound one. */
  private listenerNames(): string[] {
    const outbound = this.opts.outboundListener ?? 'skein.outbound';
    return this.opts.service !== undefined && this.meshTls !== undefined ? [outbound, this.inboundListenerName()] : [outbound];
  }

  private onUpdate(type: string, resources: ReadonlyMap<string, unknown>): void {
    this.seen.add(type);
    if (type === TYPE_URLS.SECRET) {
      this.meshTls?.setRoots((resources as ReadonlyMap<string, SecretConfig>).get(SDS_ROOT_CA)?.trustedCaPem);
      return;
    }
    if (type === TYPE_URLS.LISTENER) {
      this.listeners = resources as ReadonlyMap<string, ListenerConfig>;
      const inbound = this.listeners.get(this.inboundListenerName())?.inbound;
      if (inbound !== undefined) {
        if (inbound.mode !== this.inboundMode) this.opts.log.info({ from: this.inboundMode, to: inbound.mode }, 'inbound mTLS mode changed');
        this.inboundMode = inbound.mode;
        this.inboundMinVersion = inbound.minVersion;
        // The inbound filters (RBAC) swap in with the listener: requests in flight keep theirs.
        const r = this.inboundRouting;
        if (this.inbound !== undefined && r !== undefined) this.inbound.snapshot = routerSnapshot(r.routes, r.clusters, inbound.httpFilters, this.filterEnv.inbound, inbound.tracing);
        this.inboundKnown?.();
      }
      const l = this.listeners.get(this.opts.outboundListener ?? 'skein.outbound');
      this.xds.subscribe(TYPE_URLS.ROUTE, l === undefined ? [] : [l.routeConfigName]);
    } else if (type === TYPE_URLS.ROUTE) {
      this.routeTables = resources as ReadonlyMap<string, RouteTable>;
    } else if (type === TYPE_URLS.CLUSTER) {
      const configs = resources as ReadonlyMap<string, ClusterConfig>;
      for (const [name, c] of this.clusters) if (!configs.has(name)) { this.clusters.delete(name); c.stopResilience(); void c.drain().then(() => c.close()); }
      for (const [name, cfg] of configs) {
        let c = this.clusters.get(name);
        if (c) c.updateConfig(cfg);
        else {
          c = new Cluster(cfg, this.clock, { stats: this.stats, log: this.opts.log, ...(this.meshTls !== undefined ? { tls: this.meshTls } : {}), ...this.h2Env() });
          c.stats = new ClusterStats(this.stats, name);
          this.clusters.set(name, c);
        }
        // A STATIC cluster carries its hosts (load_assignment); an EDS one gets them from EDS.
        const eps = cfg.type === 'STATIC' ? cfg.staticEndpoints : this.endpoints.get(cfg.edsServiceName);
        if (eps) c.updateEndpoints(eps.hosts);
      }
      const eds = [...configs.values()].filter((c) => c.type === 'EDS').map((c) => c.edsServiceName);
      this.xds.subscribe(TYPE_URLS.ENDPOINT, [...new Set(eds)]);
    } else if (type === TYPE_URLS.ENDPOINT) {
      this.endpoints = resources as ReadonlyMap<string, EndpointsConfig>;
      for (const c of this.clusters.values()) {
        if (c.config.type !== 'EDS') continue;
        const eps = this.endpoints.get(c.config.edsServiceName);
        if (eps) c.updateEndpoints(eps.hosts);
      }
    }
    this.publish();
  }

  /**
   * Swaps the outbound listener's snapshot (in-flight requests keep the old one), then lets go
   * of what removed routes and clusters held: the connection manager's cached route stats and,
   * after the retention, their stats (Stats.reconcile).
   */
  private publish(): void {
    const name = this.opts.outboundListener ?? 'skein.outbound';
    const l = this.listeners.get(name);
    const routes = l ? this.routeTables.get(l.routeConfigName) : undefined;
    this.outbound.snapshot = routerSnapshot(routes, new Map(this.clusters), l?.httpFilters, this.filterEnv.outbound, l?.tracing);
    const live = routes?.routeNames() ?? new Set<string>();
    this.outbound.forgetRouteStats(live);
    this.liveRoutes = live;
    this.stats.reconcile();
  }

  /**
   * Cross-resource checks before an xDS response is accepted: a RouteConfiguration that turns on
   * an http filter the outbound listener does not list is NACKed (xds/http-filter-check.ts). A
   * Listener that drops such a filter is accepted with a warning (make-before-break push order).
   */
  private checkResources(type: string, resources: ReadonlyMap<string, unknown>): string[] {
    const name = this.opts.outboundListener ?? 'skein.outbound';
    if (type === TYPE_URLS.ROUTE) {
      const l = this.listeners.get(name);
      if (l === undefined) return [];
      const t = resources.get(l.routeConfigName) as RouteTable | undefined;
      return t === undefined ? [] : unlistedHttpFilters(t, l);
    }
    if (type === TYPE_URLS.LISTENER) {
      const l = resources.get(name) as ListenerConfig | undefined;
      const t = l === undefined ? undefined : this.routeTables.get(l.routeConfigName);
      if (l !== undefined && t !== undefined) {
        for (const problem of unlistedHttpFilters(t, l)) this.opts.log.warn({ listener: name }, `${problem}; those settings do nothing until the route configuration follows`);
      }
    }
    return [];
  }

  /** Whether a stats scope belongs to a cluster or route the config has now. */
  private statsScopeLive(scope: string): boolean {
    if (scope.startsWith('cluster.')) {
      const name = scope.slice('cluster.'.length);
      return this.clusters.has(name) || this.inboundClusters().some((c) => c.name === name);
    }
    if (scope.startsWith('route.')) {
      const name = scope.slice('route.'.length);
      return this.liveRoutes.has(name) || this.inboundRoutes.has(name);
    }
    return true;
  }

  ready(): { ok: boolean; reason?: string } {
    const appDown = this.appHealth?.unhealthyReason;
    if (appDown !== undefined) return { ok: false, reason: appDown };
    const l = this.listeners.get(this.opts.outboundListener ?? 'skein.outbound');
    if (!this.seen.has(TYPE_URLS.LISTENER)) return { ok: false, reason: 'waiting for listeners (LDS)' };
    if (l === undefined) return { ok: false, reason: `the control plane sent no listener named ${this.opts.outboundListener ?? 'skein.outbound'}` };
    if (!this.routeTables.has(l.routeConfigName)) return { ok: false, reason: `waiting for route configuration ${l.routeConfigName} (RDS)` };
    if (!this.seen.has(TYPE_URLS.CLUSTER)) return { ok: false, reason: 'waiting for clusters (CDS)' };
    return { ok: true };
  }

  /**
   * `cluster.<c>.upstream_cx_active`: the upstream connections the cluster's pools hold open now,
   * as /clusters shows them (HTTP/2 sessions past their connect, HTTP/1.1 connections). Read from
   * the pools when /stats is read, not kept on every connect and close.
   */
  refreshConnectionGauges(): void {
    for (const c of [...this.clusters.values(), ...this.inboundClusters()]) {
      if (c.stats === undefined) continue;
      let open = 0;
      for (const h of c.allHosts()) {
        const p = c.poolStats(h) as { sessions?: number; connecting?: number; connected?: number } | undefined;
        if (p === undefined) continue;
        open += p.connected ?? (p.sessions ?? 0) - (p.connecting ?? 0);
      }
      c.stats.cxActive.value = open;
    }
  }

  /** The clusters' engine option: skein's for --h2-engine skein, else none (Node's). */
  private h2Env(): { h2?: SkeinH2Engine } { return this.h2Upstream === undefined ? {} : { h2: this.h2Upstream }; }

  /** The listeners' engine option: skein's, with the shared downstream counters, for --h2-engine skein; else none (Node's). */
  private downstreamEngine(): { h2Engine?: 'skein'; h2Stats?: H2Stats } {
    return this.h2Downstream === undefined ? {} : { h2Engine: 'skein', h2Stats: this.h2Downstream };
  }

  /**
   * `h2.upstream.<counter>` and `h2.downstream.<counter>`: the skein engine's counters over every
   * upstream and every downstream connection (H2Stats), copied when /stats is read.
   */
  refreshH2Stats(): void {
    const up = this.h2Upstream;
    if (up !== undefined) for (const [k, v] of Object.entries(up.stats) as [string, number][]) this.stats.counter(`h2.upstream.${snakeCase(k)}`).value = v;
    const down = this.h2Downstream;
    if (down !== undefined) for (const [k, v] of Object.entries(down) as [string, number][]) this.stats.counter(`h2.downstream.${snakeCase(k)}`).value = v;
  }

  private async startAdmin(): Promise<void> {
    this.admin = new AdminServer({
      ready: () => this.ready(),
      configDump: () => this.xds?.state(),
      clusters: () => [...this.clusters.values(), ...this.inboundClusters()].map((c) => ({
        name: c.name, protocol: c.protocol, lbPolicy: c.config.lbPolicy, panic: c.panic,
        circuitBreakers: c.resources.snapshot(),
        hosts: c.allHosts().map((h) => ({ address: h.key, health: h.health, weight: h.weight, zone: h.zone, activeRequests: h.activeRequests, requestsTotal: h.requestsTotal, failuresTotal: h.failuresTotal, ...c.hostResilience(h), pool: c.poolStats(h) })),
      })),
      stats: this.stats,
      memory: () => ({ clusters: this.clusters.size, routes: this.liveRoutes.size, statScopes: this.stats.scopeCount, statScopesRetained: this.stats.retainedCount }),
      beforeStats: () => { this.refreshConnectionGauges(); this.refreshIdentityGauges(); this.refreshH2Stats(); },
      metrics: sidecarMetrics({
        requests: this.requestMetrics, stats: this.stats,
        xds: { versions: () => (this.xds?.state() ?? []).map((t) => [t.typeUrl, t.version] as [string, string]), lastUpdates: () => this.xdsUpdatedAt, nacks: () => this.xdsNacks },
        certNotAfter: () => this.workload?.rotating.current.notAfter,
      }),
      identity: () => (this.meshTls === undefined ? undefined : { ...this.meshTls.describe(), inboundMode: this.opts.service === undefined ? null : this.inboundMode }),
    });
    const l = this.opts.adminListen;
    const i = l.lastIndexOf(':');
    const port = await this.admin.listen(l.slice(0, i), Number(l.slice(i + 1)));
    this.bound['admin'] = `${l.slice(0, i)}:${port}`;
  }
}

function snakeCase(camel: string): string { return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`); }

/** Every address of --xds, in order (registration moves to the next when one is unreachable). */
function allServers(list: string): string[] {
  return parseXdsServers(list).map((s) => targetOf(s.host, s.port));
}

/** The first address of --xds (certificates and route stats go there). */
function firstServer(list: string): string {
  const s = parseXdsServers(list)[0]!;
  return targetOf(s.host, s.port);
}
