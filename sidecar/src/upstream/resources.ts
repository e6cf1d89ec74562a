/**
 * Circuit breakers per cluster, as Envoy's ResourceManager: counters with limits that know
 * nothing about HTTP. The router and the pools ask before they create something and release it
 * when it ends; a refusal fails fast (the router turns it into a 503 / UNAVAILABLE local reply
 * whose x-skein-reason names the breaker).
 *
 * Limits (envoy.config.cluster.v3.CircuitBreakers.Thresholds, DEFAULT priority):
 * - max_connections (default 1024): upstream connections across every host of the cluster;
 * - max_pending_requests (default 1024): requests waiting for a connection or a stream slot;
 * - max_requests (default 1024): requests in flight to the cluster (each attempt counts);
 * - max_retries: only when set explicitly. Retries are governed by the retry budget, which is on
 *   by default (20% of active requests, at least 3 concurrent). Envoy ignores max_retries when a
 *   budget is set; here an explicit max_retries caps retries in addition to the budget.
 *
 * Gauges `cluster.<name>.circuit_breakers.remaining_{cx,pending,rq,retries}` show the capacity
 * left and `..._open` (0/1) whether the breaker is at its limit.
 */
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { RetryBudget } from '../resilience/retry-budget';
import type { Gauge, Stats } from '../stats/stats';
import type { CircuitBreakerConfig } from './cluster-config';

export const BREAKER_DEFAULTS = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 } as const;

/** Which limit refused; also the x-skein-reason suffix (`circuit_breaker_<name>`). */
export type BreakerName = 'max_connections' | 'max_pending_requests' | 'max_requests' | 'max_retries';

/** A refusal by a breaker. `breaker` names the limit. */
export class BreakerOpenError extends MeshError {
  constructor(readonly breaker: BreakerName, readonly cluster: string, readonly limit: number) {
    super(ErrorCodes.CIRCUIT_BREAKER_OPEN, `cluster ${cluster}: circuit breaker ${breaker} is open (limit ${limit})`);
  }
}

/** One counted resource with a limit, mirrored into its two gauges on every change. */
export class Resource {
  active = 0;

  constructor(public max: number, private readonly remainingGauge: Gauge | undefined, private readonly openGauge: Gauge | undefined) {
    this.sync();
  }

  canCreate(): boolean { return this.active < this.max; }
  inc(): void { this.active++; this.sync(); }
  dec(): void { if (this.active > 0) this.active--; this.sync(); }
  remaining(): number { return Math.max(0, this.max - this.active); }

  setMax(max: number): void { this.max = max; this.sync(); }

  private sync(): void {
    if (this.remainingGauge !== undefined) this.remainingGauge.value = Math.max(0, this.max - this.active);
    if (this.openGauge !== undefined) this.openGauge.value = this.active >= this.max ? 1 : 0;
  }
}

export class ResourceManager {
  readonly connections: Resource;
  readonly pendingRequests: Resource;
  readonly requests: Resource;
  /** Static cap on concurrent retries (max_retries); Infinity unless configured. */
  readonly retries: Resource;
  readonly budget: RetryBudget;
  private readonly retriesGauge: Gauge | undefined;
  private readonly retriesOpen: Gauge | undefined;

  constructor(readonly cluster: string, cfg: CircuitBreakerConfig | undefined, stats?: Stats) {
    const scope = stats?.scope(`cluster.${cluster}`);
    const g = (key: string) => scope?.gauge(key);
    this.connections = new Resource(cfg?.maxConnections ?? BREAKER_DEFAULTS.maxConnections, g('circuit_breakers.remaining_cx'), g('circuit_breakers.cx_open'));
    this.pendingRequests = new Resource(cfg?.maxPendingRequests ?? BREAKER_DEFAULTS.maxPendingRequests, g('circuit_breakers.remaining_pending'), g('circuit_breakers.rq_pending_open'));
    this.requests = new Resource(cfg?.maxRequests ?? BREAKER_DEFAULTS.maxRequests, g('circuit_breakers.remaining_rq'), g('circuit_breakers.rq_open'));
    this.retries = new Resource(cfg?.maxRetries ?? Infinity, undefined, undefined);
    this.retriesGauge = g('circuit_breakers.remaining_retries');
    this.retriesOpen = g('circuit_breakers.rq_retry_open');
    this.budget = new RetryBudget(cfg?.retryBudget?.budgetPercent ?? 20, cfg?.retryBudget?.minRetryConcurrency ?? 3);
    this.syncRetries();
  }

  /** New limits from a cluster update; counts in flight are kept. */
  update(cfg: CircuitBreakerConfig | undefined): void {
    this.connections.setMax(cfg?.maxConnections ?? BREAKER_DEFAULTS.maxConnections);
    this.pendingRequests.setMax(cfg?.maxPendingRequests ?? BREAKER_DEFAULTS.maxPendingRequests);
    this.requests.setMax(cfg?.maxRequests ?? BREAKER_DEFAULTS.maxRequests);
    this.retries.setMax(cfg?.maxRetries ?? Infinity);
    this.budget.budgetPercent = cfg?.retryBudget?.budgetPercent ?? 20;
    this.budget.minRetryConcurrency = cfg?.retryBudget?.minRetryConcurrency ?? 3;
    this.syncRetries();
  }

  /** An attempt starts: false (and nothing taken) when max_requests is reached. */
  tryStartRequest(): boolean {
    if (!this.requests.canCreate()) return false;
    this.requests.inc();
    this.budget.activeRequests++;
    this.syncRetries();
    return true;
  }

  endRequest(): void {
    this.requests.dec();
    if (this.budget.activeRequests > 0) this.budget.activeRequests--;
    this.syncRetries();
  }

  /**
   * A retry wants a slot: refused by the budget or by max_retries. The slot is held from the
   * decision through the backoff and the attempt, until releaseRetry() (envoy#30205).
   */
  tryAcquireRetry(): BreakerName | 'budget' | undefined {
    if (!this.retries.canCreate()) { this.syncRetries(); return 'max_retries'; }
    if (!this.budget.tryAcquire()) { this.syncRetries(); return 'budget'; }
    this.retries.inc();
    this.syncRetries();
    return undefined;
  }

  releaseRetry(): void {
    this.budget.release();
    this.retries.dec();
    this.syncRetries();
  }

  /** Limits, in-flight counts and what is left, for /clusters. */
  snapshot(): Record<string, { max: number | null; active: number; remaining: number | null }> {
    const r = (x: Resource) => ({ max: Number.isFinite(x.max) ? x.max : null, active: x.active, remaining: Number.isFinite(x.max) ? x.remaining() : null });
    return {
      maxConnections: r(this.connections), maxPendingRequests: r(this.pendingRequests), maxRequests: r(this.requests),
      retries: { max: Number.isFinite(this.retries.max) ? this.retries.max : null, active: this.budget.activeRetries, remaining: this.remainingRetries() },
    };
  }

  /** Retries that could start now: the tighter of the budget and max_retries. */
  remainingRetries(): number {
    return Math.min(this.budget.remaining(), this.retries.remaining());
  }

  private syncRetries(): void {
    if (this.retriesGauge !== undefined) this.retriesGauge.value = this.remainingRetries();
    if (this.retriesOpen !== undefined) this.retriesOpen.value = this.remainingRetries() === 0 ? 1 : 0;
  }
}
