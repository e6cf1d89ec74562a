import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Clock } from '../../../shared/src/clock';
import { MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { openFailed } from '../store/nats-connection';
import type { NatsStoreConnection } from '../store/nats-connection';
import { ensureStream } from '../store/nats-replicas';
import type { EndpointRegistry, Lease, LeaseReplica } from './endpoint-registry';

/** How long start-up waits for the lease watch to deliver the bucket's current leases. */
const WATCH_LOAD_WAIT_MS = 10_000;

/**
 * How long past its expiry a lease stays before a replica may reap it: room for clock skew
 * between replicas (each renewal carries the renewing replica's wall-clock expiry).
 */
export const REAP_MARGIN_MS = 2000;

/**
 * Endpoint leases shared by control-plane replicas through the KV bucket `<bucket>-leases`
 * (one key per lease id; NATS 2.9 has no per-key TTL, so expiry is ours):
 *
 * - A registration or renewal through any replica writes the lease with its absolute expiry;
 *   a deregistration deletes it. Every replica watches the bucket and mirrors it into its
 *   registry, so all of them serve the same endpoints.
 * - There is no single reaper and no leader: any replica that sees a lease past its expiry by
 *   REAP_MARGIN_MS deletes it with a compare-and-set on the KV revision it saw. A renewal in
 *   between changes the revision, so the delete fails and the lease lives; two replicas reaping
 *   at once both aim at the same revision, and one delete wins, the other fails harmlessly.
 * - While the store is unreachable nothing is reaped (renewals through other replicas cannot be
 *   seen), and after it comes back a replica waits one more TTL (plus the margin) before it
 *   reaps, so live instances have had a full TTL to renew.
 */
export class NatsLeases implements LeaseReplica {
  /** KV revision of each lease as last seen by the watch. */
  private readonly revisions = new Map<string, number>();
  private connectedSince: number;
  private stopWatch: (() => void) | undefined;
  private warnedDown = false;

  private constructor(private readonly conn: NatsStoreConnection, private readonly kv: KV, private readonly registry: EndpointRegistry,
    private readonly clock: Clock, private readonly log: Logger) {
    this.connectedSince = clock.now();
    conn.onReconnect(() => { this.connectedSince = this.clock.now(); this.warnedDown = false; });
  }

  /** `replicas`: copies JetStream keeps of the bucket (--store-replicas; see store/nats-replicas.ts). */
  static async open(conn: NatsStoreConnection, registry: EndpointRegistry, opts: { bucket: string; replicas?: number; clock: Clock; log: Logger }): Promise<NatsLeases> {
    const name = `${opts.bucket}-leases`;
    const replicas = opts.replicas ?? 1;
    let kv: KV;
    try {
      const kvm = new Kvm(jetstream(conn.nc, { timeout: 5000 }));
      await ensureStream(await conn.jetstream(5000), { stream: `KV_${name}`, what: `KV bucket ${name}`, replicas, create: () => kvm.create(name, { history: 1, replicas }), conn, log: opts.log });
      kv = await kvm.open(name);
    } catch (e) {
      if (e instanceof MeshError) throw e;
      throw openFailed(`KV bucket ${name}`, conn.target, e);
    }
    const leases = new NatsLeases(conn, kv, registry, opts.clock, opts.log);
    await leases.watch();
    registry.share(leases);
    return leases;
  }

  put(lease: Lease): void {
    if (!this.writable(lease)) return;
    this.kv.put(lease.id, JSON.stringify(lease)).catch((e: unknown) => this.log.warn({ lease: lease.id, service: lease.service, err: (e as Error).message }, 'could not store an endpoint lease in NATS; the next renewal tries again'));
  }

  remove(lease: Lease): void {
    if (!this.writable(lease)) return;
    this.kv.delete(lease.id).catch((e: unknown) => this.log.warn({ lease: lease.id, err: (e as Error).message }, 'could not delete an endpoint lease in NATS'));
  }

  expired(lease: Lease): void {
    const now = this.clock.now();
    if (!this.conn.available || now < lease.expiresAt + REAP_MARGIN_MS || now < this.connectedSince + lease.ttlMs + REAP_MARGIN_MS) return;
    const seen = this.revisions.get(lease.id);
    if (seen === undefined) {
      // Never in the bucket as far as this replica knows (registered while NATS was down): it is
      // only here. Should its write still be on the way, the watch brings it back to be reaped.
      this.registry.removeShared(lease.id);
      return;
    }
    this.kv.delete(lease.id, { previousSeq: seen }).then(
      () => this.log.info({ lease: lease.id, service: lease.service, address: `${lease.address}:${lease.port}` }, 'endpoint lease expired; reaped'),
      () => undefined, // renewed meanwhile, or another replica reaped it first: the watch says which
    );
  }

  close(): void { this.stopWatch?.(); }

  /** Mirrors the bucket into the registry: its current leases first, then every change. */
  private async watch(): Promise<void> {
    const w = await this.kv.watch();
    this.stopWatch = () => w.stop();
    let initial = true;
    let ready!: () => void;
    const loaded = new Promise<void>((resolve) => { ready = resolve; });
    void (async () => {
      for await (const e of w) {
        this.apply(e);
        if (initial && e.delta === 0) { initial = false; ready(); }
      }
    })().catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'the endpoint lease watch stopped'));
    const status = await this.kv.status();
    if (status.values === 0) ready();
    // At most WATCH_LOAD_WAIT_MS for the current leases; the timer is cleared either way, so a
    // control plane stopped soon after it started exits at once (a pending timer held it 10 s).
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([loaded.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(r, WATCH_LOAD_WAIT_MS, true); })]);
    clearTimeout(timer);
    if (waited) this.log.warn({ waitedMs: WATCH_LOAD_WAIT_MS }, 'the endpoint leases in NATS are still loading; serving meanwhile, the watch goes on');
  }

  private apply(e: KvWatchEntry): void {
    if (e.operation === 'PUT') {
      let lease: Lease;
      try { lease = e.json<Lease>(); } catch { this.log.error({ key: e.key }, 'unreadable endpoint lease in NATS; ignored'); return; }
      if (lease?.id !== e.key) { this.log.error({ key: e.key }, 'endpoint lease in NATS does not match its key; ignored'); return; }
      this.revisions.set(e.key, e.revision);
      const displaced = this.registry.upsertShared(lease);
      // An older key for the same address would stay in the bucket with no registry holding it,
      // so no one would reap it: delete it (CAS). One this replica has not seen in the bucket yet
      // is newer: its write is on the way and will displace this one in turn.
      const seen = displaced === undefined ? undefined : this.revisions.get(displaced.id);
      if (displaced !== undefined && seen !== undefined && seen < e.revision && this.conn.available) this.kv.delete(displaced.id, { previousSeq: seen }).catch(() => undefined);
    } else {
      this.revisions.delete(e.key);
      this.registry.removeShared(e.key);
    }
  }

  private writable(lease: Lease): boolean {
    if (this.conn.available) return true;
    if (!this.warnedDown) {
      this.warnedDown = true;
      this.log.warn({ lease: lease.id }, 'NATS store unavailable: endpoint registrations and renewals are kept here only until it is back (renewals then reach the other replicas)');
    }
    return false;
  }
}
