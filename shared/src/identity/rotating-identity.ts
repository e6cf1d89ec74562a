/**
 * A workload's (or the control plane's) current certificate and key, renewed before it expires,
 * with no gap: the new pair replaces the old only once it is issued, and connections already
 * open keep the certificate they were made with.
 *
 * - Renewal starts at half the lifetime, ±10% jitter (so a fleet started together does not
 *   renew together), as Istio and SPIRE do; both are configurable (renewAt, jitter). The
 *   lifetime counts from when the certificate arrived, not from a backdated notBefore.
 * - A failed renewal is retried with backoff (1s doubling to 30s) until the certificate expires;
 *   from the last 10% of its life a warning is logged each minute, naming when it expires.
 *   A paused process that wakes up past the renewal time renews at once, and a machine that
 *   slept, within a minute of waking (istio#38081).
 * - `provider` hands the pair to grpc-js (CertificateProvider): channels and servers built on it
 *   pick up each new certificate for their next handshake.
 * Private keys stay in memory here; they are never logged or sent anywhere.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Clock, TimerHandle } from '../clock';
import type { Logger } from '../log';

/** One issued identity: the key that was generated for it and what the CA returned. */
export interface IssuedIdentity {
  spiffeId: string;
  serial: string;
  /** PKCS#8 PEM; held in memory only. */
  keyPem: string;
  /** Leaf first, then intermediates. */
  certChainPem: string;
  trustBundlePem: string;
  notBefore: number;
  notAfter: number;
}

export const ROTATION = {
  /** Renew at this fraction of the lifetime… */
  renewAt: 0.5,
  /** …plus or minus this much of it. */
  jitter: 0.1,
  firstRetryMs: 1000,
  maxRetryMs: 30_000,
  /** From this fraction of the lifetime left, warn… */
  warnBelow: 0.1,
  /** …this often. */
  warnEveryMs: 60_000,
  /** The renewal timer re-reads the wall clock at least this often (machine sleep). */
  wallClockCheckMs: 60_000,
} as const;

type CaListener = (u: grpc.experimental.CaCertificateUpdate | null) => void;
type IdListener = (u: grpc.experimental.IdentityCertificateUpdate | null) => void;

export class RotatingIdentity {
  private cur: IssuedIdentity | undefined;
  private timer: TimerHandle | undefined;
  private retryMs: number = ROTATION.firstRetryMs;
  private lastWarn = -Infinity;
  private closed = false;
  /** Roots that replace the issued trust bundle (the mesh's current roots over SDS), when set. */
  private trustOverride: string | undefined;
  /** When the scheduled renewal will run (wall clock), for renewWithin. */
  private dueAt = Infinity;
  private readonly changeFns: ((id: IssuedIdentity) => void)[] = [];
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();
  /** Renewals that succeeded and failed, for /stats and tests. */
  renewals = 0;
  failures = 0;

  constructor(private readonly o: {
    /** Generates a fresh key and gets a certificate for it. */
    issue: () => Promise<IssuedIdentity>;
    clock: Clock;
    log: Logger;
    /** What this identity is for, in logs ("workload", "control plane serving"). */
    what: string;
    /** Uniform [0, 1); injectable so tests know when renewal runs. */
    random?: () => number;
    /** When to renew, as a fraction of the lifetime (default ROTATION.renewAt, 0.5)… */
    renewAt?: number;
    /** …plus or minus this fraction of it (default ROTATION.jitter, 0.1). */
    jitter?: number;
  }) {}

  /** Gets the first certificate (failing the caller if it cannot) and schedules its renewal. */
  async start(): Promise<IssuedIdentity> {
    const id = await this.o.issue();
    this.install(id);
    return id;
  }

  /**
   * Takes over a certificate issued earlier (`skein cert renew --loop` reads it back from its
   * files) without issuing one now, and schedules its renewal from its own lifetime: one already
   * past its renewal time renews at once.
   */
  resume(id: IssuedIdentity): void {
    if (this.cur !== undefined) throw new Error(`${this.o.what} identity: resume() after start()`);
    // Issued earlier, when is unknown: its lifetime counts from its notBefore.
    this.install(id, id.notBefore);
  }

  get current(): IssuedIdentity {
    if (this.cur === undefined) throw new Error(`${this.o.what} identity used before start()`);
    return this.cur;
  }

  /** Whether a certificate was issued yet. */
  get issued(): boolean { return this.cur !== undefined; }

  /** Seconds until the current certificate expires (negative once it has). */
  expiresInSeconds(): number { return this.cur === undefined ? 0 : (this.cur.notAfter - this.o.clock.now()) / 1000; }

  onChange(fn: (id: IssuedIdentity) => void): void { this.changeFns.push(fn); }

  /** The certificate and key, and the trust bundle, for grpc-js credentials. */
  readonly provider: grpc.experimental.CertificateProvider = {
    addCaCertificateListener: (l) => { this.caListeners.add(l); this.deliverLater(l, undefined); },
    removeCaCertificateListener: (l) => { this.caListeners.delete(l); },
    addIdentityCertificateListener: (l) => { this.idListeners.add(l); this.deliverLater(undefined, l); },
    removeIdentityCertificateListener: (l) => { this.idListeners.delete(l); },
  };

  /**
   * Renews now (tests; `skein cert renew`); the schedule restarts from the new certificate. The
   * pending renewal (or retry) is replaced only on success: a failure here must not stop rotation.
   */
  async renewNow(): Promise<IssuedIdentity> {
    const id = await this.o.issue();
    this.renewals++;
    this.install(id);
    return id;
  }

  /**
   * The mesh's current roots (SDS ROOTCA), to verify peers and the control plane with, instead of
   * the bundle that came with the certificate: a root rotation adds a root before any
   * certificate from it exists.
   */
  setTrustBundle(pem: string | undefined): void {
    if (pem === this.trustOverride) return;
    this.trustOverride = pem;
    const cur = this.cur;
    if (cur !== undefined) for (const l of this.caListeners) l({ caCertificate: Buffer.from(this.trustBundle(cur)) });
  }

  /** Renews within `ms` (at a random point of it), unless a renewal is already due sooner. */
  renewWithin(ms: number): void {
    if (this.closed || this.cur === undefined) return;
    const delay = Math.floor((this.o.random ?? Math.random)() * ms);
    if (this.o.clock.now() + delay >= this.dueAt) return;
    this.schedule(delay);
  }

  private trustBundle(id: IssuedIdentity): string { return this.trustOverride ?? id.trustBundlePem; }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** `arrivedAt`: when it was issued to us (default now), the start of its lifetime for renewal. */
  private install(id: IssuedIdentity, arrivedAt = this.o.clock.now()): void {
    const prev = this.cur;
    this.cur = id;
    this.retryMs = ROTATION.firstRetryMs;
    this.lastWarn = -Infinity;
    if (prev !== undefined) this.o.log.info({ spiffeId: id.spiffeId, serial: id.serial, previousSerial: prev.serial, notAfter: new Date(id.notAfter).toISOString() }, `${this.o.what} certificate renewed`);
    for (const l of this.caListeners) l({ caCertificate: Buffer.from(this.trustBundle(id)) });
    for (const l of this.idListeners) l({ certificate: Buffer.from(id.certChainPem), privateKey: Buffer.from(id.keyPem) });
    for (const fn of this.changeFns) fn(id);
    this.schedule(this.renewDelay(id, arrivedAt));
  }

  /**
   * When to renew `id`, from now: half its lifetime ±10%, the lifetime measured from when it
   * arrived (or its notBefore, if later). Not from a notBefore the CA backdated for clock skew:
   * with a short lifetime and an early renewal point, that would put renewal in the past and
   * renew in a loop.
   */
  private renewDelay(id: IssuedIdentity, arrivedAt: number): number {
    const now = this.o.clock.now();
    const start = Math.max(id.notBefore, arrivedAt);
    const life = id.notAfter - start;
    const fraction = (this.o.renewAt ?? ROTATION.renewAt) + (2 * (this.o.random ?? Math.random)() - 1) * (this.o.jitter ?? ROTATION.jitter);
    return Math.max(0, start + life * fraction - now);
  }

  /**
   * Renews `ms` from now by the wall clock. The timer is re-armed at least every minute and the
   * wall clock read again: Node's timers run on a monotonic clock that stops while the machine
   * sleeps, so a laptop or VM that slept past the renewal time renews within a minute of waking,
   * not a whole sleep late.
   */
  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer?.cancel();
    const due = this.o.clock.now() + ms;
    this.dueAt = due;
    const arm = (): void => {
      const left = due - this.o.clock.now();
      this.timer = this.o.clock.setTimer(Math.max(0, Math.min(left, ROTATION.wallClockCheckMs)), () => {
        this.timer = undefined;
        if (this.closed) return;
        if (this.o.clock.now() >= due) void this.renew();
        else arm();
      });
    };
    arm();
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    try {
      const id = await this.o.issue();
      if (this.closed) return;
      this.renewals++;
      this.install(id);
    } catch (e) {
      if (this.closed) return;
      this.failures++;
      const cur = this.current;
      const now = this.o.clock.now();
      const left = cur.notAfter - now;
      const fields = { spiffeId: cur.spiffeId, err: (e as Error).message, retryInMs: this.retryMs, expiresAt: new Date(cur.notAfter).toISOString() };
      if (left <= 0) this.o.log.error(fields, `${this.o.what} certificate has EXPIRED and could not be renewed; peers will refuse it; retrying`);
      else if (left < (cur.notAfter - cur.notBefore) * ROTATION.warnBelow && now - this.lastWarn >= ROTATION.warnEveryMs) {
        this.lastWarn = now;
        this.o.log.warn({ ...fields, expiresInS: Math.round(left / 1000) }, `${this.o.what} certificate expires soon and could not be renewed; retrying`);
      } else this.o.log.info(fields, `${this.o.what} certificate renewal failed; retrying`);
      const delay = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, ROTATION.maxRetryMs);
      this.schedule(delay);
    }
  }

  /**
   * Delivers the current pair to a listener just added, after the caller returns: grpc-js adds
   * its listeners while it builds its state and ignores an update delivered in the middle.
   */
  private deliverLater(ca: CaListener | undefined, id: IdListener | undefined): void {
    queueMicrotask(() => {
      const cur = this.cur;
      if (cur === undefined) return;
      if (ca !== undefined && this.caListeners.has(ca)) ca({ caCertificate: Buffer.from(this.trustBundle(cur)) });
      if (id !== undefined && this.idListeners.has(id)) id({ certificate: Buffer.from(cur.certChainPem), privateKey: Buffer.from(cur.keyPem) });
    });
  }
}
