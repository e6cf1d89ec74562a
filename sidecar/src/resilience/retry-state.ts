import type { RequestHeaders } from '../route/header-matcher';
import type { RetryPolicy } from '../route/retry-policy';

/**
 * Where retry slots come from: the cluster's ResourceManager (retry budget plus an explicit
 * max_retries), or a bare RetryBudget. Returns why a slot was refused, or undefined when taken.
 */
export interface RetryGate {
  tryAcquireRetry(): string | undefined;
  releaseRetry(): void;
}

/**
 * How one upstream attempt ended, as the router saw it. `sentBytes` tells whether any request
 * byte may have reached the upstream: only when it is false is a retry provably safe without a
 * policy.
 */
export type AttemptOutcome =
  | { kind: 'connect-failure' }
  | { kind: 'refused-stream' }
  | { kind: 'reset'; sentBytes: boolean }
  | { kind: 'per-try-timeout' }
  /** `headers`: the response headers, for envoy-ratelimited and retriable-headers. */
  | { kind: 'response'; status: number; grpcStatus: number | undefined; headers?: ResponseHeaders };

/** Response headers as Node gives them (lower-case names). */
export type ResponseHeaders = { readonly [name: string]: string | string[] | number | undefined };

export type RetryDecision =
  | { retry: true; delayMs: number; attempt: number }
  | { retry: false; reason: 'success' | 'no-policy' | 'not-retriable' | 'attempts-exhausted' | 'budget-exhausted' | 'max-retries' | 'body-not-replayable' };

/** gRPC status codes by the names Envoy's retry_on uses. */
const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };
const GATEWAY_ERRORS: ReadonlySet<number> = new Set([502, 503, 504]);

/** Retries made without any policy, when the request provably never reached the upstream. */
export const IMPLICIT_RETRIES = 2;

/**
 * Retry decisions for one request, separate from their execution (the router), as in grpc-js's
 * RetryingCall and undici's RetryHandler. The rules, from what users of other meshes hit:
 * - **No hidden retries** (istio#50506): without a policy, retry only a connect failure or a
 *   refused stream (nothing was sent), up to IMPLICIT_RETRIES times. A reset after bytes went
 *   out, or any response, is never retried without a policy asking for it.
 * - The body must be replayable (buffered within the limit); a streaming body is never retried.
 * - Every retry of a request that may have reached an upstream takes a slot in the cluster's
 *   RetryBudget (and max_retries) before its backoff starts; the slot is held through the backoff
 *   and the attempt, and released by `attemptDone()`.
 * - A retry after a connect failure or a refused stream takes **no** slot (issue 14). The budget
 *   exists to stop retries from multiplying the load on struggling applications, and such a
 *   request reached none. These retries are bounded otherwise: by the retry count (the policy's,
 *   or IMPLICIT_RETRIES), by avoiding hosts already tried, and by failure accrual, which ejects a
 *   host after 3 such failures in a row. So one dead host among three never pushes requests into
 *   `retry_budget_exhausted`, while retries after real responses or resets (a whole cluster
 *   failing) stay within the budget. Envoy budgets both kinds.
 * - Backoff is exponential with full jitter: random() x min(max, base x 2^(n-1)).
 */
export class RetryState {
  private retries = 0;
  private holding = false;
  /** Whether the request body can still be replayed; the router clears it once the body outgrows its buffer. */
  bodyReplayable: boolean;

  constructor(
    private readonly policy: RetryPolicy | undefined,
    private readonly budget: RetryGate,
    private readonly opts: { bodyReplayable: boolean; random?: () => number },
  ) {
    this.bodyReplayable = opts.bodyReplayable;
  }

  /** Retries made so far (the attempt count is this + 1). */
  get retriesMade(): number { return this.retries; }

  /** Call when an attempt ends, before deciding: releases the budget slot a retry attempt held. */
  attemptDone(): void {
    if (this.holding) { this.budget.releaseRetry(); this.holding = false; }
  }

  decide(outcome: AttemptOutcome): RetryDecision {
    this.attemptDone();
    const byPolicy = this.policy !== undefined && this.matches(outcome);
    // A response that is not a failure is retried only when a condition asks for it (409, x-envoy-ratelimited, retriable headers, listed codes).
    if (outcome.kind === 'response' && !byPolicy && !isFailure(outcome)) return { retry: false, reason: 'success' };
    // Nothing reached the upstream: a failed connect, or a stream refused before any byte.
    const provablyUnsent = outcome.kind === 'connect-failure' || outcome.kind === 'refused-stream';
    if (!byPolicy && !provablyUnsent) {
      return { retry: false, reason: this.policy === undefined ? 'no-policy' : 'not-retriable' };
    }
    const limit = byPolicy ? this.policy!.numRetries : IMPLICIT_RETRIES;
    if (this.retries >= limit) return { retry: false, reason: 'attempts-exhausted' };
    if (!this.bodyReplayable) return { retry: false, reason: 'body-not-replayable' };
    if (!provablyUnsent) {
      const refused = this.budget.tryAcquireRetry();
      if (refused !== undefined) return { retry: false, reason: refused === 'budget' ? 'budget-exhausted' : 'max-retries' };
      this.holding = true;
    }
    this.retries++;
    const base = this.policy?.baseIntervalMs ?? 25;
    const max = this.policy?.maxIntervalMs ?? 250;
    const ceiling = Math.min(max, base * 2 ** (this.retries - 1));
    return { retry: true, delayMs: Math.floor((this.opts.random ?? Math.random)() * ceiling), attempt: this.retries + 1 };
  }

  private matches(o: AttemptOutcome): boolean {
    const on = this.policy!.retryOn;
    switch (o.kind) {
      case 'connect-failure': return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error') || on.has('reset-before-request');
      case 'refused-stream': return on.has('refused-stream') || on.has('5xx');
      case 'reset': return on.has('reset') || on.has('5xx') || on.has('gateway-error') || (!o.sentBytes && on.has('reset-before-request'));
      case 'per-try-timeout': return on.has('5xx') || on.has('gateway-error') || on.has('reset');
      case 'response': {
        if (on.has('5xx') && o.status >= 500) return true;
        if (on.has('gateway-error') && GATEWAY_ERRORS.has(o.status)) return true;
        if (on.has('retriable-status-codes') && this.policy!.retriableStatusCodes.includes(o.status)) return true;
        if (on.has('retriable-4xx') && o.status === 409) return true;
        const h = o.headers;
        if (h !== undefined) {
          if (on.has('envoy-ratelimited') && h['x-envoy-ratelimited'] !== undefined) return true;
          if (on.has('retriable-headers')) for (const m of this.policy!.retriableHeaders) if (m.matches('', '', '', h as RequestHeaders)) return true;
        }
        if (o.grpcStatus !== undefined) for (const [name, code] of Object.entries(GRPC_RETRY_ON)) if (code === o.grpcStatus && on.has(name)) return true;
        return false;
      }
    }
  }
}

/** A response the mesh counts as failed: 5xx, or a non-OK grpc-status. */
function isFailure(o: Extract<AttemptOutcome, { kind: 'response' }>): boolean {
  return o.status >= 500 || (o.grpcStatus !== undefined && o.grpcStatus !== 0);
}

