/**
 * The HTTP filter interface (Envoy's StreamDecoderFilter/StreamEncoderFilter, reduced to what
 * skein's filters need). A listener runs its filters in order on every request, after the route
 * is matched and before the router (filters/registry.ts builds them from the Listener's
 * http_filters; pipeline.ts appends the route's header mutation and the router).
 *
 * A filter is one object per listener configuration, not per request: whatever it keeps per
 * request lives in its per-route config (RouteEntry.perFilter[slot]) or is passed back through
 * the callbacks. On request headers it either lets the request go on ('continue') or keeps it
 * ('stop') after it has
 *   - answered it locally (`sendLocalReply`: the chain ends, nothing goes upstream), or
 *   - asked for a delay (`delay(ms)`: the body waits; then the chain calls `onDelayEnd` on the
 *     same filter, which decides again, e.g. the fault abort after the fault delay).
 * It may mutate the upstream request headers (`requestHeaders`) and, in `onResponseHeaders`,
 * the headers of an upstream response on its way downstream (filters run in reverse order there,
 * as Envoy's encoder filters do). Local replies do not pass through `onResponseHeaders`.
 */
import type { Clock } from '../../../shared/src/clock';
import type { HeaderBag } from '../route/header-ops';
import type { RouteEntry } from '../route/route-table';
import type { LocalReply } from './local-reply';
import type { PeerIdentity } from '../listener/peer-identity';

export type FilterStatus = 'continue' | 'stop';

/** What a filter sees of one request (the connection manager's ActiveStream implements it). */
export interface FilterCallbacks {
  /** The matched route (immutable; a route with a cluster action). */
  readonly route: RouteEntry;
  /** Whether the request is gRPC (content-type application/grpc[+...]). */
  readonly grpc: boolean;
  /** The request's :method and :path (with its query) as received. */
  readonly method: string;
  readonly path: string;
  /**
   * The verified mTLS peer of the downstream connection (its SPIFFE ID), or undefined for a
   * plaintext one: the caller's identity, for authorization (filters/rbac.ts).
   */
  readonly downstreamPeer: PeerIdentity | undefined;
  /** The upstream request headers: the downstream ones minus hop-by-hop, plus x-forwarded-*; mutable. */
  readonly requestHeaders: HeaderBag;
  readonly clock: Clock;
  /** Uniform in [0, 1) (injectable for tests). */
  random(): number;
  /** Answers the request here; the filter then returns 'stop'. */
  sendLocalReply(reply: LocalReply, detail: string): void;
  /** Holds the request `ms` ms, then calls this filter's onDelayEnd; the filter then returns 'stop'. */
  delay(ms: number): void;
}

export interface HttpFilter {
  /** The filter's canonical name (e.g. envoy.filters.http.fault), for logs and docs. */
  readonly name: string;
  onRequestHeaders(cb: FilterCallbacks): FilterStatus;
  /** After a delay this filter asked for: the same choices as onRequestHeaders. */
  onDelayEnd?(cb: FilterCallbacks): FilterStatus;
  /** An upstream response head on its way downstream (not local replies). */
  onResponseHeaders?(route: RouteEntry, headers: HeaderBag): void;
  /**
   * The request ended (response sent, local reply, or reset): `status` is the HTTP status (0: no
   * response). For access logs and tracing; runs for every request that reached the filters.
   */
  onStreamComplete?(cb: FilterCallbacks, status: number): void;
}

/** A listener's filters in order, the router excluded (it is always last). */
export type HttpFilterChain = readonly HttpFilter[];
