/**
 * Scoped config (Service spec.dependsOn): which service a resource belongs to, so a proxy of a
 * service that declares its dependencies is sent only theirs. Like Istio's Sidecar egress hosts
 * or Consul's upstreams; a service without the field is sent every service, as before.
 */
import type { MeshConfig } from '../../../shared/src/config/mesh';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { OUTBOUND } from './names';

/** A service's declared dependencies, and a key equal for equal sets (for caching what they select). */
export interface Scope {
  readonly services: ReadonlySet<string>;
  readonly key: string;
}

/** The scope of each service that declares spec.dependsOn; services without it are absent (every service). */
export function scopesOf(mesh: MeshConfig): Map<string, Scope> {
  const out = new Map<string, Scope>();
  for (const [name, s] of mesh.services) {
    if (s.spec.dependsOn === undefined) continue;
    const sorted = [...s.spec.dependsOn].sort();
    out.set(name, { services: new Set(sorted), key: sorted.join(',') });
  }
  return out;
}

/**
 * The service resource `name` of `typeUrl` belongs to, or undefined for one every proxy may
 * receive: the outbound and inbound listeners (skein.*), the outbound route table (which a scoped
 * proxy receives cut to its scope instead), secrets. Clusters and endpoints are `<service>` and
 * `<service>/<subset>`, api_listeners `<service>` and `<service>:<port>`, per-service route
 * configurations `<service>` (names.ts).
 */
export function serviceOf(typeUrl: string, name: string): string | undefined {
  if (name.startsWith('skein.') || name === OUTBOUND) return undefined;
  switch (typeUrl) {
    case TYPE_URLS.CLUSTER:
    case TYPE_URLS.ENDPOINT: { const i = name.indexOf('/'); return i < 0 ? name : name.slice(0, i); }
    case TYPE_URLS.LISTENER: { const i = name.indexOf(':'); return i < 0 ? name : name.slice(0, i); }
    case TYPE_URLS.ROUTE: return name;
    default: return undefined;
  }
}

/** Whether a proxy with `scope` (undefined: every service) is sent resource `name` of `typeUrl` by a wildcard. */
export function inScope(scope: Scope | undefined, typeUrl: string, name: string): boolean {
  if (scope === undefined) return true;
  const s = serviceOf(typeUrl, name);
  return s === undefined || scope.services.has(s);
}
