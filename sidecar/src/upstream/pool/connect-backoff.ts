/**
 * Reconnect backoff for one upstream host (issue 14): after a failed connect, the pool does not
 * dial the address again until the backoff has passed. Requests meanwhile fail at once with the
 * last connect error, which the router retries on another host (nothing was sent), and which
 * failure accrual counts against the host. So a dead address is dialled a handful of times, not
 * once per request.
 *
 * Backoff after n failures in a row: a random time in [ceiling/2, ceiling], ceiling =
 * min(MAX, BASE x 2^(n-1)): 100ms, 200ms, 400ms ... 5s (grpc-js reconnects the same way, with
 * other numbers). A successful connect resets it.
 */
import type { Clock } from '../../../../shared/src/clock';
import type { MeshError } from '../../../../shared/src/errors';

export const CONNECT_BACKOFF_BASE_MS = 100;
export const CONNECT_BACKOFF_MAX_MS = 5000;

export class ConnectBackoff {
  /** Failed connects in a row. */
  failures = 0;
  private until = 0;
  private lastError: MeshError | undefined;

  constructor(private readonly clock: Clock, private readonly random: () => number = Math.random) {}

  /** The error to fail a request with while the host is in backoff; undefined when it may be dialled. */
  blocked(): MeshError | undefined {
    if (this.lastError === undefined || this.clock.now() >= this.until) return undefined;
    return this.lastError;
  }

  failed(err: MeshError): void {
    this.failures++;
    this.lastError = err;
    const ceiling = Math.min(CONNECT_BACKOFF_MAX_MS, CONNECT_BACKOFF_BASE_MS * 2 ** Math.min(this.failures - 1, 16));
    this.until = this.clock.now() + Math.ceil(ceiling * (0.5 + this.random() / 2));
  }

  succeeded(): void {
    this.failures = 0;
    this.lastError = undefined;
    this.until = 0;
  }
}
