import type {
  BackendRef, FaultSettings, GrpcMethodMatch, HeaderMatch, HeaderModifier, LocalRateLimitSettings, PathMatch, RetryOn, RetryPolicy, RouteMatch, RouteRule, RouteSpec,
} from './types';
import { tracingOf } from './validate-telemetry';
import { RETRY_ON } from './types';
import { FieldReader, HEADER_NAME_PATTERN, join, NAME_HINT, NAME_PATTERN } from './reader';
import { CONFIG_LIMITS } from './limits';

/** Defaults documented in docs/config.md. */
export const RETRY_DEFAULTS = { retries: 2, backoffBaseMs: 25, backoffMaxMs: 250 } as const;
const MAX_WEIGHT = 1_000_000;
const GRPC_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export function validateRouteSpec(r: FieldReader, raw: unknown, kind: 'HTTPRoute' | 'GRPCRoute'): RouteSpec | undefined {
  const o = r.object(raw, 'spec', ['parentRefs', 'hostnames', 'rules']);
  if (o === undefined) return undefined;
  const parentRefs = parentRefsOf(r, o['parentRefs']);
  const hostnames = o['hostnames'] === undefined ? [] : hostnamesOf(r, o['hostnames']);
  const rules = rulesOf(r, o['rules'], kind);
  if (parentRefs === undefined || hostnames === undefined || rules === undefined) return undefined;
  return { parentRefs, hostnames, rules };
}

function parentRefsOf(r: FieldReader, raw: unknown): { name: string }[] | undefined {
  if (raw === undefined) return r.fail('spec.parentRefs', 'is required: the services whose traffic this route governs, e.g. [{name: reviews}]');
  const list = r.array(raw, 'spec.parentRefs', { min: 1, max: CONFIG_LIMITS.parentRefs });
  if (list === undefined) return undefined;
  const out: { name: string }[] = [];
  list.forEach((p, i) => {
    const path = join('spec.parentRefs', i);
    const o = r.object(p, path, ['name', 'kind']);
    if (o === undefined) return;
    if (o['kind'] !== undefined) r.oneOf(o['kind'], join(path, 'kind'), ['Service'] as const);
    const name = r.string(o['name'], join(path, 'name'), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    if (name === undefined) return;
    if (out.some((x) => x.name === name)) { r.fail(join(path, 'name'), `duplicate parentRef "${name}"`); return; }
    out.push({ name });
  });
  return out;
}

function hostnamesOf(r: FieldReader, raw: unknown): string[] | undefined {
  const list = r.array(raw, 'spec.hostnames', { max: CONFIG_LIMITS.hostnames });
  if (list === undefined) return undefined;
  const out: string[] = [];
  list.forEach((h, i) => {
    const s = r.string(h, join('spec.hostnames', i), { pattern: /^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?$/, patternHint: 'must be a lower-case host name, optionally with :port or a leading "*."', maxLength: 253 });
    if (s !== undefined) out.push(s);
  });
  return out;
}

function rulesOf(r: FieldReader, raw: unknown, kind: 'HTTPRoute' | 'GRPCRoute'): RouteRule[] | undefined {
  if (raw === undefined) return r.fail('spec.rules', 'is required: list at least one rule');
  const list = r.array(raw, 'spec.rules', { min: 1, max: CONFIG_LIMITS.rules });
  if (list === undefined) return undefined;
  const out: RouteRule[] = [];
  list.forEach((rule, i) => {
    const path = join('spec.rules', i);
    const o = r.object(rule, path, ['name', 'matches', 'backendRefs', 'timeout', 'retry', 'filters', 'tracing']);
    if (o === undefined) return;
    const name = o['name'] === undefined ? `rule-${i}` : r.string(o['name'], join(path, 'name'), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const matches = o['matches'] === undefined ? [{ headers: [] }] : matchesOf(r, o['matches'], join(path, 'matches'), kind);
    const backendRefs = backendRefsOf(r, o['backendRefs'], join(path, 'backendRefs'));
    const timeoutMs = o['timeout'] === undefined ? 0 : r.duration(o['timeout'], join(path, 'timeout'), { maxMs: 24 * 3_600_000 });
    const retry = o['retry'] === undefined ? undefined : retryOf(r, o['retry'], join(path, 'retry'));
    const filters = o['filters'] === undefined ? {} : filtersOf(r, o['filters'], join(path, 'filters'));
    const tracing = o['tracing'] === undefined ? undefined : tracingOf(r, o['tracing'], join(path, 'tracing'));
    if (o['tracing'] !== undefined && tracing === undefined) return;
    if (name === undefined || matches === undefined || backendRefs === undefined || timeoutMs === undefined || filters === undefined) return;
    if (o['retry'] !== undefined && retry === undefined) return;
    out.push({ name, matches, backendRefs, timeoutMs, ...(retry ? { retry } : {}), ...filters, ...(tracing ? { tracing } : {}) });
  });
  return out;
}

function matchesOf(r: FieldReader, raw: unknown, path: string, kind: 'HTTPRoute' | 'GRPCRoute'): RouteMatch[] | undefined {
  const list = r.array(raw, path, { min: 1, max: CONFIG_LIMITS.matches });
  if (list === undefined) return undefined;
  const out: RouteMatch[] = [];
  list.forEach((m, i) => {
    const p = join(path, i);
    const allowed = kind === 'GRPCRoute' ? ['method', 'headers'] : ['path', 'method', 'headers'];
    const o = r.object(m, p, allowed);
    if (o === undefined) return;
    const headers = o['headers'] === undefined ? [] : headerMatchesOf(r, o['headers'], join(p, 'headers'));
    if (headers === undefined) return;
    const match: RouteMatch = { headers };
    if (kind === 'GRPCRoute') {
      if (o['method'] !== undefined) {
        const g = grpcMethodOf(r, o['method'], join(p, 'method'));
        if (g === undefined) return;
        match.grpc = g;
      }
    } else {
      if (o['path'] !== undefined) {
        const pm = pathMatchOf(r, o['path'], join(p, 'path'));
        if (pm === undefined) return;
        match.path = pm;
      }
      if (o['method'] !== undefined) {
        const method = r.oneOf(o['method'], join(p, 'method'), HTTP_METHODS);
        if (method === undefined) return;
        match.method = method;
      }
    }
    out.push(match);
  });
  return out;
}

function pathMatchOf(r: FieldReader, raw: unknown, path: string): PathMatch | undefined {
  const o = r.object(raw, path, ['type', 'value']);
  if (o === undefined) return undefined;
  const type = o['type'] === undefined ? 'PathPrefix' : r.oneOf(o['type'], join(path, 'type'), ['Exact', 'PathPrefix', 'RegularExpression'] as const);
  if (type === undefined) return undefined;
  const value = type === 'RegularExpression'
    ? r.regex(o['value'], join(path, 'value'))
    : r.string(o['value'], join(path, 'value'), { pattern: /^\/[^\s?#]*$/, patternHint: "must start with '/' and contain no spaces, '?' or '#'", maxLength: 1024 });
  return value === undefined ? undefined : { type, value };
}

function headerMatchesOf(r: FieldReader, raw: unknown, path: string): HeaderMatch[] | undefined {
  const list = r.array(raw, path, { max: CONFIG_LIMITS.headers });
  if (list === undefined) return undefined;
  const out: HeaderMatch[] = [];
  list.forEach((h, i) => {
    const p = join(path, i);
    const o = r.object(h, p, ['name', 'type', 'value', 'invert']);
    if (o === undefined) return;
    const name = r.string(o['name'], join(p, 'name'), { pattern: HEADER_NAME_PATTERN, patternHint: 'must be a lower-case HTTP header name', maxLength: 256 });
    const type = o['type'] === undefined ? 'Exact' : r.oneOf(o['type'], join(p, 'type'), ['Exact', 'RegularExpression', 'Present'] as const);
    const invert = o['invert'] === undefined ? false : r.bool(o['invert'], join(p, 'invert'));
    if (name === undefined || type === undefined || invert === undefined) return;
    let value = '';
    if (type === 'Present') {
      if (o['value'] !== undefined) { r.fail(join(p, 'value'), 'must be omitted when type is Present'); return; }
    } else {
      const v = type === 'RegularExpression' ? r.regex(o['value'], join(p, 'value')) : r.string(o['value'], join(p, 'value'), { maxLength: 4096 });
      if (v === undefined) return;
      value = v;
    }
    out.push({ name, type, value, invert });
  });
  return out;
}

function grpcMethodOf(r: FieldReader, raw: unknown, path: string): GrpcMethodMatch | undefined {
  const o = r.object(raw, path, ['type', 'service', 'method']);
  if (o === undefined) return undefined;
  const type = o['type'] === undefined ? 'Exact' : r.oneOf(o['type'], join(path, 'type'), ['Exact', 'RegularExpression'] as const);
  if (type === undefined) return undefined;
  if (o['service'] === undefined && o['method'] === undefined) return r.fail(path, 'must set service, method, or both');
  const read = (k: 'service' | 'method'): string | undefined => {
    if (o[k] === undefined) return '';
    return type === 'RegularExpression' ? r.regex(o[k], join(path, k)) : r.string(o[k], join(path, k), { pattern: GRPC_NAME, patternHint: 'must be a gRPC name such as helloworld.Greeter or SayHello', maxLength: 256 });
  };
  const service = read('service');
  const method = read('method');
  if (service === undefined || method === undefined) return undefined;
  return { type, service, method };
}

function backendRefsOf(r: FieldReader, raw: unknown, path: string): BackendRef[] | undefined {
  if (raw === undefined) return r.fail(path, 'is required: list at least one backend, e.g. [{name: reviews, subset: v1, weight: 100}]');
  const list = r.array(raw, path, { min: 1, max: CONFIG_LIMITS.backendRefs });
  if (list === undefined) return undefined;
  const out: BackendRef[] = [];
  let ok = true;
  list.forEach((b, i) => {
    const p = join(path, i);
    const o = r.object(b, p, ['name', 'subset', 'weight', 'kind']);
    if (o === undefined) { ok = false; return; }
    if (o['kind'] !== undefined) r.oneOf(o['kind'], join(p, 'kind'), ['Service'] as const);
    const name = r.string(o['name'], join(p, 'name'), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const subset = o['subset'] === undefined ? undefined : r.string(o['subset'], join(p, 'subset'), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const weight = o['weight'] === undefined ? 1 : r.int(o['weight'], join(p, 'weight'), { min: 0, max: MAX_WEIGHT });
    if (name === undefined || weight === undefined || (o['subset'] !== undefined && subset === undefined)) { ok = false; return; }
    if (out.some((x) => x.name === name && x.subset === subset)) { r.fail(p, `duplicate backend ${name}${subset ? `/${subset}` : ''}`); ok = false; return; }
    out.push(subset === undefined ? { name, weight } : { name, subset, weight });
  });
  if (ok && out.every((b) => b.weight === 0)) return r.fail(path, 'weights must not all be 0: at least one backend must receive traffic');
  return ok ? out : undefined;
}

function retryOf(r: FieldReader, raw: unknown, path: string): RetryPolicy | undefined {
  const o = r.object(raw, path, ['retries', 'retryOn', 'perTryTimeout', 'retriableStatusCodes', 'backoff']);
  if (o === undefined) return undefined;
  const retries = o['retries'] === undefined ? RETRY_DEFAULTS.retries : r.int(o['retries'], join(path, 'retries'), { min: 0, max: 10 });
  let retryOn: RetryOn[] | undefined;
  if (o['retryOn'] === undefined) {
    retryOn = ['connect-failure', 'refused-stream', 'unavailable'];
  } else {
    const list = r.array(o['retryOn'], join(path, 'retryOn'), { min: 1, max: RETRY_ON.length });
    if (list !== undefined) {
      retryOn = [];
      list.forEach((c, i) => {
        const v = r.oneOf(c, join(join(path, 'retryOn'), i), RETRY_ON);
        if (v !== undefined && retryOn!.includes(v)) r.fail(join(join(path, 'retryOn'), i), `duplicate retryOn value "${v}"`);
        else if (v !== undefined) retryOn!.push(v);
      });
      if (retryOn.length !== list.length) retryOn = undefined;
    }
  }
  const perTryTimeoutMs = o['perTryTimeout'] === undefined ? 0 : r.duration(o['perTryTimeout'], join(path, 'perTryTimeout'), { maxMs: 3_600_000 });
  let codes: number[] | undefined = [];
  if (o['retriableStatusCodes'] !== undefined) {
    const list = r.array(o['retriableStatusCodes'], join(path, 'retriableStatusCodes'), { min: 1, max: CONFIG_LIMITS.statusCodes });
    codes = list?.map((c, i) => r.int(c, join(join(path, 'retriableStatusCodes'), i), { min: 100, max: 599 })).filter((c): c is number => c !== undefined);
    if (list !== undefined && codes?.length !== list.length) codes = undefined;
  }
  if (codes !== undefined && codes.length > 0 && retryOn !== undefined && !retryOn.includes('retriable-status-codes')) {
    retryOn.push('retriable-status-codes');
  }
  let backoff: RetryPolicy['backoff'] | undefined = { baseMs: RETRY_DEFAULTS.backoffBaseMs, maxMs: RETRY_DEFAULTS.backoffMaxMs };
  if (o['backoff'] !== undefined) {
    const b = r.object(o['backoff'], join(path, 'backoff'), ['baseInterval', 'maxInterval']);
    const baseMs = b?.['baseInterval'] === undefined ? RETRY_DEFAULTS.backoffBaseMs : r.duration(b['baseInterval'], join(path, 'backoff.baseInterval'), { minMs: 1, maxMs: 60_000 });
    const maxMs = b?.['maxInterval'] === undefined ? Math.max(RETRY_DEFAULTS.backoffMaxMs, (baseMs ?? 0) * 10) : r.duration(b['maxInterval'], join(path, 'backoff.maxInterval'), { minMs: 1, maxMs: 300_000 });
    backoff = b === undefined || baseMs === undefined || maxMs === undefined ? undefined : { baseMs, maxMs };
    if (backoff !== undefined && backoff.maxMs < backoff.baseMs) backoff = r.fail(join(path, 'backoff.maxInterval'), 'must be >= backoff.baseInterval');
  }
  if (retries === undefined || retryOn === undefined || perTryTimeoutMs === undefined || codes === undefined || backoff === undefined) return undefined;
  return { retries, retryOn, perTryTimeoutMs, retriableStatusCodes: codes, backoff };
}

type RuleFilters = Pick<RouteRule, 'requestHeaders' | 'responseHeaders' | 'fault' | 'localRateLimit'>;
const FILTER_TYPES = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'Fault', 'LocalRateLimit'] as const;
/** Per filter type: the key holding its settings, and the RouteRule field it fills. */
const FILTER_SLOTS = {
  RequestHeaderModifier: { key: 'requestHeaderModifier', target: 'requestHeaders' },
  ResponseHeaderModifier: { key: 'responseHeaderModifier', target: 'responseHeaders' },
  Fault: { key: 'fault', target: 'fault' },
  LocalRateLimit: { key: 'localRateLimit', target: 'localRateLimit' },
} as const satisfies Record<(typeof FILTER_TYPES)[number], { key: string; target: keyof RuleFilters }>;
const FILTER_KEYS = Object.values(FILTER_SLOTS).map((s) => s.key);
/** Defaults documented in docs/config.md. */
export const FAULT_DEFAULTS = { percentage: 100 } as const;
export const LOCAL_RATE_LIMIT_DEFAULTS = { fillIntervalMs: 1000 } as const;

function filtersOf(r: FieldReader, raw: unknown, path: string): RuleFilters | undefined {
  const list = r.array(raw, path, { max: CONFIG_LIMITS.filters });
  if (list === undefined) return undefined;
  const out: RuleFilters = {};
  let ok = true;
  list.forEach((f, i) => {
    const p = join(path, i);
    const o = r.object(f, p, ['type', ...FILTER_KEYS]);
    const type = o === undefined ? undefined : r.oneOf(o['type'], join(p, 'type'), FILTER_TYPES);
    if (o === undefined || type === undefined) { ok = false; return; }
    const { key, target } = FILTER_SLOTS[type];
    if (out[target] !== undefined) { r.fail(join(p, 'type'), `only one ${type} filter is allowed per rule`); ok = false; return; }
    const stray = FILTER_KEYS.filter((k) => k !== key && o[k] !== undefined);
    for (const k of stray) r.fail(join(p, k), `must be omitted when type is ${type} (set ${key})`);
    const value = type === 'Fault' ? faultOf(r, o[key], join(p, key))
      : type === 'LocalRateLimit' ? localRateLimitOf(r, o[key], join(p, key))
        : headerModifierOf(r, o[key], join(p, key));
    if (value === undefined || stray.length > 0) { ok = false; return; }
    Object.assign(out, { [target]: value });
  });
  return ok ? out : undefined;
}

/** {delay?: {fixedDelay, percentage?}, abort?: {httpStatus | grpcStatus, percentage?}}, at least one of them. */
function faultOf(r: FieldReader, raw: unknown, path: string): FaultSettings | undefined {
  if (raw === undefined) return r.fail(path, 'is required for this filter type');
  const o = r.object(raw, path, ['delay', 'abort']);
  if (o === undefined) return undefined;
  if (o['delay'] === undefined && o['abort'] === undefined) return r.fail(path, 'must set delay, abort, or both');
  const out: FaultSettings = {};
  let ok = true;
  if (o['delay'] !== undefined) {
    const p = join(path, 'delay');
    const d = r.object(o['delay'], p, ['fixedDelay', 'percentage']);
    const fixedDelayMs = d === undefined ? undefined
      : d['fixedDelay'] === undefined ? r.fail(join(p, 'fixedDelay'), 'is required, e.g. "100ms"')
        : r.duration(d['fixedDelay'], join(p, 'fixedDelay'), { minMs: 1, maxMs: 3_600_000 });
    const percentage = d === undefined ? undefined : percentageOf(r, d['percentage'], join(p, 'percentage'));
    if (fixedDelayMs === undefined || percentage === undefined) ok = false;
    else out.delay = { fixedDelayMs, percentage };
  }
  if (o['abort'] !== undefined) {
    const p = join(path, 'abort');
    const a = r.object(o['abort'], p, ['httpStatus', 'grpcStatus', 'percentage']);
    const percentage = a === undefined ? undefined : percentageOf(r, a['percentage'], join(p, 'percentage'));
    if (a === undefined || percentage === undefined) ok = false;
    else if (a['httpStatus'] !== undefined && a['grpcStatus'] !== undefined) { r.fail(p, 'set exactly one of httpStatus and grpcStatus, not both'); ok = false; }
    else if (a['httpStatus'] !== undefined) {
      const httpStatus = r.int(a['httpStatus'], join(p, 'httpStatus'), { min: 200, max: 599 });
      if (httpStatus === undefined) ok = false;
      else out.abort = { httpStatus, percentage };
    } else if (a['grpcStatus'] !== undefined) {
      const grpcStatus = r.int(a['grpcStatus'], join(p, 'grpcStatus'), { min: 0, max: 16 });
      if (grpcStatus === undefined) ok = false;
      else out.abort = { grpcStatus, percentage };
    } else { r.fail(p, 'must set httpStatus (200 to 599) or grpcStatus (0 to 16)'); ok = false; }
  }
  return ok ? out : undefined;
}

/** 0 to 100, default 100; carried per million on the wire, so finer steps than 0.0001 are refused. */
function percentageOf(r: FieldReader, raw: unknown, path: string): number | undefined {
  if (raw === undefined) return FAULT_DEFAULTS.percentage;
  const n = r.number(raw, path, { min: 0, max: 100 });
  if (n === undefined) return undefined;
  if (Math.abs(Math.round(n * 10_000) - n * 10_000) > 1e-6) return r.fail(path, 'must be a multiple of 0.0001 (xDS carries it per million)');
  return n;
}

/** {maxTokens, tokensPerFill?: maxTokens, fillInterval?: 1s}. */
function localRateLimitOf(r: FieldReader, raw: unknown, path: string): LocalRateLimitSettings | undefined {
  if (raw === undefined) return r.fail(path, 'is required for this filter type');
  const o = r.object(raw, path, ['maxTokens', 'tokensPerFill', 'fillInterval']);
  if (o === undefined) return undefined;
  const maxTokens = o['maxTokens'] === undefined
    ? r.fail(join(path, 'maxTokens'), 'is required: the bucket size (burst), e.g. 100')
    : r.int(o['maxTokens'], join(path, 'maxTokens'), { min: 1, max: 1_000_000 });
  let tokensPerFill = o['tokensPerFill'] === undefined ? maxTokens : r.int(o['tokensPerFill'], join(path, 'tokensPerFill'), { min: 1, max: 1_000_000 });
  if (o['tokensPerFill'] !== undefined && tokensPerFill !== undefined && maxTokens !== undefined && tokensPerFill > maxTokens) {
    tokensPerFill = r.fail(join(path, 'tokensPerFill'), `must be <= maxTokens (${maxTokens}): the bucket never holds more than maxTokens`);
  }
  // Envoy refuses fill intervals under 50ms ("local rate limit token bucket fill timer must be >= 50ms").
  const fillIntervalMs = o['fillInterval'] === undefined ? LOCAL_RATE_LIMIT_DEFAULTS.fillIntervalMs : r.duration(o['fillInterval'], join(path, 'fillInterval'), { minMs: 50, maxMs: 24 * 3_600_000 });
  if (maxTokens === undefined || tokensPerFill === undefined || fillIntervalMs === undefined) return undefined;
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

function headerModifierOf(r: FieldReader, raw: unknown, path: string): HeaderModifier | undefined {
  if (raw === undefined) return r.fail(path, 'is required for this filter type');
  const o = r.object(raw, path, ['set', 'add', 'remove']);
  if (o === undefined) return undefined;
  const pairs = (k: 'set' | 'add'): { name: string; value: string }[] | undefined => {
    if (o[k] === undefined) return [];
    const list = r.array(o[k], join(path, k), { max: CONFIG_LIMITS.headerModifiers });
    if (list === undefined) return undefined;
    const out: { name: string; value: string }[] = [];
    list.forEach((h, i) => {
      const p = join(join(path, k), i);
      const ho = r.object(h, p, ['name', 'value']);
      const name = ho === undefined ? undefined : r.string(ho['name'], join(p, 'name'), { pattern: /^[a-z0-9!#$%&'*+.^_`|~-]+$/, patternHint: 'must be a lower-case HTTP header name (not a pseudo-header)', maxLength: 256 });
      const value = ho === undefined ? undefined : r.string(ho['value'], join(p, 'value'), { minLength: 0, maxLength: 4096, pattern: /^[^\r\n\0]*$/, patternHint: 'must not contain CR, LF or NUL' });
      if (name !== undefined && value !== undefined) out.push({ name, value });
    });
    return out.length === list.length ? out : undefined;
  };
  const set = pairs('set');
  const add = pairs('add');
  let remove: string[] | undefined = [];
  if (o['remove'] !== undefined) {
    const list = r.array(o['remove'], join(path, 'remove'), { max: CONFIG_LIMITS.headerModifiers });
    remove = list?.map((n, i) => r.string(n, join(join(path, 'remove'), i), { pattern: /^[a-z0-9!#$%&'*+.^_`|~-]+$/, patternHint: 'must be a lower-case HTTP header name', maxLength: 256 })).filter((n): n is string => n !== undefined);
    if (list !== undefined && remove?.length !== list.length) remove = undefined;
  }
  if (set === undefined || add === undefined || remove === undefined) return undefined;
  return { set, add, remove };
}
