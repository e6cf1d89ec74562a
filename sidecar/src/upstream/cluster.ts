import type { Clock } from '../../../shared/src/clock';
import type { ConnectionEvents } from './pool/connection-events';
import { Host } from './host';
import type { LoadBalancer, Picker } from './host';
import { createLoadBalancer } from './lb/registry';
import { DEFAULT_PANIC_THRESHOLD, routableHosts } from './host-set';
import { H2Pool } from './pool/h2-pool';
import type { H2PoolSettings } from './pool/h2-pool';
import { skeinH2Pool } from './pool/skein-h2-client';
import type { SkeinH2Engine, SkeinH2Pool } from './pool/skein-h2-client';
import { H1Pool, loadUndici } from './pool/h1-pool';
import type { ClusterConfig, UpstreamTlsConfig } from './cluster-config';
import type { UpstreamTlsSource } from './upstream-tls';
import type { EndpointsConfig } from './endpoints-config';
import type { ClusterStats } from '../stats/stat-bundles';
import type { Stats } from '../stats/stats';
import type { Logger } from '../../../shared/src/log';
import { OutlierDetector } from '../resilience/outlier-detector';
import { HealthChecker } from '../resilience/health-checker';
import { ResourceManager } from './resources';
import { requestSucceeded } from '../stats/grpc-status';

/**
 * What outlier detection learns from one attempt: 'response' (the upstream answered; the status
 * says how), a local-origin failure, or 'none' (nothing about the host: its pool closed, the
 * stream was refused, the caller left).
 */
export type AttemptReport = 'response' | 'connect-failure' | 'timeout' | 'reset' | 'none';


/** What the router tells outlier detection after every attempt (resilience/outlier-detector.ts). */
export interface OutlierSink {
  onResponse(host: Host, status: number): void;
  onLocalOrigin(host: Host, kind: 'connect-failure' | 'timeout' | 'reset' | 'success'): void;
}

/**
 * A cluster: its config, its hosts (stable objects across EDS updates), the load balancer over
 * the routable ones, and one connection pool per host. Endpoint updates publish a new picker;
 * requests in flight keep the host and pool they picked.
 */
/** The host map of a cluster with no endpoints (shared: never mutated). */
const NO_HOSTS: ReadonlyMap<string, Host> = new Map();

export class Cluster {
  /** Replaced whole by updateEndpoints, never mutated; NO_HOSTS while there are none. */
  private hosts: ReadonlyMap<string, Host> = NO_HOSTS;
  /** One pool per host that has carried a request; the map is made with the first one. */
  private pools: Map<string, H2Pool | SkeinH2Pool | H1Pool> | undefined;
  private lb: LoadBalancer;
  /** Set by the owner when stats are wanted (the sidecar always does). */
  stats: ClusterStats | undefined;
  /** Circuit breakers and the retry budget. */
  readonly resources: ResourceManager;
  /** Outlier detection, when the cluster has it. */
  outlier: OutlierSink | undefined;

  private detector: OutlierDetector | undefined;
  private checker: HealthChecker | undefined;
  private checkerKey = '';

  /**
   * `env`: where outlier detection and health checks log and count (without it they are off),
   * `tls`, the workload's mTLS for hosts with a sidecar (without it they get plaintext), and
   * `h2`: HTTP/2 hosts get skein's own engine (`--h2-engine skein`) instead of Node's.
   */
  constructor(public config: ClusterConfig, private readonly clock: Clock, private readonly env?: { stats: Stats; log: Logger; tls?: UpstreamTlsSource; h2?: SkeinH2Engine }) {
    this.lb = createLoadBalancer(lbConfigOf(config));
    this.resources = new ResourceManager(config.name, config.circuitBreakers, env?.stats);
    if (config.protocol === 'h1') loadUndici(); // off the request path (H1Pool)
    this.configureResilience();
  }

  /**
   * Outlier detection and active health checks follow the config: created, updated or stopped.
   * Both only flip host flags and call publish(); the balancer sees the resulting host set.
   */
  private configureResilience(): void {
    const env = this.env;
    if (env === undefined) return;
    const od = this.config.outlierDetection;
    if (od === undefined) {
      if (this.detector !== undefined) {
        this.detector.close();
        this.detector = undefined;
        this.outlier = undefined;
        for (const h of this.hosts.values()) h.ejected = false;
        this.publish();
      }
    } else if (this.detector !== undefined) {
      this.detector.updateConfig(od);
    } else {
      this.detector = new OutlierDetector({ cluster: this.name, config: od, clock: this.clock, log: env.log, stats: env.stats, onChange: () => this.publish() });
      this.detector.setHosts([...this.hosts.values()]);
      this.outlier = this.detector;
    }
    const hc = this.config.healthChecks;
    const key = hc === undefined ? '' : JSON.stringify([hc, this.config.protocol]);
    if (key === this.checkerKey) return;
    this.checkerKey = key;
    if (this.checker !== undefined) { void this.checker.close(); this.checker = undefined; }
    if (hc === undefined) for (const h of this.hosts.values()) h.hcFailed = false;
    else {
      // HTTP checks speak the cluster's protocol (our proto subset has no codec_client_type).
      const config = hc.check.kind === 'http' && this.config.protocol === 'h2' ? { ...hc, check: { ...hc.check, codec: 'http2' as const } } : hc;
      this.checker = new HealthChecker({
        cluster: this.name, config, clock: this.clock, log: env.log, stats: env.stats,
        onChange: () => this.publish(),
        onPassed: (host) => this.detector?.onActiveHealthCheckSuccess(host),
      });
      this.checker.setHosts([...this.hosts.values()]);
    }
    this.publish();
  }

  /** Stops outlier detection and health checks (the cluster is going away). */
  stopResilience(): void {
    this.detector?.close();
    this.detector = undefined;
    this.outlier = undefined;
    if (this.checker !== undefined) { void this.checker.close(); this.checker = undefined; }
  }

  /** Outlier and health-check state of a host, for /clusters. */
  hostResilience(host: Host): Record<string, unknown> {
    return { ejected: host.ejected, hcFailed: host.hcFailed, outlier: this.detector?.hostInfo(host), healthCheck: this.checker?.hostInfo(host) };
  }

  get name(): string { return this.config.name; }
  get picker(): Picker { return this.lb.picker; }
  get protocol(): 'h2' | 'h1' { return this.config.protocol; }
  /**
   * An attempt on `host` begins: takes the max_requests breaker (false: it is open, nothing was
   * taken) and counts the host's load.
   */
  /** The pools' connection events, counted in the cluster's stats (one object per cluster). */
  private readonly connectionEvents: ConnectionEvents = {
    connectAttempt: () => { this.stats?.cxTotal.inc(); },
    connectFailed: () => { this.stats?.cxConnectFail.inc(); },
  };

  onAttemptStart(host: Host): boolean {
    if (!this.resources.tryStartRequest()) { this.stats?.rqOverflow.inc(); return false; }
    host.activeRequests++;
    host.requestsTotal++;
    if (this.stats !== undefined) this.stats.rqActive.value++;
    return true;
  }

  /**
   * An attempt that onAttemptStart admitted ended: the one place its accounting fans out (host
   * load and totals, the load balancer's latency sample, the cluster's stats, the breaker, outlier
   * detection). `status` is the HTTP status for stats (0: no response), `grpcStatus` -1 for none,
   * `outlierStatus` the status outlier detection sees for a 'response' (gRPC mapped to HTTP).
   */
  onAttemptEnd(host: Host, report: AttemptReport, status: number, grpcStatus: number, outlierStatus: number, latencyMs: number, now: number): void {
    host.activeRequests--;
    if (this.stats !== undefined) this.stats.rqActive.value--;
    if (!requestSucceeded(status, grpcStatus)) host.failuresTotal++;
    this.lb.onCallEnded?.(host, latencyMs, now);
    this.stats?.record(status, latencyMs * 1000, now, grpcStatus);
    this.resources.endRequest();
    const od = this.outlier;
    if (od !== undefined && report !== 'none') {
      if (report !== 'response') od.onLocalOrigin(host, report);
      else { od.onLocalOrigin(host, 'success'); od.onResponse(host, outlierStatus); }
    }
  }

  /** A new cluster config: a new LB if the policy changed; pools are rebuilt if connection settings changed. */
  updateConfig(config: ClusterConfig): void {
    const lbChanged = JSON.stringify(lbConfigOf(config)) !== JSON.stringify(lbConfigOf(this.config));
    const poolChanged = config.protocol !== this.config.protocol || config.connectTimeoutMs !== this.config.connectTimeoutMs ||
      config.maxConcurrentStreams !== this.config.maxConcurrentStreams || config.idleTimeoutMs !== this.config.idleTimeoutMs ||
      config.maxRequestsPerConnection !== this.config.maxRequestsPerConnection || !sameTls(config.tls, this.config.tls);
    this.config = config;
    if (config.protocol === 'h1') loadUndici();
    this.resources.update(config.circuitBreakers);
    if (lbChanged) { this.lb = createLoadBalancer(lbConfigOf(config)); this.publish(); }
    this.configureResilience();
    if (poolChanged && this.pools !== undefined) for (const key of [...this.pools.keys()]) this.retirePool(key);
  }

  /** New endpoints from EDS. Hosts that stay keep their identity and stats; removed ones drain. */
  updateEndpoints(eps: EndpointsConfig['hosts']): void {
    const next = new Map<string, Host>();
    for (const e of eps) {
      const probe = new Host(e.address, e.port, e.weight, e.zone, e.health);
      probe.tls = e.tls === true;
      const prev = this.hosts.get(probe.key);
      if (prev !== undefined) {
        prev.weight = e.weight; prev.zone = e.zone; prev.health = e.health;
        // A host that gained or lost its sidecar: its connections were made the other way.
        if (prev.tls !== probe.tls) { prev.tls = probe.tls; this.retirePool(prev.key); }
        next.set(prev.key, prev);
      } else next.set(probe.key, probe);
    }
    for (const key of this.hosts.keys()) if (!next.has(key)) this.retirePool(key);
    this.hosts = next.size === 0 ? NO_HOSTS : next;
    const all = [...next.values()];
    this.detector?.setHosts(all);
    this.checker?.setHosts(all);
    this.publish();
  }

  allHosts(): Host[] { return [...this.hosts.values()]; }

  /** The pool for a host, created on first use. */
  pool(host: Host): H2Pool | SkeinH2Pool | H1Pool {
    let p = this.pools?.get(host.key);
    if (p === undefined) {
      const c = this.config;
      const tls = host.tls && c.tls !== undefined ? this.env?.tls?.forUpstream(c.name, c.tls, c.protocol) : undefined;
      const target = { address: host.address, port: host.port };
      const h2: H2PoolSettings = { connectTimeoutMs: c.connectTimeoutMs, clock: this.clock, resources: this.resources, connectionEvents: this.connectionEvents, ...(tls !== undefined ? { tls } : {}), ...(c.idleTimeoutMs !== undefined ? { idleTimeoutMs: c.idleTimeoutMs } : {}), ...(c.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: c.maxConcurrentStreams } : {}), ...(c.maxRequestsPerConnection !== undefined ? { maxRequestsPerConnection: c.maxRequestsPerConnection } : {}) };
      const engine = this.env?.h2;
      p = c.protocol === 'h2'
        ? engine !== undefined ? skeinH2Pool(target, h2, engine) : new H2Pool(target, h2) as H2Pool
        : new H1Pool({ address: host.address, port: host.port }, {
          connectTimeoutMs: c.connectTimeoutMs,
          ...(tls !== undefined ? { tls } : {}),
          resources: this.resources,
          connectionEvents: this.connectionEvents,
          clock: this.clock,
          // HTTP/1.1: max_connections bounds each host's pool (undici queues beyond it, and
          // those queued requests count against max_pending_requests).
          connections: Math.max(1, Math.min(128, this.resources.connections.max)),
          ...(c.maxRequestsPerConnection !== undefined ? { maxRequestsPerConnection: c.maxRequestsPerConnection } : {}),
          ...(c.idleTimeoutMs !== undefined ? { keepAliveTimeoutMs: c.idleTimeoutMs, keepAliveMaxTimeoutMs: c.idleTimeoutMs } : {}),
        });
      (this.pools ??= new Map()).set(host.key, p);
    }
    return p;
  }

  poolStats(host: Host): unknown { return this.pools?.get(host.key)?.stats(); }

  /** Drains every pool (shutdown). */
  async drain(): Promise<void> {
    await afterPendingWrites();
    await Promise.all([...(this.pools?.values() ?? [])].map((p) => p.drain()));
  }

  close(): void {
    this.stopResilience();
    for (const p of this.pools?.values() ?? []) p.close();
    this.pools = undefined;
  }

  /** True while too few hosts are healthy and the balancer uses all of them (panic mode). */
  panic = false;

  /** Health changed (EDS, outlier ejection, active health checks): a new picker. */
  publish(): void {
    const { hosts, panic } = routableHosts([...this.hosts.values()], this.config.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD);
    this.panic = panic;
    this.lb.update(hosts);
  }

  /** A host left, or settings changed: finish its in-flight streams, then close. */
  private retirePool(key: string): void {
    const p = this.pools?.get(key);
    if (p === undefined) return;
    this.pools!.delete(key);
    void afterPendingWrites().then(() => p.drain());
  }
}

/**
 * Resolves once the HTTP/2 frames queued so far have left nghttp2. A pool's drain sends GOAWAY,
 * and nghttp2 sends control frames before the HEADERS of new streams: a stream opened earlier in
 * this event-loop turn (e.g. a request picked this host just before an EDS update removed it)
 * would go out after the GOAWAY and be refused (REFUSED_STREAM, a failed request). Node writes a
 * session's queued frames in a native immediate, which runs before setImmediate callbacks.
 */
function afterPendingWrites(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function lbConfigOf(c: ClusterConfig): Parameters<typeof createLoadBalancer>[0] {
  const out: Parameters<typeof createLoadBalancer>[0] = { policy: c.lbPolicy as Parameters<typeof createLoadBalancer>[0]['policy'] };
  if (c.choiceCount !== undefined) out.choiceCount = c.choiceCount;
  if (c.minRingSize !== undefined) out.minRingSize = c.minRingSize;
  if (c.maxRingSize !== undefined) out.maxRingSize = c.maxRingSize;
  if (c.decayMs !== undefined) out.decayMs = c.decayMs;
  return out;
}

function sameTls(a: UpstreamTlsConfig | undefined, b: UpstreamTlsConfig | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.sni === b.sni && a.minVersion === b.minVersion && a.alpn.join() === b.alpn.join() && a.allowedIds.length === b.allowedIds.length &&
    a.allowedIds.every((m, i) => JSON.stringify(m) === JSON.stringify(b.allowedIds[i]));
}
