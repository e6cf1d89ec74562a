/**
 * Authorization policies that will not do what their author meant: one that names a Service that
 * does not exist (it protects nothing), a caller identity no workload can have (another trust
 * domain, or a service account no Service uses and no certificate was issued to), or a policy
 * under which no caller at all can get through.
 */
import { parseSpiffeId } from '../../../shared/src/identity/spiffe';
import type { AuthorizationPolicy } from '../../../shared/src/config/types';
import type { CheckContext, Finding } from './finding';

export function authorizationPolicies(ctx: CheckContext): Finding[] {
  const out: Finding[] = [];
  const accounts = new Set<string>();
  for (const [name, svc] of ctx.mesh.services) accounts.add(svc.spec.serviceAccount ?? name);
  const issued = new Set<string>();
  for (const r of ctx.issued) issued.add(r.spiffeId);
  const byTarget = new Map<string, AuthorizationPolicy[]>();
  for (const p of ctx.mesh.authorizationPolicies) {
    const subject = `AuthorizationPolicy/${p.metadata.name}`;
    const target = p.spec.targetRef.name;
    if (!ctx.mesh.services.has(target)) {
      out.push({ severity: 'warning', check: 'authorization-policy', subject, what: `${subject} targets Service/${target}, which does not exist: it protects nothing`, fix: `declare Service/${target}, or fix spec.targetRef.name` });
    }
    (byTarget.get(target) ?? byTarget.set(target, []).get(target)!).push(p);
    p.spec.rules.forEach((rule, i) => {
      for (const from of rule.from) {
        const why = unknownIdentity(from, ctx.ca.trustDomain, accounts, issued);
        if (why !== undefined) out.push({ severity: 'warning', check: 'authorization-policy', subject, what: `${subject} spec.rules[${i}].from names ${from}: ${why}`, fix: 'check the SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>) against the callers\' identities (skein proxy-status -o json)' });
      }
    });
  }
  for (const [target, policies] of byTarget) {
    if (denyEveryone(policies)) {
      const names = policies.map((p) => `AuthorizationPolicy/${p.metadata.name}`).join(', ');
      out.push({ severity: 'error', check: 'authorization-policy', subject: `Service/${target}`, what: `${names} deny every caller of Service/${target}: ${policies.some((p) => p.spec.rules.some((r) => r.action === 'DENY' && r.to === undefined && r.from.includes('*'))) ? 'a DENY rule covers every authenticated caller and every request' : 'defaultAction is DENY and no rule allows anyone'}`, fix: 'add an ALLOW rule for the callers that need the service, or set defaultAction: ALLOW' });
    }
  }
  return out;
}

/** Why no workload can have `pattern`'s identity, or undefined when one can. */
function unknownIdentity(pattern: string, trustDomain: string, accounts: ReadonlySet<string>, issued: ReadonlySet<string>): string | undefined {
  if (pattern === '*') return undefined;
  if (pattern.endsWith('*')) return pattern.startsWith(`spiffe://${trustDomain}/`) ? undefined : `it is not in this mesh's trust domain ${trustDomain}`;
  let id;
  try { id = parseSpiffeId(pattern); } catch { return 'it is not a workload SPIFFE ID'; }
  if (id.trustDomain !== trustDomain) return `it is not in this mesh's trust domain ${trustDomain}`;
  if (!accounts.has(id.serviceAccount) && !issued.has(pattern)) return `no Service uses service account ${id.serviceAccount} and no certificate was issued to it`;
  return undefined;
}

/** Whether the policies of one service leave no way in for anyone. */
function denyEveryone(policies: readonly AuthorizationPolicy[]): boolean {
  const rules = policies.flatMap((p) => p.spec.rules);
  if (rules.some((r) => r.action === 'DENY' && r.to === undefined && r.from.includes('*'))) return true;
  return policies.every((p) => p.spec.defaultAction === 'DENY') && !rules.some((r) => r.action === 'ALLOW');
}
