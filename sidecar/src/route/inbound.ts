import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { encodeResource } from '../../../shared/src/xds/pack';
import { RouteTable } from './route-table';

/**
 * The inbound listener's route table: everything to the local app's cluster, no timeout (the
 * caller's sidecar enforces the route's). Built through the same proto decode path as RDS, so
 * the inbound side runs exactly the router code the outbound side does.
 */
export function inboundRouteTable(cluster: string): RouteTable {
  const rc = {
    name: 'skein.inbound',
    virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ name: 'inbound', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0, nanos: 0 } } }] }],
  };
  return RouteTable.build(decodeAny(encodeResource(TYPE_URLS.ROUTE, rc)));
}
