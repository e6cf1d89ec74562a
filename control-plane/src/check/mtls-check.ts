/** Services whose sidecars still accept plaintext. */
import type { CheckContext, Finding } from './finding';

/** Each Service with spec.mtls PERMISSIVE (mTLS or plaintext) or DISABLE (plaintext only). */
export function plaintextServices(ctx: CheckContext): Finding[] {
  const out: Finding[] = [];
  for (const [name, svc] of ctx.mesh.services) {
    const mode = svc.spec.mtls;
    if (mode === 'STRICT') continue;
    out.push({
      severity: 'warning', check: 'plaintext-service', subject: `Service/${name}`,
      what: mode === 'PERMISSIVE'
        ? `Service/${name} has spec.mtls PERMISSIVE: its sidecars also accept plaintext, from callers that are not mesh workloads`
        : `Service/${name} has spec.mtls DISABLE: its sidecars accept plaintext only, and its callers send no TLS`,
      fix: `set spec.mtls: STRICT on Service/${name} once all of its callers have sidecars (skein apply)`,
    });
  }
  return out.sort((a, b) => (a.subject < b.subject ? -1 : 1));
}
