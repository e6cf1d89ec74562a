/**
 * A RouteConfiguration and the Listener that serves it must agree on the http filters: a route
 * (or virtual host) that turns on a filter in typed_per_filter_config whose type the listener's
 * http_filters do not list would never run it. The sidecar NACKs such a RouteConfiguration, naming
 * the routes and the filter, instead of ignoring the settings.
 *
 * Only the RouteConfiguration is NACKed. A Listener that stops listing a filter the accepted
 * routes still use is accepted (with a warning): the control plane pushes in make-before-break
 * order (CDS, EDS, LDS, RDS), so removing a filter reaches the sidecar as the Listener first and
 * the routes right after; NACKing the Listener would leave it stuck on the old version. Until the
 * routes follow, the filter is simply not in the chain, so its settings do nothing.
 */
import type { RouteTable } from '../route/route-table';
import type { ListenerConfig } from './listener-type';

/** Problems of `table` served by `listener` (none when they agree). */
export function unlistedHttpFilters(table: RouteTable, listener: ListenerConfig): string[] {
  const out: string[] = [];
  for (const [typeUrl, use] of table.filterUses) {
    if (listener.httpFilters.some((f) => f.typeUrl === typeUrl)) continue;
    out.push(`route configuration ${table.name}: ${use.where.join(', ')} turn${use.where.length === 1 ? 's' : ''} on ${use.name} (typed_per_filter_config), which listener ${listener.name} does not list in its http_filters`);
  }
  return out;
}
