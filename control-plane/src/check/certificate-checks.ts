/** Checks of certificates: workload certificates not renewed in time, and the CA's own expiry. */
import type { CheckContext, Finding } from './finding';
import { iso, roughDuration } from './finding';

export const CERT_CHECK_LIMITS = {
  /** A certificate with less than this fraction of its lifetime left should have been renewed (renewal starts at half). */
  renewOverdueBelow: 0.2,
  /** An identity whose certificate expired longer ago than this is taken to be gone, not failing. */
  forgetExpiredAfterMs: 24 * 3600_000,
  /** A CA expiring sooner than this is an error. */
  caWarnWithinMs: 30 * 24 * 3600_000,
} as const;

/**
 * Workload certificates past 80% of their lifetime that were not renewed (the latest one issued
 * to each identity): a warning while valid, an error once expired, until a day after expiry.
 */
export function overdueWorkloadCertificates(ctx: CheckContext): Finding[] {
  const out: Finding[] = [];
  for (const r of ctx.issued) {
    const life = r.notAfter - r.notBefore;
    const left = r.notAfter - ctx.now;
    if (left >= life * CERT_CHECK_LIMITS.renewOverdueBelow || -left > CERT_CHECK_LIMITS.forgetExpiredAfterMs) continue;
    const expired = left <= 0;
    out.push({
      severity: expired ? 'error' : 'warning', check: 'workload-certificate', subject: r.spiffeId,
      what: expired
        ? `the workload certificate of ${r.spiffeId} (serial ${r.serial}) expired at ${iso(r.notAfter)}, ${roughDuration(left)} ago, and was not renewed: peers and the control plane refuse it`
        : `the workload certificate of ${r.spiffeId} (serial ${r.serial}) expires at ${iso(r.notAfter)}, in ${roughDuration(left)} (${Math.floor((100 * left) / life)}% of its lifetime left), and has not been renewed (renewal starts at half its lifetime)`,
      fix: 'check the logs of the workload with this identity (its sidecar, or skein cert renew --loop) for renewal failures, and that it reaches the control plane\'s xDS port; a workload that is gone drops off a day after its certificate expires',
    });
  }
  return out.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
}

/** The issuing CA certificate expiring within 30 days, or before a workload certificate issued now would. */
export function caExpiry(ctx: CheckContext): Finding[] {
  const { ca, now } = ctx;
  const left = ca.notAfter - now;
  const soon = left < CERT_CHECK_LIMITS.caWarnWithinMs;
  const cutShort = left < ca.workloadTtlMs;
  if (!soon && !cutShort) return [];
  const when = left <= 0 ? `expired at ${iso(ca.notAfter)}, ${roughDuration(left)} ago: no certificate can be issued` : `expires at ${iso(ca.notAfter)}, in ${roughDuration(left)}`;
  const why = left > 0 && cutShort ? `; that is sooner than --workload-cert-ttl (${roughDuration(ca.workloadTtlMs)}), so every workload certificate issued now is cut short to the CA's expiry` : '';
  return [{
    severity: 'error', check: 'ca-expiry', subject: ca.subject,
    what: `the mesh CA (${ca.source}, "${ca.subject}") ${when}${why}`,
    fix: 'restart the control plane with --ca-cert/--ca-key naming a new CA (a root, or an intermediate of your PKI); workloads must then get certificates from the new CA (root rotation, with both roots trusted meanwhile, is coming)',
  }];
}
