/**
 * Fault injection for one route (Envoy's envoy.filters.http.fault, per-route HTTPFault): a fixed
 * delay and/or an abort, each for a share of requests. Policy only: the caller draws the random
 * numbers (uniform in [0, 1)), holds the request for delayMs() and answers the abort locally.
 *
 * Shares are per million (FractionalPercent normalised): a request is hit when
 * `r * 1_000_000 < perMillion`, i.e. Envoy's `random % denominator < numerator`. 0 never hits;
 * 1_000_000 always does.
 *
 * Abort statuses, as Envoy answers them (FaultFilter::abortStatus, then sendLocalReply):
 * - http_status: plain HTTP requests get that status; gRPC requests get HTTP 200 with the
 *   grpc-status Envoy maps it to (httpToGrpcStatus: 503 -> UNAVAILABLE, 404 -> UNIMPLEMENTED, ...).
 * - grpc_status: gRPC requests get that grpc-status; plain HTTP requests get HTTP 200 (Envoy sets
 *   the HTTP status to 200 whenever a gRPC status is configured, and a non-gRPC local reply
 *   carries no grpc-status).
 * The abort object is built once; abort() returns the same object every time (no allocation).
 */

/** A precomputed abort: `reason` is the local reply's x-skein-reason, so it can be used as a LocalReply as is. */
export interface FaultAbort {
  readonly reason: 'fault_abort';
  /** The HTTP status for a plain HTTP request. */
  readonly http: number;
  /** The grpc-status for a gRPC request. */
  readonly grpc: number;
}

export const PER_MILLION = 1_000_000;

/**
 * HTTP status -> gRPC status, as Envoy's Grpc::Utility::httpToGrpcStatus (the gRPC project's
 * http-grpc-status-mapping): 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
 * 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
 */
export function httpToGrpcStatus(http: number): number {
  switch (http) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}

export interface FaultPolicyInit {
  /** fixedDelayMs >= 1; perMillion: share of requests delayed (0 to 1000000). */
  readonly delay?: { readonly fixedDelayMs: number; readonly perMillion: number };
  /** Exactly one of httpStatus / grpcStatus; perMillion: share of requests aborted. */
  readonly abort?: { readonly httpStatus: number; readonly perMillion: number } | { readonly grpcStatus: number; readonly perMillion: number };
}

export class FaultPolicy {
  /** 0 when no delay is configured. */
  readonly fixedDelayMs: number;
  /** Share of requests delayed, per million; 0 when no delay is configured. */
  readonly delayPerMillion: number;
  /** Share of requests aborted, per million; 0 when no abort is configured. */
  readonly abortPerMillion: number;
  /** The abort answer, or undefined when no abort is configured. */
  readonly abortStatus: FaultAbort | undefined;

  constructor(init: FaultPolicyInit) {
    this.fixedDelayMs = init.delay?.fixedDelayMs ?? 0;
    this.delayPerMillion = init.delay === undefined ? 0 : clampShare(init.delay.perMillion);
    this.abortPerMillion = init.abort === undefined ? 0 : clampShare(init.abort.perMillion);
    const a = init.abort;
    this.abortStatus = a === undefined ? undefined
      : 'httpStatus' in a ? Object.freeze({ reason: 'fault_abort', http: a.httpStatus, grpc: httpToGrpcStatus(a.httpStatus) })
        : Object.freeze({ reason: 'fault_abort', http: 200, grpc: a.grpcStatus });
    Object.freeze(this);
  }

  /** True when neither a delay nor an abort can ever hit (then a route needs no policy at all). */
  get inert(): boolean {
    return (this.fixedDelayMs === 0 || this.delayPerMillion === 0) && (this.abortStatus === undefined || this.abortPerMillion === 0);
  }

  /** The delay for a request that drew `r` (uniform in [0, 1)): fixedDelayMs when hit, else 0. */
  delayMs(r: number): number {
    return r * PER_MILLION < this.delayPerMillion ? this.fixedDelayMs : 0;
  }

  /** The abort for a request that drew `r` (uniform in [0, 1)), or undefined: forward it. */
  abort(r: number): FaultAbort | undefined {
    return r * PER_MILLION < this.abortPerMillion ? this.abortStatus : undefined;
  }
}

/** Envoy caps a numerator above its denominator at 100%. */
function clampShare(perMillion: number): number {
  return perMillion > PER_MILLION ? PER_MILLION : perMillion < 0 ? 0 : perMillion;
}
