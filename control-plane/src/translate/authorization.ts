/**
 * AuthorizationPolicy -> Envoy's RBAC HTTP filters for the inbound listener of the target
 * service, in Istio's layout (docs/config.md, AuthorizationPolicy):
 *   [RBAC action DENY: the DENY rules]   (left out when there are none)
 *   [RBAC action ALLOW: the ALLOW rules] (defaultAction DENY only; empty: deny every request)
 * Each rule is one RBAC policy `<policy name>/rules[<i>]`, so a denial names the rule.
 */
import type { AuthorizationPolicy, AuthorizationRule, AuthorizationTarget } from '../../../shared/src/config/types';
import type { envoy } from '../../../shared/src/xds/generated/xds-types';
import { TYPE_URLS as TYPE } from '../../../shared/src/xds/protos';
import type { HttpFilter } from './xds-json';

type RbacPolicy = envoy.config.rbac.v3.Policy;
type Permission = envoy.config.rbac.v3.Permission;
type Principal = envoy.config.rbac.v3.Principal;

export const RBAC_FILTER = 'envoy.filters.http.rbac';

/**
 * The RBAC filters for one service's policies (all with the same defaultAction, as validation
 * ensures), to go before the router; none when the service has no policy.
 */
export function rbacFilters(policies: readonly AuthorizationPolicy[]): HttpFilter[] {
  if (policies.length === 0) return [];
  const deny: Record<string, RbacPolicy> = {};
  const allow: Record<string, RbacPolicy> = {};
  for (const p of policies) {
    p.spec.rules.forEach((rule, i) => {
      (rule.action === 'DENY' ? deny : allow)[`${p.metadata.name}/rules[${i}]`] = rbacPolicy(rule);
    });
  }
  const out: HttpFilter[] = [];
  if (Object.keys(deny).length > 0) out.push(rbacFilter('DENY', deny));
  if (policies[0]!.spec.defaultAction === 'DENY') out.push(rbacFilter('ALLOW', allow));
  return out;
}

function rbacFilter(action: 'ALLOW' | 'DENY', policies: Record<string, RbacPolicy>): HttpFilter {
  return { name: RBAC_FILTER, typed_config: { '@type': TYPE.RBAC, rules: { action, policies } } };
}

function rbacPolicy(rule: AuthorizationRule): RbacPolicy {
  return { principals: rule.from.map(principal), permissions: [rule.to === undefined ? { any: true } : permission(rule.to)] };
}

/** '*': any authenticated peer (not `any: true`, which a plaintext caller would match too). */
function principal(pattern: string): Principal {
  if (pattern === '*') return { authenticated: {} };
  const name = pattern.endsWith('*') ? { prefix: pattern.slice(0, -1) } : { exact: pattern };
  return { authenticated: { principal_name: name } };
}

function permission(to: AuthorizationTarget): Permission {
  const all: Permission[] = [];
  if (to.paths !== undefined) all.push(anyOf(to.paths.map((prefix) => ({ url_path: { path: { prefix } } }))));
  if (to.methods !== undefined) all.push(anyOf(to.methods.map((exact) => ({ header: { name: ':method', string_match: { exact } } }))));
  if (to.grpc !== undefined) {
    all.push(anyOf(to.grpc.map((g) => ({ url_path: { path: g.method === undefined ? { prefix: `/${g.service}/` } : { exact: `/${g.service}/${g.method}` } } }))));
  }
  return { and_rules: { rules: all } };
}

function anyOf(rules: Permission[]): Permission {
  return rules.length === 1 ? rules[0]! : { or_rules: { rules } };
}
