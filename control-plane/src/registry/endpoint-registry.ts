import { isIP } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import { ErrorCodes, MeshError, validationError } from '../../../shared/src/errors';
import type { FieldIssue } from '../../../shared/src/errors';
import { FieldReader, LABEL_KEY_PATTERN, LABEL_MAP, NAME_HINT, NAME_PATTERN } from '../../../shared/src/config/reader';
import type { EndpointHealth } from '../../../shared/src/config/types';

/** An endpoint as translation sees it, from the registry or from static config. */
export interface EndpointView {
  service: string;
  address: string;
  port: number;
  labels: Record<string, string>;
  zone: string;
  weight: number;
  health: EndpointHealth;
  /**
   * The SPIFFE ID of the workload that registered it over mTLS (registration-service.ts): the
   * endpoint has a sidecar with that identity. Absent for static endpoints and HTTP registrations.
   */
  identity?: string;
}

export interface Lease extends EndpointView {
  id: string;
  ttlMs: number;
  /** The registering node (sidecar) id, for debugging. */
  node: string;
  registeredAt: number;
  expiresAt: number;
}

export interface RegistryOptions {
  /** Lease TTL when the registration names none. Default 10s. */
  defaultTtlMs?: number;
  /** Bounds on a requested TTL. Defaults 1s..300s. */
  minTtlMs?: number;
  maxTtlMs?: number;
  /** Most leases held at once (a guard against runaway registrations). Default 100000. */
  maxLeases?: number;
}

/**
 * A store the registry shares its leases through with other control-plane replicas
 * (registry/nats-leases.ts). The registry tells it what happens here; it feeds back what
 * happens anywhere through `upsertShared` / `removeShared`, and it decides when an expired lease
 * goes (the registry keeps an expired lease until `removeShared`).
 */
export interface LeaseReplica {
  /** A lease registered or renewed through this replica. */
  put(lease: Lease): void;
  /** A lease deregistered through this replica. */
  remove(lease: Lease): void;
  /** A lease past its expiry (called again every `EXPIRED_RECHECK_MS` while it stays). */
  expired(lease: Lease): void;
}

/** How often an expired lease kept for a LeaseReplica is offered to it again. */
export const EXPIRED_RECHECK_MS = 1000;

/**
 * The live endpoint registry. Instances register an endpoint and hold it by renewing a lease
 * before its TTL runs out; a dead instance's endpoint leaves EDS at most one TTL later.
 * Registering the same (service, address, port) again renews and updates the same lease, so a
 * restarting sidecar never leaves a duplicate behind.
 */
export class EndpointRegistry {
  private readonly leases = new Map<string, Lease>();
  private readonly byAddress = new Map<string, string>();
  /** The leases of each service, by id: what translating one service's endpoints reads. */
  private readonly byService = new Map<string, Map<string, Lease>>();
  private readonly listeners: ((services: ReadonlySet<string>) => void)[] = [];
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private replica: LeaseReplica | undefined;
  readonly defaultTtlMs: number;
  private readonly minTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly maxLeases: number;

  constructor(private readonly clock: Clock, opts: RegistryOptions = {}) {
    this.defaultTtlMs = opts.defaultTtlMs ?? 10_000;
    this.minTtlMs = opts.minTtlMs ?? 1_000;
    this.maxTtlMs = opts.maxTtlMs ?? 300_000;
    this.maxLeases = opts.maxLeases ?? 100_000;
  }

  /**
   * Validates an untrusted registration body and registers it. Throws MeshError(VALIDATION).
   * `identity` is the registering workload's SPIFFE ID, from its verified certificate (never
   * from the body); a registration without one (HTTP, by an operator) records none.
   */
  register(raw: unknown, identity?: string): Lease {
    const issues: FieldIssue[] = [];
    const r = new FieldReader(issues, 'endpoint');
    const o = r.object(raw, '', ['service', 'address', 'port', 'labels', 'zone', 'weight', 'health', 'ttl', 'node']);
    if (o === undefined) throw validationError(issues);
    const service = r.string(o['service'], 'service', { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const address = r.string(o['address'], 'address', { maxLength: 64 });
    if (address !== undefined && isIP(address) === 0) r.fail('address', `"${address}" must be an IPv4 or IPv6 address`);
    const port = r.int(o['port'], 'port', { min: 1, max: 65535 });
    const labels = o['labels'] === undefined ? {} : r.stringMap(o['labels'], 'labels', LABEL_MAP, LABEL_KEY_PATTERN);
    const zone = o['zone'] === undefined ? '' : r.string(o['zone'], 'zone', { maxLength: 128 });
    const weight = o['weight'] === undefined ? 1 : r.int(o['weight'], 'weight', { min: 1, max: 128 });
    const health = o['health'] === undefined ? 'HEALTHY' : r.oneOf(o['health'], 'health', ['HEALTHY', 'UNHEALTHY', 'DRAINING'] as const);
    const ttlMs = o['ttl'] === undefined ? this.defaultTtlMs : r.duration(o['ttl'], 'ttl', { minMs: this.minTtlMs, maxMs: this.maxTtlMs });
    const node = o['node'] === undefined ? '' : r.string(o['node'], 'node', { maxLength: 256 });
    if (issues.length > 0 || service === undefined || address === undefined || port === undefined || labels === undefined ||
      zone === undefined || weight === undefined || health === undefined || ttlMs === undefined || node === undefined) {
      throw validationError(issues);
    }
    const addrKey = `${service}|${address}|${port}`;
    const now = this.clock.now();
    const existing = this.byAddress.get(addrKey);
    if (existing === undefined && this.leases.size >= this.maxLeases) {
      throw new MeshError(ErrorCodes.CONFLICT, `the registry is full (${this.maxLeases} leases)`);
    }
    const id = existing ?? randomUUID();
    const prev = this.leases.get(id);
    const lease: Lease = { id, service, address, port, labels, zone, weight, health, ...(identity === undefined ? {} : { identity }), ttlMs, node, registeredAt: prev?.registeredAt ?? now, expiresAt: now + ttlMs };
    this.add(lease);
    this.schedule(lease.expiresAt);
    this.replica?.put(lease);
    if (prev === undefined || !sameView(prev, lease)) this.emit([service]);
    return lease;
  }

  /**
   * Shares leases through `replica` from now on: every registration, renewal and
   * deregistration here goes to it, and expiry is its call (see LeaseReplica).
   */
  share(replica: LeaseReplica): void { this.replica = replica; }

  /**
   * A lease as the shared store holds it now (registered or renewed through any replica).
   * Returns the lease it displaced: another id for the same service, address and port (two
   * replicas registered it at once; the later write holds, and the holder of the other id gets
   * NOT_FOUND on its next renewal and registers again, getting this one).
   */
  upsertShared(lease: Lease): Lease | undefined {
    const addrKey = `${lease.service}|${lease.address}|${lease.port}`;
    const otherId = this.byAddress.get(addrKey);
    const displaced = otherId !== undefined && otherId !== lease.id ? this.leases.get(otherId) : undefined;
    if (displaced !== undefined) this.remove(displaced);
    const prev = this.leases.get(lease.id);
    if (prev !== undefined && prev.service !== lease.service) this.remove(prev);
    this.add(lease);
    this.schedule(lease.expiresAt);
    if (prev === undefined || displaced !== undefined || !sameView(prev, lease)) this.emit(prev === undefined || prev.service === lease.service ? [lease.service] : [prev.service, lease.service]);
    return displaced;
  }

  /** A lease the shared store no longer holds (deregistered, or reaped when it expired). */
  removeShared(id: string): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    this.remove(lease);
    this.emit([lease.service]);
  }

  /** The lease `id`; NOT_FOUND when it does not exist or expired. */
  get(id: string): Lease {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new MeshError(ErrorCodes.NOT_FOUND, `lease ${id.slice(0, 64)} does not exist or has expired; register again`);
    return lease;
  }

  /** Extends a lease by its TTL. Throws NOT_FOUND if it expired: the instance must register again. */
  renew(id: string): Lease {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new MeshError(ErrorCodes.NOT_FOUND, `lease ${id} does not exist or has expired; register again`);
    lease.expiresAt = this.clock.now() + lease.ttlMs;
    this.replica?.put(lease);
    return lease;
  }

  deregister(id: string): void {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new MeshError(ErrorCodes.NOT_FOUND, `lease ${id} does not exist or has expired`);
    this.remove(lease);
    this.replica?.remove(lease);
    this.emit([lease.service]);
  }

  list(): Lease[] { return [...this.leases.values()]; }

  /**
   * Restores leases saved before a restart, keeping their ids so renewals keep working. Each one
   * gets a full TTL from now: live instances renew as usual; dead ones expire one TTL later.
   * Entries that no longer validate are skipped and returned, never half-restored.
   */
  restore(saved: readonly Omit<Lease, 'expiresAt'>[]): { restored: number; skipped: string[] } {
    const skipped: string[] = [];
    const now = this.clock.now();
    for (const l of saved) {
      try {
        const lease = this.register({
          service: l.service, address: l.address, port: l.port, labels: l.labels, weight: l.weight, health: l.health, ttl: `${l.ttlMs}ms`,
          ...(l.zone ? { zone: l.zone } : {}), ...(l.node ? { node: l.node } : {}),
        }, savedIdentity(l.identity));
        if (lease.id !== l.id && typeof l.id === 'string' && /^[0-9a-f-]{36}$/.test(l.id) && !this.leases.has(l.id)) {
          this.remove(lease);
          this.add({ ...lease, id: l.id, registeredAt: typeof l.registeredAt === 'number' ? l.registeredAt : now });
        }
      } catch (e) {
        skipped.push(`${l.service}@${l.address}:${l.port}: ${(e as Error).message}`);
      }
    }
    return { restored: saved.length - skipped.length, skipped };
  }

  /** The live endpoints, without lease bookkeeping. */
  endpoints(): EndpointView[] { return this.list().map(view); }

  /** The live endpoints of `service`, without lease bookkeeping. */
  endpointsOf(service: string): EndpointView[] {
    const leases = this.byService.get(service);
    return leases === undefined ? [] : [...leases.values()].map(view);
  }

  /** Calls `fn` after each change of the live endpoints, with the services whose endpoints changed. */
  onChange(fn: (services: ReadonlySet<string>) => void): void { this.listeners.push(fn); }

  close(): void { this.timer?.cancel(); this.timer = undefined; }

  private add(lease: Lease): void {
    this.leases.set(lease.id, lease);
    this.byAddress.set(`${lease.service}|${lease.address}|${lease.port}`, lease.id);
    let of = this.byService.get(lease.service);
    if (of === undefined) this.byService.set(lease.service, of = new Map());
    of.set(lease.id, lease);
  }

  private remove(lease: Lease): void {
    this.leases.delete(lease.id);
    this.byAddress.delete(`${lease.service}|${lease.address}|${lease.port}`);
    const of = this.byService.get(lease.service);
    if (of !== undefined && of.delete(lease.id) && of.size === 0) this.byService.delete(lease.service);
  }

  private emit(services: Iterable<string>): void {
    const set = new Set(services);
    for (const l of this.listeners) l(set);
  }

  private schedule(at: number): void {
    if (at >= this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimer(at - this.clock.now(), () => this.sweep());
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    const removed = new Set<string>();
    let next = Infinity;
    for (const lease of this.leases.values()) {
      if (lease.expiresAt > now) next = Math.min(next, lease.expiresAt);
      else if (this.replica === undefined) { this.remove(lease); removed.add(lease.service); } else { this.replica.expired(lease); next = Math.min(next, now + EXPIRED_RECHECK_MS); }
    }
    if (next !== Infinity) this.schedule(next);
    if (removed.size > 0) this.emit(removed);
  }
}

/** A lease as translation sees it. */
function view({ service, address, port, labels, zone, weight, health, identity }: Lease): EndpointView {
  return identity === undefined ? { service, address, port, labels, zone, weight, health } : { service, address, port, labels, zone, weight, health, identity };
}

function sameView(a: EndpointView, b: EndpointView): boolean {
  return a.weight === b.weight && a.health === b.health && a.zone === b.zone && a.identity === b.identity && JSON.stringify(a.labels) === JSON.stringify(b.labels);
}

/** A saved lease's identity, if it is one: a SPIFFE ID as registration-service.ts records it. */
function savedIdentity(v: unknown): string | undefined {
  return typeof v === 'string' && v.length <= 2048 && /^spiffe:\/\/[^/\s]+\/\S+$/.test(v) ? v : undefined;
}
