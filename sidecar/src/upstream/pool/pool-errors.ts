/**
 * The pool layer's errors: every failure a pool reports is a MeshError with a stable code.
 * Raw errors (errno, nghttp2, undici) stay reachable as `cause`.
 */
import { ErrorCodes, MeshError } from '../../../../shared/src/errors';

/** errno codes that mean "could not establish the connection" rather than "it broke later". */
const CONNECT_ERRNOS = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL',
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME',
]);

interface ErrnoLike { code?: unknown; syscall?: unknown; message?: unknown }

function codeOf(err: unknown): string {
  const c = (err as ErrnoLike | null)?.code;
  return typeof c === 'string' ? c : '';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for a socket/DNS error raised while connecting (as opposed to a reset of a live connection). */
export function isConnectErrno(err: unknown): boolean {
  const syscall = (err as ErrnoLike | null)?.syscall;
  return CONNECT_ERRNOS.has(codeOf(err)) || syscall === 'connect' || syscall === 'getaddrinfo';
}

/** Connect failed; the errno (e.g. ECONNREFUSED) is in the message. */
export function connectFailure(target: string, cause: unknown): MeshError {
  const code = codeOf(cause);
  const why = code === '' ? messageOf(cause) : `${code} (${messageOf(cause)})`;
  return new MeshError(ErrorCodes.UPSTREAM_CONNECT_FAILURE, `upstream connect error to ${target}: ${why}`, { cause });
}

/** `detail` says how long, e.g. `after 5000ms`. */
export function connectTimeout(target: string, detail: string, cause?: unknown): MeshError {
  return new MeshError(ErrorCodes.UPSTREAM_CONNECT_TIMEOUT, `upstream connect to ${target} timed out ${detail}`,
    cause === undefined ? {} : { cause });
}

export function overflow(target: string, maxPending: number): MeshError {
  return new MeshError(ErrorCodes.UPSTREAM_OVERFLOW, `upstream pool for ${target} overflow: ${maxPending} requests already pending`);
}

export function poolClosed(target: string): MeshError {
  return new MeshError(ErrorCodes.POOL_CLOSED, `upstream pool for ${target} is draining or closed`);
}

export function upstreamReset(target: string, cause: unknown): MeshError {
  const code = codeOf(cause);
  const why = code === '' ? messageOf(cause) : `${code} (${messageOf(cause)})`;
  return new MeshError(ErrorCodes.UPSTREAM_RESET, `upstream ${target} reset: ${why}`, { cause });
}

/**
 * Maps an error out of undici (or the socket under it) to a MeshError:
 * - UND_ERR_CONNECT_TIMEOUT -> UPSTREAM_CONNECT_TIMEOUT
 * - connect-phase errno (ECONNREFUSED, ENOTFOUND, syscall connect/getaddrinfo) -> UPSTREAM_CONNECT_FAILURE
 * - pool destroyed/closed -> POOL_CLOSED
 * - bad arguments (a caller bug, e.g. a hop-by-hop header undici refuses) -> INTERNAL
 * - anything else (UND_ERR_SOCKET, ECONNRESET, EPIPE, HPE_* parse errors, length mismatch,
 *   body/headers timeouts, aborts) -> UPSTREAM_RESET
 * A MeshError (e.g. an abort reason given by the caller) passes through unchanged.
 */
export function fromUndiciError(target: string, err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  const code = codeOf(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return connectTimeout(target, `(${messageOf(err)})`, err);
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return new MeshError(ErrorCodes.POOL_CLOSED, `upstream pool for ${target} is closed: ${messageOf(err)}`, { cause: err });
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
      return new MeshError(ErrorCodes.INTERNAL, `bad upstream request to ${target}: ${messageOf(err)}`, { cause: err });
    default:
      return isConnectErrno(err) ? connectFailure(target, err) : upstreamReset(target, err);
  }
}
