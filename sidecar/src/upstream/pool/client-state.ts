/**
 * States of one upstream connection ("client") in a pool, as in Envoy's conn_pool_base:
 *
 *   CONNECTING -> READY <-> BUSY -> DRAINING -> CLOSED
 *        \______________________________________/   (connect failure / timeout / reset)
 *
 * - CONNECTING: TCP (and for h2 the peer's first SETTINGS) not done yet; requests wait in the pool.
 * - READY: takes new streams (h2: active < stream limit).
 * - BUSY: at its stream limit; becomes READY again when a stream closes.
 * - DRAINING: takes no new streams (peer GOAWAY, idle timeout, pool drain); in-flight streams finish.
 * - CLOSED: gone; removed from the pool.
 */
export type ClientState = 'CONNECTING' | 'READY' | 'BUSY' | 'DRAINING' | 'CLOSED';
