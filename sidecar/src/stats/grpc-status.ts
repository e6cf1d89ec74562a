/**
 * How the sidecar classifies a finished request for its stats (rq_success / rq_error, the rolling
 * windows' success rate, which the demo table prints, and host failure counts).
 *
 * - No response (status 0: reset, timeout, local reply) is a failure.
 * - A response with a grpc-status (a gRPC request answered by its upstream) is judged by that
 *   status, whatever its HTTP status: a server failure is UNKNOWN (2), DEADLINE_EXCEEDED (4),
 *   UNIMPLEMENTED (12), INTERNAL (13), UNAVAILABLE (14) or DATA_LOSS (15): the service or the
 *   path to it broke, as an HTTP 5xx says. Every other code (OK, CANCELLED, INVALID_ARGUMENT,
 *   NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION,
 *   ABORTED, OUT_OF_RANGE, UNAUTHENTICATED) is a success from the mesh's point of view: the
 *   service answered, and the caller's request or state decided the outcome, as an HTTP 4xx.
 *   A grpc-status outside 0..16, or not a number, counts as UNKNOWN.
 * - Any other response is judged by its HTTP status: 100..499 succeed, 5xx fail.
 *
 * The HTTP status classes (rq_2xx, rq_5xx, ...) always count the HTTP status: a gRPC failure
 * answered with HTTP 200 is in rq_2xx, and in rq_grpc_<CODE> (GRPC_STATUS_NAMES).
 */

/** gRPC status names by code, as in the gRPC spec; the stat is `..rq_grpc_<NAME>`. */
export const GRPC_STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

/** The gRPC codes counted as server failures (see the header). */
export const GRPC_SERVER_FAILURES: readonly number[] = Object.freeze([2, 4, 12, 13, 14, 15]);

const UNKNOWN = 2;
const FAILURE: readonly boolean[] = GRPC_STATUS_NAMES.map((_, code) => GRPC_SERVER_FAILURES.includes(code));

/** A grpc-status as a code 0..16 (anything else: UNKNOWN), or -1 when absent. No allocation. */
export function parseGrpcStatus(v: string | string[] | number | undefined): number {
  if (v === undefined) return -1;
  const n = typeof v === 'number' ? v : Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : UNKNOWN;
}

/** The index into GRPC_STATUS_NAMES for a code >= 0 (out of range: UNKNOWN). */
export function grpcStatusIndex(code: number): number {
  return Number.isInteger(code) && code <= 16 ? code : UNKNOWN;
}

/** Whether a finished request succeeded: `status` 0 = no response; `grpcStatus` -1 = none. */
export function requestSucceeded(status: number, grpcStatus: number): boolean {
  if (status === 0) return false;
  if (grpcStatus >= 0) return !FAILURE[grpcStatusIndex(grpcStatus)]!;
  return status >= 100 && status < 500;
}
