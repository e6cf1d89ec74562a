/**
 * The checks GET /v1/check runs (`skein check`), in the order their findings are listed.
 *
 * MESH_CHECKS is the extension point: a new check is a MeshCheck (finding.ts) in its own file,
 * added here. It reads only its CheckContext; if it needs more of the control plane, add it to
 * CheckContext (built by ControlPlane.checkContext()).
 */
import type { CheckContext, Finding, MeshCheck } from './finding';
import { caExpiry, overdueWorkloadCertificates } from './certificate-checks';
import { plaintextServices } from './mtls-check';
import { stuckProxies } from './proxy-sync-check';
import { plaintextXdsListener } from './insecure-listener-check';
import { authorizationPolicies } from './authorization-check';

export const MESH_CHECKS: readonly MeshCheck[] = [
  caExpiry,
  overdueWorkloadCertificates,
  stuckProxies,
  plaintextServices,
  plaintextXdsListener,
  authorizationPolicies,
];

/** GET /v1/check's answer. */
export interface CheckReport {
  checkedAt: string;
  errors: number;
  warnings: number;
  /** Errors first, then warnings; within each, in MESH_CHECKS order. */
  findings: Finding[];
}

export function runChecks(ctx: CheckContext, checks: readonly MeshCheck[] = MESH_CHECKS): CheckReport {
  const all = checks.flatMap((c) => c(ctx));
  const errors = all.filter((f) => f.severity === 'error');
  const warnings = all.filter((f) => f.severity === 'warning');
  return { checkedAt: new Date(ctx.now).toISOString(), errors: errors.length, warnings: warnings.length, findings: [...errors, ...warnings] };
}
