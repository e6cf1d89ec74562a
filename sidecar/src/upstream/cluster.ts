import type { Clock } from '../../../shared/src/clock';
import { Host } from './host';
import type { HostHealth, LoadBalancer, Picker } from './host';
import { createLoadBalancer } from './lb/registry';
import { H2Pool } from './pool/h2-pool';
import { H1Pool } from './pool/h1-pool';
import type { ClusterConfig, EndpointsConfig } from '../xds/resource-types';
import type { ClusterStats } from '../stats/stat-bundles';

/** Health states a request may be sent to (Envoy: HEALTHY, DEGRADED and UNKNOWN are routable). */
const ROUTABLE: ReadonlySet<HostHealth> = new Set<HostHealth>(['HEALTHY', 'UNKNOWN', 'DEGRADED']);

/**
 * A cluster: its config, its hosts (stable objects across EDS updates), the load balancer over
 * the routable ones, and one connection pool per host. Endpoint updates publish a new picker;
 * requests in flight keep the host and pool they picked.
 */
export class Cluster {
  private hosts = new Map<string, Host>();
  private readonly pools = new Map<string, H2Pool | H1Pool>();
  private lb: LoadBalancer;
  /** Set by the owner when stats are wanted (the sidecar always does). */
  stats: ClusterStats | undefined;

  constructor(public config: ClusterConfig, private readonly clock: Clock) {
    this.lb = createLoadBalancer(lbConfigOf(config));
  }

  get name(): string { return this.config.name; }
  get picker(): Picker { return this.lb.picker; }
  get protocol(): 'h2' | 'h1' { return this.config.protocol; }

  /** A new cluster config: a new LB if the policy changed; pools are rebuilt if connection settings changed. */
  updateConfig(config: ClusterConfig): void {
    const lbChanged = JSON.stringify(lbConfigOf(config)) !== JSON.stringify(lbConfigOf(this.config));
    const poolChanged = config.protocol !== this.config.protocol || config.connectTimeoutMs !== this.config.connectTimeoutMs ||
      config.maxConcurrentStreams !== this.config.maxConcurrentStreams || config.idleTimeoutMs !== this.config.idleTimeoutMs;
    this.config = config;
    if (lbChanged) { this.lb = createLoadBalancer(lbConfigOf(config)); this.publish(); }
    if (poolChanged) for (const key of [...this.pools.keys()]) this.retirePool(key);
  }

  /** New endpoints from EDS. Hosts that stay keep their identity and stats; removed ones drain. */
  updateEndpoints(eps: EndpointsConfig['hosts']): void {
    const next = new Map<string, Host>();
    for (const e of eps) {
      const probe = new Host(e.address, e.port, e.weight, e.zone, e.health);
      const prev = this.hosts.get(probe.key);
      if (prev !== undefined) { prev.weight = e.weight; prev.zone = e.zone; prev.health = e.health; next.set(prev.key, prev); } else next.set(probe.key, probe);
    }
    for (const key of this.hosts.keys()) if (!next.has(key)) this.retirePool(key);
    this.hosts = next;
    this.publish();
  }

  allHosts(): Host[] { return [...this.hosts.values()]; }

  /** The pool for a host, created on first use. */
  pool(host: Host): H2Pool | H1Pool {
    let p = this.pools.get(host.key);
    if (p === undefined) {
      const c = this.config;
      p = c.protocol === 'h2'
        ? new H2Pool({ address: host.address, port: host.port }, { connectTimeoutMs: c.connectTimeoutMs, clock: this.clock, ...(c.idleTimeoutMs !== undefined ? { idleTimeoutMs: c.idleTimeoutMs } : {}), ...(c.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: c.maxConcurrentStreams } : {}) })
        : new H1Pool({ address: host.address, port: host.port }, { connectTimeoutMs: c.connectTimeoutMs });
      this.pools.set(host.key, p);
    }
    return p;
  }

  poolStats(host: Host): unknown { return this.pools.get(host.key)?.stats(); }

  /** Drains every pool (shutdown). */
  async drain(): Promise<void> {
    await afterPendingWrites();
    await Promise.all([...this.pools.values()].map((p) => p.drain()));
  }

  close(): void { for (const p of this.pools.values()) p.close(); this.pools.clear(); }

  private publish(): void {
    const routable: Host[] = [];
    for (const h of this.hosts.values()) if (ROUTABLE.has(h.health)) routable.push(h);
    this.lb.update(routable);
  }

  /** A host left, or settings changed: finish its in-flight streams, then close. */
  private retirePool(key: string): void {
    const p = this.pools.get(key);
    if (p === undefined) return;
    this.pools.delete(key);
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
