/** What a pool tells its cluster about connections (the cluster's upstream_cx_* counters). */
export interface ConnectionEvents {
  /** A connection to the host is being opened (cluster.<c>.upstream_cx_total). */
  connectAttempt(): void;
  /** Opening it failed: refused, unreachable, or timed out (cluster.<c>.upstream_cx_connect_fail). */
  connectFailed(): void;
}
