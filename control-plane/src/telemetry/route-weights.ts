/**
 * The share of each route's traffic the current config sends to each cluster (the weighted
 * clusters translate/routes.ts writes), by the RDS names the sidecars report under: route name ->
 * cluster -> percent. A service with no Route attached has one catch-all route to itself (100%).
 */
import type { MeshConfig } from '../../../shared/src/config/mesh';
import { backendClusterName, serviceClusterName } from '../translate/names';
import { attachedRoutes, DEFAULT_ROUTE_NAME, envoyRouteName } from '../translate/routes';
import type { RouteWeights } from './route-stats-store';

export function routeWeights(mesh: MeshConfig): RouteWeights {
  const out = new Map<string, Map<string, number>>();
  const at = (name: string): Map<string, number> => {
    let m = out.get(name);
    if (m === undefined) { m = new Map(); out.set(name, m); }
    return m;
  };
  for (const name of mesh.services.keys()) {
    if (attachedRoutes(mesh, name).length === 0) at(DEFAULT_ROUTE_NAME).set(serviceClusterName(name), 100);
  }
  for (const route of mesh.routes) {
    for (const rule of route.spec.rules) {
      const live = rule.backendRefs.filter((b) => b.weight > 0);
      const sum = live.reduce((a, b) => a + b.weight, 0);
      rule.matches.forEach((_m, mi) => {
        const m = at(envoyRouteName(route, rule, mi));
        for (const b of live) m.set(backendClusterName(b), Math.round((b.weight / sum) * 10000) / 100);
      });
    }
  }
  return out;
}
