import type { FieldIssue } from '../errors';
import { validationError } from '../errors';
import { ANNOTATION_MAP, FieldReader, LABEL_MAP, NAME_HINT, NAME_PATTERN, LABEL_KEY_PATTERN } from './reader';
import { CONFIG_LIMITS } from './limits';
import type { Slicer } from '../slicer';
import { API_VERSION, KINDS, resourceKey } from './types';
import type { AuthorizationPolicy, BackendPolicy, Kind, Metadata, Resource, Route, Service, Telemetry } from './types';
import { MESH_TELEMETRY_NAME } from './types';
import { validateTelemetrySpec } from './validate-telemetry';
import { validateServiceSpec } from './validate-service';
import { validateRouteSpec } from './validate-route';
import { validateBackendPolicySpec } from './validate-policy';
import { validateAuthorizationPolicySpec } from './validate-authorization';

/** A whole, validated mesh config: what translation consumes. Immutable once built. */
export interface MeshConfig {
  readonly services: ReadonlyMap<string, Service>;
  /** Routes in evaluation order: by name, HTTPRoute and GRPCRoute interleaved. */
  readonly routes: readonly Route[];
  readonly policies: readonly BackendPolicy[];
  /** By name. Several may target one service (their rules combine); the service need not exist. */
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  /** The mesh's Telemetry (`Telemetry/mesh`), when applied: trace sampling. */
  readonly telemetry?: Telemetry;
}

/** A raw resource document as stored: exactly what the user applied (after validation). */
export interface RawResource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: unknown };
  spec: unknown;
}

/** Validates one document on its own (shape, fields, values). References are checked by `buildMesh`. */
export function validateResource(raw: unknown, index: number, issues: FieldIssue[]): Resource | undefined {
  const label = describeDoc(raw, index);
  const before = issues.length;
  const r = new FieldReader(issues, label);
  const o = r.object(raw, '', ['apiVersion', 'kind', 'metadata', 'spec']);
  if (o === undefined) return undefined;
  if (o['apiVersion'] !== API_VERSION) {
    r.fail('apiVersion', `must be "${API_VERSION}", got ${JSON.stringify(o['apiVersion'] ?? null)}`);
  }
  const kind = r.oneOf(o['kind'], 'kind', KINDS);
  const metadata = metadataOf(r, o['metadata']);
  if (o['spec'] === undefined) { r.fail('spec', 'is required'); return undefined; }
  if (kind === undefined || metadata === undefined) return undefined;
  const base = { apiVersion: API_VERSION, metadata } as const;
  let res: Resource | undefined;
  switch (kind) {
    case 'Service': { const spec = validateServiceSpec(r, o['spec']); if (spec) res = { ...base, kind, spec }; break; }
    case 'HTTPRoute':
    case 'GRPCRoute': { const spec = validateRouteSpec(r, o['spec'], kind); if (spec) res = { ...base, kind, spec } as Route; break; }
    case 'BackendPolicy': { const spec = validateBackendPolicySpec(r, o['spec']); if (spec) res = { ...base, kind, spec }; break; }
    case 'AuthorizationPolicy': { const spec = validateAuthorizationPolicySpec(r, o['spec']); if (spec) res = { ...base, kind, spec }; break; }
    case 'Telemetry': {
      if (metadata.name !== MESH_TELEMETRY_NAME) r.fail('metadata.name', `a Telemetry applies to the whole mesh and must be named "${MESH_TELEMETRY_NAME}", got "${metadata.name}"`);
      const spec = validateTelemetrySpec(r, o['spec']); if (spec) res = { ...base, kind, spec }; break;
    }
  }
  return issues.length === before ? res : undefined;
}

function metadataOf(r: FieldReader, raw: unknown): Metadata | undefined {
  if (raw === undefined) return r.fail('metadata', 'is required: {name: ...}');
  const o = r.object(raw, 'metadata', ['name', 'labels', 'annotations']);
  if (o === undefined) return undefined;
  const name = r.string(o['name'], 'metadata.name', { pattern: NAME_PATTERN, patternHint: NAME_HINT });
  const labels = o['labels'] === undefined ? {} : r.stringMap(o['labels'], 'metadata.labels', LABEL_MAP, LABEL_KEY_PATTERN);
  const annotations = o['annotations'] === undefined ? {} : r.stringMap(o['annotations'], 'metadata.annotations', ANNOTATION_MAP);
  if (name === undefined || labels === undefined || annotations === undefined) return undefined;
  return { name, labels, annotations };
}

function describeDoc(raw: unknown, index: number): string {
  if (raw !== null && typeof raw === 'object') {
    const o = raw as { kind?: unknown; metadata?: { name?: unknown } };
    if (typeof o.kind === 'string' && typeof o.metadata?.name === 'string') return `${o.kind}/${o.metadata.name}`;
  }
  return `document[${index}]`;
}

/**
 * Validates a complete set of documents: each one, then uniqueness and every cross reference.
 * Throws MeshError(VALIDATION) listing all problems; never returns a partially valid config.
 */
export function buildMesh(raws: readonly unknown[]): MeshConfig {
  const v = new MeshValidation();
  raws.forEach((raw, i) => v.add(raw, i));
  return v.finish();
}

/**
 * buildMesh for the control plane's event loop: yields between documents (`slicer`), and reuses
 * the validated form of documents it has seen before (`memo`, keyed by the raw document object:
 * stored documents are never mutated, so an unchanged resource is validated once).
 */
export async function buildMeshSliced(raws: readonly unknown[], slicer: Slicer, memo?: WeakMap<object, Resource>): Promise<MeshConfig> {
  const v = new MeshValidation(memo);
  for (let i = 0; i < raws.length; i++) {
    v.add(raws[i], i);
    await slicer.point();
  }
  return v.finish();
}

class MeshValidation {
  private readonly issues: FieldIssue[] = [];
  private readonly resources: Resource[] = [];
  private readonly seen = new Map<string, number>();

  constructor(private readonly memo?: WeakMap<object, Resource>) {}

  add(raw: unknown, i: number): void {
    const cached = this.memo !== undefined && typeof raw === 'object' && raw !== null ? this.memo.get(raw) : undefined;
    const res = cached ?? validateResource(raw, i, this.issues);
    if (res === undefined) return;
    if (cached === undefined && this.memo !== undefined) this.memo.set(raw as object, res);
    const key = resourceKey(res);
    const prev = this.seen.get(key);
    if (prev !== undefined) {
      this.issues.push({ resource: key, path: 'metadata.name', message: `duplicate name: documents ${prev} and ${i} both define ${key}` });
      return;
    }
    this.seen.set(key, i);
    this.resources.push(res);
  }

  finish(): MeshConfig {
    if (this.issues.length > 0) throw validationError(this.issues);
    const mesh = assemble(this.resources);
    checkReferences(mesh, this.issues);
    if (this.issues.length > 0) throw validationError(this.issues);
    return mesh;
  }
}

function assemble(resources: Resource[]): MeshConfig {
  const services = new Map<string, Service>();
  const routes: Route[] = [];
  const policies: BackendPolicy[] = [];
  const authorizationPolicies: AuthorizationPolicy[] = [];
  let telemetry: Telemetry | undefined;
  for (const r of resources) {
    if (r.kind === 'Service') services.set(r.metadata.name, r);
    else if (r.kind === 'BackendPolicy') policies.push(r);
    else if (r.kind === 'AuthorizationPolicy') authorizationPolicies.push(r);
    else if (r.kind === 'Telemetry') telemetry = r;
    else routes.push(r);
  }
  const byName = (a: Resource, b: Resource) => cmp(a.metadata.name, b.metadata.name) || cmp(a.kind, b.kind);
  routes.sort(byName);
  policies.sort(byName);
  authorizationPolicies.sort(byName);
  return { services, routes, policies, authorizationPolicies, ...(telemetry === undefined ? {} : { telemetry }) };
}

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

function checkReferences(mesh: MeshConfig, issues: FieldIssue[]): void {
  const svc = (name: string) => mesh.services.get(name);
  const fail = (r: Resource, path: string, message: string) => issues.push({ resource: resourceKey(r), path, message });
  const missingService = (name: string) => `references Service "${name}", which does not exist${suggest(name, [...mesh.services.keys()])}`;
  for (const s of mesh.services.values()) {
    s.spec.dependsOn?.forEach((name, i) => { if (!svc(name)) fail(s, `spec.dependsOn[${i}]`, missingService(name)); });
  }
  for (const route of mesh.routes) {
    route.spec.parentRefs.forEach((p, i) => { if (!svc(p.name)) fail(route, `spec.parentRefs[${i}].name`, missingService(p.name)); });
    route.spec.rules.forEach((rule, ri) => rule.backendRefs.forEach((b, bi) => {
      const s = svc(b.name);
      const path = `spec.rules[${ri}].backendRefs[${bi}]`;
      if (!s) fail(route, `${path}.name`, missingService(b.name));
      else if (b.subset !== undefined && !s.spec.subsets.some((x) => x.name === b.subset)) {
        fail(route, `${path}.subset`, `Service "${b.name}" has no subset "${b.subset}" (subsets: ${s.spec.subsets.map((x) => x.name).join(', ') || 'none'})`);
      }
      if (s && route.kind === 'GRPCRoute' && s.spec.protocol !== 'grpc') fail(route, `${path}.name`, `GRPCRoute backend Service "${b.name}" has protocol ${s.spec.protocol}, not grpc`);
    }));
  }
  // Each service's virtual host holds an Envoy route per match of every rule attached to it.
  const routeCount = new Map<string, number>();
  for (const route of mesh.routes) {
    const n = route.spec.rules.reduce((sum, rule) => sum + rule.matches.length, 0);
    for (const p of route.spec.parentRefs) routeCount.set(p.name, (routeCount.get(p.name) ?? 0) + n);
  }
  for (const route of mesh.routes) {
    route.spec.parentRefs.forEach((p, i) => {
      const n = routeCount.get(p.name) ?? 0;
      if (n > CONFIG_LIMITS.routesPerService) {
        fail(route, `spec.parentRefs[${i}].name`, `Service "${p.name}" would have ${n} Envoy routes (one per match of every rule of every route attached to it); at most ${CONFIG_LIMITS.routesPerService}`);
      }
    });
  }
  // One RouteConfiguration (the sidecar's outbound table) holds every service's virtual host,
  // and Envoy rejects a domain that appears in two of them.
  const owners = new Map<string, string>([...mesh.services.keys()].map((s) => [s, s]));
  for (const route of mesh.routes) {
    route.spec.hostnames.forEach((h, i) => {
      for (const p of route.spec.parentRefs) {
        const owner = owners.get(h);
        if (owner !== undefined && owner !== p.name) fail(route, `spec.hostnames[${i}]`, `"${h}" already selects Service "${owner}"; a hostname may select one service only`);
        else owners.set(h, p.name);
      }
    });
  }
  const targets = new Map<string, string>();
  for (const p of mesh.policies) {
    const t = p.spec.targetRef;
    const s = svc(t.name);
    if (!s) { fail(p, 'spec.targetRef.name', missingService(t.name)); continue; }
    if (t.subset !== undefined && !s.spec.subsets.some((x) => x.name === t.subset)) {
      fail(p, 'spec.targetRef.subset', `Service "${t.name}" has no subset "${t.subset}"`);
      continue;
    }
    const key = t.subset === undefined ? t.name : `${t.name}/${t.subset}`;
    const other = targets.get(key);
    if (other !== undefined) fail(p, 'spec.targetRef', `BackendPolicy/${other} already targets ${key}; merge them into one policy`);
    else targets.set(key, p.metadata.name);
  }
  checkAuthorizationPolicies(mesh, fail);
}

/**
 * Authorization policies of one service combine their rules, so they must agree on what happens
 * when none matches. A policy for a Service that does not exist is accepted: it may come later.
 */
function checkAuthorizationPolicies(mesh: MeshConfig, fail: (r: Resource, path: string, message: string) => void): void {
  const first = new Map<string, AuthorizationPolicy>();
  for (const p of mesh.authorizationPolicies) {
    const target = p.spec.targetRef.name;
    const other = first.get(target);
    if (other === undefined) { first.set(target, p); continue; }
    if (other.spec.defaultAction !== p.spec.defaultAction) {
      fail(p, 'spec.defaultAction', `is ${p.spec.defaultAction}, but AuthorizationPolicy/${other.metadata.name} (also for Service "${target}") says ${other.spec.defaultAction}; policies of one service combine their rules and must agree on defaultAction`);
    }
  }
}

function suggest(name: string, candidates: string[]): string {
  const close = candidates.find((c) => c !== name && (c.startsWith(name) || name.startsWith(c)));
  return close === undefined ? '' : ` (did you mean "${close}"?)`;
}

/** The kinds in a stable order, for listing. */
export const KIND_ORDER: readonly Kind[] = KINDS;
