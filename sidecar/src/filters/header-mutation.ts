/**
 * The route's header mutations as a filter: request_headers_to_add/remove of the route, virtual
 * host and route configuration (flattened by the route table, route/header-ops.ts applies them)
 * on the upstream request, and response_headers_to_add/remove on the upstream response. Always
 * in the chain, just before the router (Envoy's router applies them at the same point).
 */
import { applyHeaderOps } from '../route/header-ops';
import type { HeaderBag } from '../route/header-ops';
import type { RouteEntry } from '../route/route-table';
import type { FilterCallbacks, FilterStatus, HttpFilter } from '../http/http-filter';

export const ROUTE_HEADER_MUTATION: HttpFilter = Object.freeze({
  name: 'skein.route_header_mutation',
  onRequestHeaders(cb: FilterCallbacks): FilterStatus {
    const r = cb.route;
    if (r.requestHeadersToAdd.length + r.requestHeadersToRemove.length > 0) applyHeaderOps(cb.requestHeaders, r.requestHeadersToAdd, r.requestHeadersToRemove);
    return 'continue';
  },
  onResponseHeaders(route: RouteEntry, headers: HeaderBag): void {
    if (route.responseHeadersToAdd.length + route.responseHeadersToRemove.length > 0) applyHeaderOps(headers, route.responseHeadersToAdd, route.responseHeadersToRemove);
  },
});
