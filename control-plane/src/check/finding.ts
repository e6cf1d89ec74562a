/**
 * `skein check` (GET /v1/check): what a check looks at, and what it reports. A check is a plain
 * function from a CheckContext (one consistent read of the control plane, at one instant of its
 * Clock) to findings; it changes nothing.
 */
import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { ProxyStatus } from '../discovery/proxy-status';
import type { IssuedRecord } from '../identity/issued-certificates';

export type Severity = 'error' | 'warning';

/** One problem: how bad, which check found it, what it is about, what is wrong, and what to do. */
export interface Finding {
  severity: Severity;
  /** The check's name, e.g. workload-certificate. */
  check: string;
  /** What the finding is about: a SPIFFE ID, Service/NAME, a proxy's node id, an address. */
  subject: string;
  what: string;
  fix: string;
}

/** Everything the checks read, taken once per GET /v1/check. */
export interface CheckContext {
  /** The control plane's Clock, read once: every check judges the same instant. */
  now: number;
  /** The current config. */
  mesh: MeshConfig;
  /** The connected xDS clients, as GET /v1/proxies shows them. */
  proxies: readonly ProxyStatus[];
  /** The latest workload certificate issued to each identity. */
  issued: Iterable<IssuedRecord>;
  /** The issuing CA certificate and the workload certificate lifetime. */
  ca: { subject: string; source: string; notAfter: number; workloadTtlMs: number; trustDomain: string };
  /** The plaintext xDS listener (--xds-insecure-listen), when open. */
  xdsInsecure: { address: string; loopback: boolean } | undefined;
}

/** A check: findings about one thing, never a change. */
export type MeshCheck = (ctx: CheckContext) => Finding[];

/** A duration for people: 2d4h, 3h12m, 14m, 45s. */
export function roughDuration(ms: number): string {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return h > 0 ? `${d}d${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h${m}m` : `${h}h`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

export function iso(ms: number): string { return new Date(ms).toISOString(); }
