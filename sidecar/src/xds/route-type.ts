/**
 * RouteConfiguration -> RouteTable: the router validates and compiles (RouteTable.build throws a
 * MeshError `<field path>: <problem>`); this adapter only frames it as a ResourceType.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { RouteTable } from '../route/route-table';
import type { HttpFilterTypes } from '../route/filter-config';
import { decodeWith } from './resource-type';
import type { PackedResource, ResourceType } from './resource-type';

/** The RouteConfiguration type for a sidecar running `filters` (pipeline.ts: the registry's). */
export function routeTypeFor(filters: HttpFilterTypes): ResourceType<RouteTable> {
  return {
  typeUrl: TYPE_URLS.ROUTE,
  decode(any: PackedResource, previous?: (name: string) => RouteTable | undefined) {
    return decodeWith<{ name?: string }, RouteTable>(TYPE_URLS.ROUTE, any, (m) => m.name, 'name', (m, issues) => {
      try {
        // The table this one replaces lends it its filter state, e.g. rate-limit buckets (see RouteTable.build).
        return RouteTable.build(m, filters, 0, typeof m.name === 'string' ? previous?.(m.name) : undefined);
      } catch (e) {
        issues.add('', (e as Error).message);
        return undefined;
      }
    });
  },
};
}
