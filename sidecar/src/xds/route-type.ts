/**
 * RouteConfiguration -> RouteTable: the router validates and compiles (RouteTable.build throws a
 * MeshError `<field path>: <problem>`); this adapter only frames it as a ResourceType.
 */
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { RouteTable } from '../router/route-table';
import { decodeWith } from './resource-type';
import type { PackedResource, ResourceType } from './resource-type';

export const routeType: ResourceType<RouteTable> = {
  typeUrl: TYPE_URLS.ROUTE,
  decode(any: PackedResource) {
    return decodeWith<{ name?: string }, RouteTable>(TYPE_URLS.ROUTE, any, (m) => m.name, 'name', (m, issues) => {
      try {
        return RouteTable.build(m);
      } catch (e) {
        issues.add('', (e as Error).message);
        return undefined;
      }
    });
  },
};
