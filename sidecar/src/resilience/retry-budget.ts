/**
 * Envoy's retry budget (circuit_breakers.thresholds.retry_budget), per cluster: at most
 * `budgetPercent` of the active requests may be retries, but never fewer than
 * `minRetryConcurrency`. A retry holds its slot from the moment it is decided, through its
 * backoff wait, until its attempt ends: retries sleeping in backoff count (envoy#30205 is the
 * bug this avoids). Defaults: 20% and 3, as in the issue and in Envoy.
 */
export class RetryBudget {
  /** Requests in flight on the cluster (first attempts and retries). */
  activeRequests = 0;
  /** Retries decided and not yet finished, including those waiting in backoff. */
  activeRetries = 0;

  constructor(public budgetPercent = 20, public minRetryConcurrency = 3) {}

  /** How many retries may be active right now. */
  limit(): number {
    return Math.max(this.minRetryConcurrency, Math.floor((this.budgetPercent / 100) * this.activeRequests));
  }

  /** Takes a retry slot if the budget allows; the caller must `release()` it when the retry ends. */
  tryAcquire(): boolean {
    if (this.activeRetries >= this.limit()) return false;
    this.activeRetries++;
    return true;
  }

  release(): void {
    if (this.activeRetries > 0) this.activeRetries--;
  }

  /** RetryGate: 'budget' when refused. */
  tryAcquireRetry(): 'budget' | undefined { return this.tryAcquire() ? undefined : 'budget'; }
  releaseRetry(): void { this.release(); }

  /** What is left, for /stats gauges. */
  remaining(): number { return Math.max(0, this.limit() - this.activeRetries); }
}
