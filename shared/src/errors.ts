/**
 * One error root for the whole mesh. Every error that can reach a user or a peer carries a
 * stable `code` (SKEIN_ERR_*). Codes are part of the public contract: scripts match on them,
 * so never rename one; add a new one instead.
 *
 * Mapping to a local reply (HTTP status, gRPC status, x-skein-reason) happens once, at the
 * edge (the SRE API here, the sidecar's HTTP connection manager later), via `httpStatusOf`.
 */
export const ErrorCodes = {
  /** Config failed validation; `details` lists every problem with its field path. */
  VALIDATION: 'SKEIN_ERR_VALIDATION',
  /** The request body could not be parsed as YAML or JSON. */
  MALFORMED_INPUT: 'SKEIN_ERR_MALFORMED_INPUT',
  /** The request body exceeded the configured size limit. */
  BODY_TOO_LARGE: 'SKEIN_ERR_BODY_TOO_LARGE',
  /** A named thing (revision, route, endpoint lease, API route) does not exist. */
  NOT_FOUND: 'SKEIN_ERR_NOT_FOUND',
  /** Optimistic concurrency: the caller's expected revision is not the current one. */
  CONFLICT: 'SKEIN_ERR_CONFLICT',
  /** The HTTP method is not allowed on this API route. */
  METHOD_NOT_ALLOWED: 'SKEIN_ERR_METHOD_NOT_ALLOWED',
  /** The store could not read or write its state. */
  STORE: 'SKEIN_ERR_STORE',
  /** The data directory is locked by another live control plane. */
  STORE_LOCKED: 'SKEIN_ERR_STORE_LOCKED',
  /**
   * The shared store (NATS JetStream, `--store nats://...`) cannot be reached: the change was not
   * made. The control plane keeps serving its last snapshot; retry when the store is back.
   */
  STORE_UNAVAILABLE: 'SKEIN_ERR_STORE_UNAVAILABLE',
  /** A peer sent a protocol message that breaks the protocol's rules. */
  PROTOCOL: 'SKEIN_ERR_PROTOCOL',
  /** The caller's request is unsupported (for example an unknown media type). */
  UNSUPPORTED: 'SKEIN_ERR_UNSUPPORTED',
  /** Anything else: a bug. */
  INTERNAL: 'SKEIN_ERR_INTERNAL',
  /** The sidecar could not open a connection to an upstream host (refused, unreachable, DNS, closed before SETTINGS). */
  UPSTREAM_CONNECT_FAILURE: 'SKEIN_ERR_UPSTREAM_CONNECT_FAILURE',
  /** Opening a connection to an upstream host took longer than the pool's connect timeout. */
  UPSTREAM_CONNECT_TIMEOUT: 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT',
  /** An upstream connection pool's pending-request queue is full. */
  UPSTREAM_OVERFLOW: 'SKEIN_ERR_UPSTREAM_OVERFLOW',
  /** An upstream connection or stream was reset or failed after it was established. */
  UPSTREAM_RESET: 'SKEIN_ERR_UPSTREAM_RESET',
  /** The upstream connection pool is draining or closed and takes no new requests. */
  POOL_CLOSED: 'SKEIN_ERR_POOL_CLOSED',
  /** A cluster's circuit breaker (max connections, pending requests, requests or retries) is at its limit. */
  CIRCUIT_BREAKER_OPEN: 'SKEIN_ERR_CIRCUIT_BREAKER_OPEN',
  /** The caller presented no credential, or one that is unknown, expired or already used. */
  UNAUTHENTICATED: 'SKEIN_ERR_UNAUTHENTICATED',
  /** The caller is known but not allowed to do this (e.g. a certificate for another service). */
  PERMISSION_DENIED: 'SKEIN_ERR_PERMISSION_DENIED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** One problem found in user input, named by its path, e.g. `HTTPRoute/reviews: spec.rules[1].weight`. */
export interface FieldIssue {
  /** `Kind/name` of the resource, or `` for problems with the document as a whole. */
  resource: string;
  /** Dotted field path inside the resource, e.g. `spec.rules[1].backendRefs[0].weight`. */
  path: string;
  message: string;
}

export function formatIssue(i: FieldIssue): string {
  const where = [i.resource, i.path].filter((s) => s !== '').join(': ');
  return where === '' ? i.message : `${where}: ${i.message}`;
}

export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly FieldIssue[];

  constructor(code: ErrorCode, message: string, opts: { details?: readonly FieldIssue[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MeshError';
    this.code = code;
    this.details = opts.details ?? [];
  }

  toJSON(): { code: ErrorCode; message: string; details?: FieldIssue[] } {
    return this.details.length > 0
      ? { code: this.code, message: this.message, details: [...this.details] }
      : { code: this.code, message: this.message };
  }
}

export function validationError(issues: readonly FieldIssue[]): MeshError {
  const head = issues.slice(0, 5).map(formatIssue).join('; ');
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  return new MeshError(ErrorCodes.VALIDATION, `invalid config: ${head}${more}`, { details: issues });
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  SKEIN_ERR_VALIDATION: 422,
  SKEIN_ERR_MALFORMED_INPUT: 400,
  SKEIN_ERR_BODY_TOO_LARGE: 413,
  SKEIN_ERR_NOT_FOUND: 404,
  SKEIN_ERR_CONFLICT: 409,
  SKEIN_ERR_METHOD_NOT_ALLOWED: 405,
  SKEIN_ERR_STORE: 500,
  SKEIN_ERR_STORE_LOCKED: 503,
  SKEIN_ERR_STORE_UNAVAILABLE: 503,
  SKEIN_ERR_PROTOCOL: 400,
  SKEIN_ERR_UNSUPPORTED: 415,
  SKEIN_ERR_INTERNAL: 500,
  SKEIN_ERR_UPSTREAM_CONNECT_FAILURE: 503,
  SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT: 503,
  SKEIN_ERR_UPSTREAM_OVERFLOW: 503,
  SKEIN_ERR_UPSTREAM_RESET: 503,
  SKEIN_ERR_POOL_CLOSED: 503,
  SKEIN_ERR_CIRCUIT_BREAKER_OPEN: 503,
  SKEIN_ERR_UNAUTHENTICATED: 401,
  SKEIN_ERR_PERMISSION_DENIED: 403,
};

/** The HTTP status for an error at the SRE API edge. Non-MeshErrors are internal errors. */
export function httpStatusOf(err: unknown): number {
  return err instanceof MeshError ? HTTP_STATUS[err.code] : 500;
}

export function asMeshError(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new MeshError(ErrorCodes.INTERNAL, message, { cause: err });
}
