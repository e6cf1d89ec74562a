import type { AuthorizationGrpcMethod, AuthorizationPolicySpec, AuthorizationRule, AuthorizationTarget } from './types';
import { AUTHORIZATION_ACTIONS } from './types';
import { FieldReader, join, NAME_HINT, NAME_PATTERN } from './reader';
import { CONFIG_LIMITS } from './limits';

/**
 * A caller pattern: `*` (any authenticated caller), or a SPIFFE ID (`spiffe://<trust domain>/<path>`)
 * that may end in `*` (a prefix). A `*` anywhere else is an error: it is not a general glob.
 */
const SPIFFE_PATTERN = /^spiffe:\/\/[a-z0-9]([a-z0-9.-]*[a-z0-9])?(\/[A-Za-z0-9._~%!$&'()+,;=:@-]*)*\*?$/;
const SPIFFE_HINT = "must be '*' or a SPIFFE ID spiffe://<trust domain>/<path> (e.g. spiffe://skein.local/ns/default/sa/frontend), optionally ending in '*' (a prefix)";
/** A path prefix: starts with '/', no whitespace, no query. */
const PATH_PREFIX = /^\/[^\s?#]*$/;
/** An HTTP method token, upper case (methods are case-sensitive; every standard one is upper case). */
const HTTP_METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;
/** A fully qualified protobuf service name, e.g. skein.demo.v1.Greeter. */
const GRPC_SERVICE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ITEMS = { min: 1, max: CONFIG_LIMITS.authorizationRuleItems };

export function validateAuthorizationPolicySpec(r: FieldReader, raw: unknown): AuthorizationPolicySpec | undefined {
  const o = r.object(raw, 'spec', ['targetRef', 'defaultAction', 'rules']);
  if (o === undefined) return undefined;
  const targetRef = targetRefOf(r, o['targetRef']);
  const defaultAction = o['defaultAction'] === undefined ? 'DENY' : r.oneOf(o['defaultAction'], 'spec.defaultAction', AUTHORIZATION_ACTIONS);
  const rules = rulesOf(r, o['rules']);
  if (targetRef === undefined || defaultAction === undefined || rules === undefined) return undefined;
  return { targetRef, defaultAction, rules };
}

function targetRefOf(r: FieldReader, raw: unknown): AuthorizationPolicySpec['targetRef'] | undefined {
  if (raw === undefined) return r.fail('spec.targetRef', 'is required: the service whose sidecars enforce this policy, e.g. {kind: Service, name: reviews}');
  const o = r.object(raw, 'spec.targetRef', ['kind', 'name']);
  if (o === undefined) return undefined;
  const kind = o['kind'] === undefined ? 'Service' : r.oneOf(o['kind'], 'spec.targetRef.kind', ['Service'] as const);
  const name = r.string(o['name'], 'spec.targetRef.name', { pattern: NAME_PATTERN, patternHint: NAME_HINT });
  if (kind === undefined || name === undefined) return undefined;
  return { kind, name };
}

function rulesOf(r: FieldReader, raw: unknown): AuthorizationRule[] | undefined {
  if (raw === undefined) return [];
  const list = r.array(raw, 'spec.rules', { max: CONFIG_LIMITS.authorizationRules });
  if (list === undefined) return undefined;
  const out: AuthorizationRule[] = [];
  let ok = true;
  list.forEach((raw, i) => {
    const rule = ruleOf(r, raw, join('spec.rules', i));
    if (rule === undefined) ok = false;
    else out.push(rule);
  });
  return ok ? out : undefined;
}

function ruleOf(r: FieldReader, raw: unknown, path: string): AuthorizationRule | undefined {
  const o = r.object(raw, path, ['action', 'from', 'to']);
  if (o === undefined) return undefined;
  const action = o['action'] === undefined
    ? r.fail(join(path, 'action'), `is required: one of ${AUTHORIZATION_ACTIONS.join(', ')}`)
    : r.oneOf(o['action'], join(path, 'action'), AUTHORIZATION_ACTIONS);
  const from = o['from'] === undefined
    ? r.fail(join(path, 'from'), "is required: the callers' SPIFFE IDs, e.g. [spiffe://skein.local/ns/default/sa/frontend], or ['*'] for any authenticated caller")
    : fromOf(r, o['from'], join(path, 'from'));
  const to = o['to'] === undefined ? undefined : targetOf(r, o['to'], join(path, 'to'));
  if (action === undefined || from === undefined || (o['to'] !== undefined && to === undefined)) return undefined;
  return to === undefined ? { action, from } : { action, from, to };
}

function fromOf(r: FieldReader, raw: unknown, path: string): string[] | undefined {
  const list = r.array(raw, path, ITEMS);
  if (list === undefined) return undefined;
  const ids = list.map((v, i) => (v === '*' ? '*' : r.string(v, join(path, i), { pattern: SPIFFE_PATTERN, patternHint: SPIFFE_HINT, maxLength: 2048 })));
  return ids.every((v): v is string => v !== undefined) ? ids : undefined;
}

function targetOf(r: FieldReader, raw: unknown, path: string): AuthorizationTarget | undefined {
  const o = r.object(raw, path, ['paths', 'methods', 'grpc']);
  if (o === undefined) return undefined;
  if (o['paths'] === undefined && o['methods'] === undefined && o['grpc'] === undefined) {
    return r.fail(path, 'must set at least one of paths, methods, grpc (leave `to` out to cover every request)');
  }
  if (o['grpc'] !== undefined && (o['paths'] !== undefined || o['methods'] !== undefined)) {
    return r.fail(join(path, 'grpc'), 'cannot be combined with paths or methods: a gRPC method names the path, and gRPC is always POST');
  }
  const out: AuthorizationTarget = {};
  let ok = true;
  if (o['paths'] !== undefined) {
    const v = strings(r, o['paths'], join(path, 'paths'), { pattern: PATH_PREFIX, patternHint: "must be a path prefix starting with '/', without spaces, '?' or '#'", maxLength: 1024 });
    if (v === undefined) ok = false; else out.paths = v;
  }
  if (o['methods'] !== undefined) {
    const v = strings(r, o['methods'], join(path, 'methods'), { pattern: HTTP_METHOD, patternHint: 'must be an HTTP method in upper case, e.g. GET' });
    if (v === undefined) ok = false; else out.methods = v;
  }
  if (o['grpc'] !== undefined) {
    const v = grpcOf(r, o['grpc'], join(path, 'grpc'));
    if (v === undefined) ok = false; else out.grpc = v;
  }
  return ok ? out : undefined;
}

function strings(r: FieldReader, raw: unknown, path: string, opts: Parameters<FieldReader['string']>[2]): string[] | undefined {
  const list = r.array(raw, path, ITEMS);
  if (list === undefined) return undefined;
  const out = list.map((v, i) => r.string(v, join(path, i), opts));
  return out.every((v): v is string => v !== undefined) ? out : undefined;
}

function grpcOf(r: FieldReader, raw: unknown, path: string): AuthorizationGrpcMethod[] | undefined {
  const list = r.array(raw, path, ITEMS);
  if (list === undefined) return undefined;
  const out: AuthorizationGrpcMethod[] = [];
  let ok = true;
  list.forEach((v, i) => {
    const p = join(path, i);
    const o = r.object(v, p, ['service', 'method']);
    if (o === undefined) { ok = false; return; }
    const service = r.string(o['service'], join(p, 'service'), { pattern: GRPC_SERVICE, patternHint: 'must be a fully qualified gRPC service name, e.g. skein.demo.v1.Greeter', maxLength: 256 });
    const method = o['method'] === undefined ? undefined : r.string(o['method'], join(p, 'method'), { pattern: GRPC_METHOD, patternHint: 'must be a gRPC method name, e.g. SayHello', maxLength: 256 });
    if (service === undefined || (o['method'] !== undefined && method === undefined)) { ok = false; return; }
    out.push(method === undefined ? { service } : { service, method });
  });
  return ok ? out : undefined;
}
