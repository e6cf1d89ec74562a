/**
 * envoy.filters.http.rbac: authorization by the caller's identity, on the inbound listener
 * (the control plane's AuthorizationPolicy; docs/config.md). The caller is the verified mTLS
 * peer of the downstream connection (FilterCallbacks.downstreamPeer, its SPIFFE ID); a plaintext
 * connection has none and matches only principals that match anyone.
 *
 * Config (extensions.filters.http.rbac.v3.RBAC): `rules` (rbac-policy.ts); absent, the filter
 * enforces nothing (Envoy's reading). rules_stat_prefix, shadow_rules_stat_prefix and
 * track_per_rule_stats only name or shape stats and are ignored (the sidecar always counts per
 * policy); shadow_rules, matcher and shadow_matcher are rejected, and so is a per-route
 * RBACPerRoute.
 *
 * A denied request gets 403 / PERMISSION_DENIED (`rbac_denied`) and is counted as
 * `<listener>.rbac.denied{policy=<name>}` (`default` when an ALLOW filter found no matching
 * policy) and logged at warn, at most one line per policy every 10s. `<listener>.rbac.allowed`
 * counts the requests the last RBAC filter of the chain let through, so a request counts once
 * however many RBAC filters it passed (Istio's layout: a DENY filter, then an ALLOW filter).
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { checkFields, fieldSpec, has, optMessage } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';
import type { FilterCallbacks, FilterStatus, HttpFilter } from '../http/http-filter';
import { LOCAL_REPLIES } from '../http/local-reply';
import type { Counter } from '../stats/stats';
import { decodeRbacRules, matchingPolicy } from './rbac-policy';
import type { RbacRules } from './rbac-policy';
import type { FilterEnv, HttpFilterDefinition } from './registry';

export const RBAC_FILTER = 'envoy.filters.http.rbac';
/** The policy label of a denial no policy decided: an ALLOW filter matched none. */
export const DEFAULT_POLICY = 'default';
/** What the caller reads (as Envoy's "RBAC: access denied"): the rule's name stays in the proxy's stats and log. */
const DETAIL = 'RBAC: access denied';

const RBAC_CONFIG = fieldSpec(['rules'], ['rules_stat_prefix', 'shadow_rules_stat_prefix', 'track_per_rule_stats']);

/** The listener config: the compiled rules, or null (no `rules`: the filter enforces nothing). */
export type RbacConfig = RbacRules | null;

class RbacFilter implements HttpFilter {
  readonly name = RBAC_FILTER;
  private readonly denied: readonly Counter[];
  private readonly deniedByDefault: Counter;
  private readonly allowed: Counter | undefined;
  private readonly logKeys: readonly string[];

  constructor(private readonly rules: RbacRules, private readonly env: FilterEnv, countAllowed: boolean) {
    const name = `${env.statPrefix}rbac.denied`;
    this.denied = rules.policies.map((p) => env.stats.counter(name, { policy: p.name }));
    this.deniedByDefault = env.stats.counter(name, { policy: DEFAULT_POLICY });
    this.allowed = countAllowed ? env.stats.counter(`${env.statPrefix}rbac.allowed`) : undefined;
    this.logKeys = rules.policies.map((p) => `rbac:${p.name}`);
  }

  onRequestHeaders(cb: FilterCallbacks): FilterStatus {
    const rules = this.rules;
    const i = matchingPolicy(rules, cb.method, cb.path, cb.downstreamPeer?.spiffeId);
    if (rules.action === 'ALLOW' ? i >= 0 : i < 0) {
      this.allowed?.inc();
      return 'continue';
    }
    (i < 0 ? this.deniedByDefault : this.denied[i]!).inc();
    const suppressed = this.env.warnings.take(i < 0 ? 'rbac:' : this.logKeys[i]!);
    if (suppressed >= 0) {
      this.env.log.warn({
        caller: cb.downstreamPeer?.spiffeId ?? 'none (plaintext)', method: cb.method, path: cb.path,
        policy: i < 0 ? DEFAULT_POLICY : rules.policies[i]!.name, action: rules.action,
        ...(suppressed > 0 ? { alsoDeniedSinceLastLog: suppressed } : {}),
      }, i < 0 ? 'request denied: no RBAC policy allows the caller' : 'request denied by an RBAC policy');
    }
    cb.sendLocalReply(LOCAL_REPLIES.rbacDenied, DETAIL);
    return 'stop';
  }
}

/** A filter without rules lets everything through. */
const PASS: HttpFilter = Object.freeze({ name: RBAC_FILTER, onRequestHeaders: () => 'continue' as const });

export const rbacFilter: HttpFilterDefinition<RbacConfig> = {
  name: RBAC_FILTER,
  typeUrl: TYPE_URLS.RBAC,
  inertListenerConfig: Object.freeze({}),
  parseListenerConfig(config: XdsMessage, path: string, issues: Issues): RbacConfig | undefined {
    const before = issues.count;
    checkFields(config, RBAC_CONFIG, path, issues);
    const rules = optMessage(config, 'rules', path, issues);
    const decoded = rules === undefined ? null : decodeRbacRules(rules, `${path}.rules`, issues);
    if (issues.count !== before || decoded === undefined) return undefined;
    return has(config, 'rules') ? decoded : null;
  },
  parsePerRoute(_config: XdsMessage, path: string, _ctx, issues: Issues): undefined {
    issues.add(path, 'per-route RBAC (RBACPerRoute) is not supported by the skein sidecar');
    return undefined;
  },
  create: (config, _slot, env) => (config === null ? PASS : new RbacFilter(config, env, env.lastOfType)),
};
