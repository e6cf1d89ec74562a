import type { BackendPolicySpec, CircuitBreakerSettings, ConnectionPoolSettings, HealthCheckSettings, LoadBalancerSettings, OutlierDetectionSettings, RetryBudgetSettings } from './types';
import { LB_POLICIES } from './types';
import { FieldReader, HEADER_NAME_PATTERN, join, NAME_HINT, NAME_PATTERN } from './reader';
import { CONFIG_LIMITS } from './limits';

const U32 = 0xffffffff;

export function validateBackendPolicySpec(r: FieldReader, raw: unknown): BackendPolicySpec | undefined {
  const o = r.object(raw, 'spec', ['targetRef', 'loadBalancer', 'circuitBreaker', 'retryBudget', 'outlierDetection', 'healthCheck', 'connectionPool', 'healthyPanicThreshold']);
  if (o === undefined) return undefined;
  const targetRef = targetRefOf(r, o['targetRef']);
  const spec: Partial<BackendPolicySpec> = {};
  const sections: [keyof BackendPolicySpec, (r: FieldReader, v: unknown, p: string) => unknown][] = [
    ['loadBalancer', loadBalancerOf], ['circuitBreaker', circuitBreakerOf], ['retryBudget', retryBudgetOf],
    ['outlierDetection', outlierDetectionOf], ['healthCheck', healthCheckOf], ['connectionPool', connectionPoolOf],
  ];
  let ok = targetRef !== undefined;
  if (o['healthyPanicThreshold'] !== undefined) {
    const t = r.number(o['healthyPanicThreshold'], 'spec.healthyPanicThreshold', { min: 0, max: 100 });
    if (t === undefined) ok = false;
    else spec.healthyPanicThreshold = t;
  }
  for (const [key, read] of sections) {
    if (o[key] === undefined) continue;
    const v = read(r, o[key], `spec.${key}`);
    if (v === undefined) ok = false;
    else (spec as Record<string, unknown>)[key] = v;
  }
  if (!ok || targetRef === undefined) return undefined;
  return { targetRef, ...spec };
}

function targetRefOf(r: FieldReader, raw: unknown): BackendPolicySpec['targetRef'] | undefined {
  if (raw === undefined) return r.fail('spec.targetRef', 'is required: the service (and optionally subset) this policy applies to, e.g. {kind: Service, name: reviews}');
  const o = r.object(raw, 'spec.targetRef', ['kind', 'name', 'subset']);
  if (o === undefined) return undefined;
  const kind = o['kind'] === undefined ? 'Service' : r.oneOf(o['kind'], 'spec.targetRef.kind', ['Service'] as const);
  const name = r.string(o['name'], 'spec.targetRef.name', { pattern: NAME_PATTERN, patternHint: NAME_HINT });
  const subset = o['subset'] === undefined ? undefined : r.string(o['subset'], 'spec.targetRef.subset', { pattern: NAME_PATTERN, patternHint: NAME_HINT });
  if (kind === undefined || name === undefined || (o['subset'] !== undefined && subset === undefined)) return undefined;
  return subset === undefined ? { kind, name } : { kind, name, subset };
}

/** Reads optional fields of one section; returns undefined if any present field is invalid. */
function section<T extends object>(r: FieldReader, raw: unknown, path: string, fields: Record<string, (v: unknown, p: string) => unknown>): T | undefined {
  const o = r.object(raw, path, Object.keys(fields));
  if (o === undefined) return undefined;
  const out: Record<string, unknown> = {};
  let ok = true;
  for (const [k, read] of Object.entries(fields)) {
    if (o[k] === undefined) continue;
    const v = read(o[k], join(path, k));
    if (v === undefined) ok = false;
    else out[k] = v;
  }
  return ok ? (out as T) : undefined;
}

function loadBalancerOf(r: FieldReader, raw: unknown, path: string): LoadBalancerSettings | undefined {
  const lb = section<Partial<LoadBalancerSettings>>(r, raw, path, {
    policy: (v, p) => r.oneOf(v, p, LB_POLICIES),
    choiceCount: (v, p) => r.int(v, p, { min: 2, max: 100 }),
    hashOn: (v, p) => {
      const o = r.object(v, p, ['header', 'cookie']);
      if (o === undefined) return undefined;
      if ((o['header'] === undefined) === (o['cookie'] === undefined)) return r.fail(p, 'must set exactly one of header, cookie');
      if (o['header'] !== undefined) {
        const header = r.string(o['header'], join(p, 'header'), { pattern: HEADER_NAME_PATTERN, patternHint: 'must be a lower-case HTTP header name', maxLength: 256 });
        return header === undefined ? undefined : { header };
      }
      const cookie = r.string(o['cookie'], join(p, 'cookie'), { pattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, patternHint: 'must be a cookie name', maxLength: 256 });
      return cookie === undefined ? undefined : { cookie };
    },
    minRingSize: (v, p) => r.int(v, p, { min: 1, max: 8_388_608 }),
    maxRingSize: (v, p) => r.int(v, p, { min: 1, max: 8_388_608 }),
    decay: (v, p) => r.duration(v, p, { minMs: 100, maxMs: 600_000 }),
  });
  if (lb === undefined) return undefined;
  const decay = (lb as { decay?: number }).decay;
  delete (lb as { decay?: number }).decay;
  if (decay !== undefined) {
    if (lb.policy !== 'peak_ewma') return r.fail(join(path, 'decay'), 'applies only to policy peak_ewma');
    lb.decayMs = decay;
  }
  if (lb.policy === undefined) return r.fail(join(path, 'policy'), `is required: one of ${LB_POLICIES.join(', ')}`);
  if (lb.choiceCount !== undefined && lb.policy !== 'least_request') return r.fail(join(path, 'choiceCount'), 'applies only to policy least_request');
  for (const k of ['hashOn', 'minRingSize', 'maxRingSize'] as const) {
    if (lb[k] !== undefined && lb.policy !== 'ring_hash') return r.fail(join(path, k), 'applies only to policy ring_hash');
  }
  if (lb.policy === 'ring_hash' && lb.hashOn === undefined) return r.fail(join(path, 'hashOn'), 'is required for ring_hash: {header: NAME} or {cookie: NAME}');
  if (lb.minRingSize !== undefined && lb.maxRingSize !== undefined && lb.minRingSize > lb.maxRingSize) return r.fail(join(path, 'maxRingSize'), 'must be >= minRingSize');
  return lb as LoadBalancerSettings;
}

function circuitBreakerOf(r: FieldReader, raw: unknown, path: string): CircuitBreakerSettings | undefined {
  const n = (v: unknown, p: string) => r.int(v, p, { min: 0, max: U32 });
  return section(r, raw, path, { maxConnections: n, maxPendingRequests: n, maxRequests: n, maxRetries: n });
}

function retryBudgetOf(r: FieldReader, raw: unknown, path: string): RetryBudgetSettings | undefined {
  const b = section<Partial<RetryBudgetSettings>>(r, raw, path, {
    budgetPercent: (v, p) => r.number(v, p, { min: 0, max: 100 }),
    minRetryConcurrency: (v, p) => r.int(v, p, { min: 0, max: U32 }),
  });
  return b === undefined ? undefined : { budgetPercent: b.budgetPercent ?? 20, minRetryConcurrency: b.minRetryConcurrency ?? 3 };
}

function outlierDetectionOf(r: FieldReader, raw: unknown, path: string): OutlierDetectionSettings | undefined {
  const count = (v: unknown, p: string) => r.int(v, p, { min: 0, max: U32 });
  const dur = (v: unknown, p: string) => r.duration(v, p, { minMs: 1, maxMs: 24 * 3_600_000 });
  const pct = (v: unknown, p: string) => r.int(v, p, { min: 0, max: 100 });
  const od = section<Record<string, unknown>>(r, raw, path, {
    consecutive5xx: count, consecutiveGatewayFailure: count, consecutiveLocalOriginFailure: count,
    interval: dur, baseEjectionTime: dur, maxEjectionTime: dur, maxEjectionPercent: pct,
    successRate: (v, p) => section(r, v, p, { minimumHosts: count, requestVolume: count, stdevFactor: (x, q) => r.number(x, q, { min: 0.001, max: 1000 }) }),
    failurePercentage: (v, p) => section(r, v, p, { threshold: pct, minimumHosts: count, requestVolume: count }),
    unejectOnHealthCheckSuccess: (v, p) => r.bool(v, p),
  });
  if (od === undefined) return undefined;
  const { interval, baseEjectionTime, maxEjectionTime, ...rest } = od;
  const out: OutlierDetectionSettings = rest as OutlierDetectionSettings;
  if (interval !== undefined) out.intervalMs = interval as number;
  if (baseEjectionTime !== undefined) out.baseEjectionTimeMs = baseEjectionTime as number;
  if (maxEjectionTime !== undefined) out.maxEjectionTimeMs = maxEjectionTime as number;
  if (out.baseEjectionTimeMs !== undefined && out.maxEjectionTimeMs !== undefined && out.maxEjectionTimeMs < out.baseEjectionTimeMs) {
    return r.fail(join(path, 'maxEjectionTime'), 'must be >= baseEjectionTime');
  }
  return out;
}

function healthCheckOf(r: FieldReader, raw: unknown, path: string): HealthCheckSettings | undefined {
  const hc = section<Record<string, unknown>>(r, raw, path, {
    interval: (v, p) => r.duration(v, p, { minMs: 100, maxMs: 3_600_000 }),
    timeout: (v, p) => r.duration(v, p, { minMs: 1, maxMs: 3_600_000 }),
    healthyThreshold: (v, p) => r.int(v, p, { min: 1, max: 100 }),
    unhealthyThreshold: (v, p) => r.int(v, p, { min: 1, max: 100 }),
    http: (v, p) => {
      const o = section<{ path?: string; expectedStatuses?: number[] }>(r, v, p, {
        path: (x, q) => r.string(x, q, { pattern: /^\/[^\s]*$/, patternHint: "must start with '/'", maxLength: 1024 }),
        expectedStatuses: (x, q) => {
          const list = r.array(x, q, { min: 1, max: CONFIG_LIMITS.statusCodes });
          const codes = list?.map((c, i) => r.int(c, join(q, i), { min: 100, max: 599 })).filter((c): c is number => c !== undefined);
          return list !== undefined && codes?.length === list.length ? codes : undefined;
        },
      });
      return o === undefined ? undefined : { path: o.path ?? '/healthz', expectedStatuses: o.expectedStatuses ?? [200] };
    },
    grpc: (v, p) => {
      const o = section<{ service?: string }>(r, v, p, { service: (x, q) => r.string(x, q, { minLength: 0, maxLength: 256 }) });
      return o === undefined ? undefined : { service: o.service ?? '' };
    },
  });
  if (hc === undefined) return undefined;
  if ((hc['http'] === undefined) === (hc['grpc'] === undefined)) return r.fail(path, 'must set exactly one of http, grpc');
  const out: HealthCheckSettings = {
    intervalMs: (hc['interval'] as number | undefined) ?? 10_000,
    timeoutMs: (hc['timeout'] as number | undefined) ?? 1_000,
    healthyThreshold: (hc['healthyThreshold'] as number | undefined) ?? 1,
    unhealthyThreshold: (hc['unhealthyThreshold'] as number | undefined) ?? 3,
  };
  if (hc['http'] !== undefined) out.http = hc['http'] as HealthCheckSettings['http'];
  if (hc['grpc'] !== undefined) out.grpc = hc['grpc'] as HealthCheckSettings['grpc'];
  if (out.timeoutMs > out.intervalMs) return r.fail(join(path, 'timeout'), 'must be <= interval');
  return out;
}

function connectionPoolOf(r: FieldReader, raw: unknown, path: string): ConnectionPoolSettings | undefined {
  const cp = section<Record<string, number>>(r, raw, path, {
    connectTimeout: (v, p) => r.duration(v, p, { minMs: 1, maxMs: 300_000 }),
    idleTimeout: (v, p) => r.duration(v, p, { minMs: 1, maxMs: 24 * 3_600_000 }),
    maxRequestsPerConnection: (v, p) => r.int(v, p, { min: 1, max: U32 }),
    maxConcurrentStreams: (v, p) => r.int(v, p, { min: 1, max: 2_147_483_647 }),
  });
  if (cp === undefined) return undefined;
  const out: ConnectionPoolSettings = {};
  if (cp['connectTimeout'] !== undefined) out.connectTimeoutMs = cp['connectTimeout'];
  if (cp['idleTimeout'] !== undefined) out.idleTimeoutMs = cp['idleTimeout'];
  if (cp['maxRequestsPerConnection'] !== undefined) out.maxRequestsPerConnection = cp['maxRequestsPerConnection'];
  if (cp['maxConcurrentStreams'] !== undefined) out.maxConcurrentStreams = cp['maxConcurrentStreams'];
  return out;
}
