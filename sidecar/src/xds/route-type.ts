/**
 * RouteConfiguration -> RouteTable: the route table validates and compiles (RouteTable.decode
 * collects every problem with its field path); this adapter only plugs it into the RDS kind.
 */
import { ROUTE_KIND } from '../../../shared/src/xds/resource-kind';
import { RouteTable } from '../route/route-table';
import type { HttpFilterTypes } from '../route/filter-config';
import { decodeWith } from './resource-decoder';
import type { PackedResource, ResourceDecoder } from './resource-decoder';

/** The RouteConfiguration decoder for a sidecar running `filters` (pipeline.ts: the registry's). */
export function routeTypeFor(filters: HttpFilterTypes): ResourceDecoder<RouteTable> {
  return {
    kind: ROUTE_KIND,
    decode(any: PackedResource, previous?: (name: string) => RouteTable | undefined) {
      // The table this one replaces lends it its filter state, e.g. rate-limit buckets (see RouteTable.decode).
      return decodeWith<object, RouteTable>(ROUTE_KIND, any, (m, name, issues) => RouteTable.decode(m, filters, 0, previous?.(name), issues));
    },
  };
}
