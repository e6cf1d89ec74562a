/**
 * Rate-limited warnings: at most one line per key every `intervalMs`, the next one saying how
 * many were not logged in between. For events a caller can cause at will (a port scan, a
 * misconfigured client, a denied caller retrying): they must not flood the log.
 */
import type { Clock } from '../../../shared/src/clock';

export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly clock: Clock, readonly intervalMs = 10_000) {}

  /**
   * Whether to log an event of `key` now: -1 if not (it is counted for the next line), else how
   * many events of `key` were not logged since the last line. The caller builds the line only
   * when it logs.
   */
  take(key: string): number {
    const now = this.clock.now();
    const last = this.last.get(key);
    if (last !== undefined && now - last.at < this.intervalMs) { last.suppressed++; return -1; }
    this.last.set(key, { at: now, suppressed: 0 });
    return last?.suppressed ?? 0;
  }
}
