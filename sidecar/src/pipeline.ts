/**
 * The sidecar's request path, stage by stage, and where each stage lives:
 *
 *   listener (port; sniffs h2c vs HTTP/1.1)              listener/sniffing-server.ts
 *    -> connection manager (codec; route match)          http/connection-manager.ts
 *      -> ActiveStream: one per request                  http/active-stream.ts, http/downstream.ts (h2 | h1)
 *        -> HTTP filters, in the Listener's order        filters/ (registry.ts: fault, local rate limit, rbac)
 *        -> the route's header mutation                  filters/header-mutation.ts
 *        -> router filter: retries, timeouts, body       http/router-filter.ts
 *           replay, commit; one upstream request per attempt
 *          -> cluster and load balancer (select, pick)   upstream/cluster.ts, upstream/lb/
 *          -> upstream request (one attempt)             http/upstream-request.ts (h2 | h1)
 *            -> connection pool                          upstream/pool/
 *          <- Cluster.onAttemptEnd: host load, LB latency, stats, breakers, outlier detection
 *   local replies: http/local-reply.ts (the one table, and the one error -> reply mapping)
 *
 * The stages meet the wire only in http/downstream.ts (the downstream request/response) and the
 * upstream requests. This file builds a listener's filter chain from its config; the sidecar
 * (sidecar.ts) swaps the chain in with the routes and clusters (ConnectionManager.snapshot).
 */
import { decodeOrThrow } from '../../shared/src/xds/issues';
import { ROUTE_HEADER_MUTATION } from './filters/header-mutation';
import { HTTP_FILTERS, httpFilterByTypeUrl, registeredHttpFilters } from './filters/registry';
import type { FilterEnv } from './filters/registry';
import { systemClock } from '../../shared/src/clock';
import { silentLogger } from '../../shared/src/log';
import { Stats } from './stats/stats';
import { RateLimitedLog } from './runtime/rate-limited-log';
import { ConnectionManager } from './http/connection-manager';
import type { ConnectionManagerOptions } from './http/connection-manager';
import type { HttpFilterChain } from './http/http-filter';
import type { RouterSnapshot } from './http/listener-context';
import type { RouteTable } from './route/route-table';
import type { Cluster } from './upstream/cluster';
import type { HttpFilterConfig, ListenerConfig } from './xds/listener-type';
import { listenerTypeFor } from './xds/listener-type';
import { routeTypeFor } from './xds/route-type';
import type { ResourceDecoder } from './xds/resource-decoder';
import type { ListenerTracing } from './xds/hcm-tracing';

export type { ConnectionManagerOptions } from './http/connection-manager';

/** The Listener and RouteConfiguration decoders of this sidecar: they know its http filters. */
export const listenerType: ResourceDecoder<ListenerConfig> = listenerTypeFor(HTTP_FILTERS);
export const routeType: ResourceDecoder<RouteTable> = routeTypeFor(HTTP_FILTERS);

/** The codec stage of one listener (the filters and routes arrive with each snapshot). */
export function connectionManager(opts: ConnectionManagerOptions): ConnectionManager {
  return new ConnectionManager(opts);
}

const chains = new WeakMap<readonly HttpFilterConfig[], HttpFilterChain>();

/** Where filters of a chain built without a listener's env (tests) count and log: nowhere anyone looks. */
const DETACHED: FilterEnv = Object.freeze({ stats: new Stats(), statPrefix: 'listener.detached.', log: silentLogger(), warnings: new RateLimitedLog(systemClock) });

/**
 * A listener's filter chain: its http_filters (already validated by the Listener decoder), in
 * order, then the route's header mutation; the router filter follows implicitly. Made once per
 * listener config (a listener's http_filters list is its own, so `env` is the same every time).
 */
export function httpFilterChain(httpFilters: readonly HttpFilterConfig[], env: FilterEnv = DETACHED): HttpFilterChain {
  let chain = chains.get(httpFilters);
  if (chain === undefined) {
    const out = httpFilters.map((f, i) => {
      const r = httpFilterByTypeUrl(f.typeUrl)!;
      const config = decodeOrThrow('Listener', (issues) => r.definition.parseListenerConfig(f.config, `http_filters[${i}].typed_config`, issues));
      const lastOfType = !httpFilters.some((g, j) => j > i && g.typeUrl === f.typeUrl);
      return r.definition.create(config, r.slot, { ...env, lastOfType });
    });
    out.push(ROUTE_HEADER_MUTATION);
    chain = Object.freeze(out);
    chains.set(httpFilters, chain);
  }
  return chain;
}

/** A chain listing every registered filter (each inert on the listener), in registration order: tests without a Listener. */
export function everyHttpFilter(): HttpFilterChain {
  return httpFilterChain(EVERY);
}
const EVERY: readonly HttpFilterConfig[] = Object.freeze(registeredHttpFilters().map((r) => ({ name: r.name, typeUrl: r.typeUrl, disabled: false, config: r.definition.inertListenerConfig })));

/**
 * What a connection manager serves: routes, clusters, and the listener's filters (none listed:
 * only the header mutation), counting and logging through `env`; `tracing`: the listener's
 * sampling (HttpConnectionManager.tracing; undefined: no spans).
 */
export function routerSnapshot(routes: RouteTable | undefined, clusters: ReadonlyMap<string, Cluster>, httpFilters: readonly HttpFilterConfig[] = NONE, env?: FilterEnv, tracing?: ListenerTracing): RouterSnapshot {
  return { routes, clusters, filters: httpFilterChain(httpFilters, env), tracing };
}
const NONE: readonly HttpFilterConfig[] = Object.freeze([]);

