/**
 * The gRPC deadline header (PROTOCOL-HTTP2.md): `grpc-timeout: <1-8 digits><unit>` with unit
 * H (hours), M (minutes), S (seconds), m (ms), u (µs), n (ns). Parsed into whole milliseconds,
 * rounded up so a short deadline never becomes 0. Anything malformed counts as no deadline
 * (the header is the caller's, and a proxy must not fail a call over it).
 */
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Milliseconds of a grpc-timeout value; 0 when absent or malformed. */
export function parseGrpcTimeout(v: string | string[] | undefined): number {
  if (typeof v !== 'string' || v.length < 2 || v.length > 9) return 0;
  const unit = UNIT_MS[v[v.length - 1]!];
  if (unit === undefined) return 0;
  let n = 0;
  for (let i = 0; i < v.length - 1; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  if (n === 0) return 0;
  return Math.max(1, Math.ceil(n * unit));
}

/** A grpc-timeout value for `ms` milliseconds (at most 8 digits, so very long ones go in seconds). */
export function formatGrpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  return m <= 99_999_999 ? `${m}m` : `${Math.ceil(m / 1000)}S`;
}
