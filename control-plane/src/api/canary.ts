import type { RawResource } from '../../../shared/src/config/mesh';
import { FieldReader, NAME_HINT, NAME_PATTERN } from '../../../shared/src/config/reader';
import { ErrorCodes, MeshError, validationError } from '../../../shared/src/errors';
import type { FieldIssue } from '../../../shared/src/errors';

export interface CanaryRequest {
  /** `name`, or `HTTPRoute/name` / `GRPCRoute/name` when both kinds use the name. */
  route: string;
  /** Subset name to weight, in the order to write them. */
  weights: { subset: string; weight: number }[];
  /** Only this rule (by name); default every rule. */
  rule?: string;
}

/** Validates an untrusted canary request body: {route, weights: {v1: 90, v2: 10}, rule?}. */
export function parseCanaryRequest(raw: unknown): CanaryRequest {
  const issues: FieldIssue[] = [];
  const r = new FieldReader(issues, 'canary');
  const o = r.object(raw, '', ['route', 'weights', 'rule']);
  if (o === undefined) throw validationError(issues);
  const route = r.string(o['route'], 'route', { pattern: /^((HTTPRoute|GRPCRoute)\/)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, patternHint: 'must be a route name, optionally as HTTPRoute/NAME or GRPCRoute/NAME' });
  const rule = o['rule'] === undefined ? undefined : r.string(o['rule'], 'rule', { pattern: NAME_PATTERN, patternHint: NAME_HINT });
  const weights: { subset: string; weight: number }[] = [];
  const w = r.object(o['weights'], 'weights', Object.keys((o['weights'] ?? {}) as object));
  if (w !== undefined) {
    if (Object.keys(w).length === 0) r.fail('weights', 'must name at least one subset, e.g. {v1: 90, v2: 10}');
    for (const [subset, value] of Object.entries(w)) {
      if (!NAME_PATTERN.test(subset)) { r.fail(`weights.${subset}`, `subset name ${NAME_HINT}`); continue; }
      const weight = r.int(value, `weights.${subset}`, { min: 0, max: 1_000_000 });
      if (weight !== undefined) weights.push({ subset, weight });
    }
    if (weights.length > 0 && weights.every((x) => x.weight === 0)) r.fail('weights', 'must not all be 0: at least one subset must receive traffic');
  }
  if (issues.length > 0 || route === undefined) throw validationError(issues);
  return rule === undefined ? { route, weights } : { route, weights, rule };
}

/**
 * Which rules a canary shift rewrites: the named rule; else every rule that already splits
 * traffic (more than one backend); else the only rule. Rules that pin one backend, such as a
 * header match that forces v2, are never rewritten by accident.
 */
function canaryRules(target: RawResource, backendCounts: number[], ruleName: (i: number) => string, rule: string | undefined): number[] {
  const key = `${target.kind}/${target.metadata.name}`;
  if (rule !== undefined) {
    const i = backendCounts.findIndex((_, j) => ruleName(j) === rule);
    if (i < 0) throw new MeshError(ErrorCodes.NOT_FOUND, `${key} has no rule named "${rule}" (rules: ${backendCounts.map((_, j) => ruleName(j)).join(', ')})`);
    return [i];
  }
  const splitting = backendCounts.flatMap((n, i) => (n > 1 ? [i] : []));
  if (splitting.length > 0) return splitting;
  if (backendCounts.length === 1) return [0];
  throw new MeshError(ErrorCodes.VALIDATION, `${key} has ${backendCounts.length} rules and none splits traffic yet; name the rule to shift with --rule (rules: ${backendCounts.map((_, j) => ruleName(j)).join(', ')})`, {
    details: [{ resource: 'canary', path: 'rule', message: 'is required when no rule or several single-backend rules exist' }],
  });
}

/**
 * Rewrites a route's backendRefs to the given subset weights. Each affected rule must send to a
 * single service (its subsets are what the weights name). Returns new documents; the store
 * validates the result like any other change (e.g. that every subset exists).
 */
export function applyCanary(docs: readonly RawResource[], req: CanaryRequest): RawResource[] {
  const [kind, name] = req.route.includes('/') ? req.route.split('/') as [string, string] : [undefined, req.route];
  const matches = docs.filter((d) => (d.kind === 'HTTPRoute' || d.kind === 'GRPCRoute') && d.metadata.name === name && (kind === undefined || d.kind === kind));
  if (matches.length === 0) throw new MeshError(ErrorCodes.NOT_FOUND, `route "${req.route}" does not exist`);
  if (matches.length > 1) throw new MeshError(ErrorCodes.VALIDATION, `route: both HTTPRoute/${name} and GRPCRoute/${name} exist; name one as KIND/NAME`, { details: [{ resource: 'canary', path: 'route', message: 'is ambiguous' }] });
  const target = matches[0]!;
  const spec = target.spec as { rules?: { name?: string; backendRefs?: { name?: string; subset?: string; weight?: number; kind?: string }[] }[] };
  const rules = spec.rules ?? [];
  const ruleName = (i: number) => rules[i]?.name ?? `rule-${i}`;
  for (const i of canaryRules(target, rules.map((r) => r.backendRefs?.length ?? 0), ruleName, req.rule)) {
    const rule = rules[i]!;
    const services = new Set((rule.backendRefs ?? []).map((b) => b.name));
    if (services.size !== 1) {
      throw new MeshError(ErrorCodes.VALIDATION, `${target.kind}/${name}: spec.rules[${i}].backendRefs: sends to ${services.size} services; canary weights apply to the subsets of one service`, {
        details: [{ resource: `${target.kind}/${name}`, path: `spec.rules[${i}].backendRefs`, message: 'must reference exactly one service for a canary shift' }],
      });
    }
    const service = [...services][0]!;
    rule.backendRefs = req.weights.map((w) => ({ name: service, subset: w.subset, weight: w.weight }));
  }
  return [...docs];
}
