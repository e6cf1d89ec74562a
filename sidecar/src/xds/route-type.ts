/**
 * RouteConfiguration -> RouteTable: the router validates and compiles (RouteTable.decode, which
 * collects every issue with its field path); this adapter only plugs it into the RDS kind.
 */
import { ROUTE_KIND } from '../../../shared/src/xds/resource-kind';
import { RouteTable } from '../router/route-table';
import { decodeWith } from './resource-decoder';
import type { PackedResource, ResourceDecoder } from './resource-decoder';

export const routeType: ResourceDecoder<RouteTable> = {
  kind: ROUTE_KIND,
  decode(any: PackedResource, previous?: (name: string) => RouteTable | undefined) {
    // The table this one replaces lends it its rate-limit buckets (see RouteTable.decode).
    return decodeWith<object, RouteTable>(ROUTE_KIND, any, (m, name, issues) => RouteTable.decode(m, issues, 0, previous?.(name)));
  },
};
