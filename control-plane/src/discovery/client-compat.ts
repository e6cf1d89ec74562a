/**
 * What known xDS clients reject, so a dry run can warn before a change is pushed. Each rule is
 * read from the client's own validation code, names the client family by its node user agent,
 * and returns the client's error message (as it would come back in the NACK). Only rules for
 * resources the translator can emit are listed; add one whenever a client is found to NACK
 * something the control plane sends and the translation cannot avoid it.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { XdsResource } from '../translate/translate';
import type { RetryPolicy, RouteConfiguration } from '../translate/xds-json';

interface Rule {
  /** Which clients, by user agent ("name/version"). */
  readonly client: RegExp;
  readonly typeUrl: string;
  /** The errors the client would report for this resource (empty when it accepts it). */
  readonly check: (resource: XdsResource) => string[];
}


/**
 * grpc-js-xds validates every retry policy (gRFC A44): num_retries must be at least 1, where
 * Envoy and the skein sidecar read 0 as "one attempt, no retries" (with its per-try timeout).
 * (@grpc/grpc-js-xds, xds-resource-type/route-config-resource-type.ts, validateRetryPolicy.)
 */
function grpcRetryPolicies(resource: XdsResource): string[] {
  const rc = resource as RouteConfiguration; // the rule is for RouteConfigurations only
  const errors: string[] = [];
  const check = (policy: RetryPolicy | undefined, where: string): void => {
    if (policy === undefined) return;
    const n = policy.num_retries?.value;
    const value = n === undefined ? 1 : Number(n);
    if (value < 1) errors.push(`${where}.retry_policy: Invalid policy.num_retries.value: ${value}`);
  };
  for (const vh of rc.virtual_hosts ?? []) {
    const at = `virtual_hosts[${String(vh.name)}]`;
    check(vh.retry_policy, at);
    for (const r of vh.routes ?? []) check(r.route?.retry_policy, `${at}.routes[${String(r.name)}].route`);
  }
  return errors;
}

const RULES: readonly Rule[] = [
  { client: /^gRPC Node/i, typeUrl: TYPE_URLS.ROUTE, check: grpcRetryPolicies },
];

/** The errors `userAgent` would NACK `resource` (of `typeUrl`) with; empty if none is known. */
export function predictRejections(userAgent: string, typeUrl: string, resource: XdsResource): string[] {
  const out: string[] = [];
  for (const rule of RULES) if (rule.typeUrl === typeUrl && rule.client.test(userAgent)) out.push(...rule.check(resource));
  return out;
}
