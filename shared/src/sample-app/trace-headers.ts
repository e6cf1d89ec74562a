/**
 * What an app in the mesh must do for traces to span its calls: copy the trace context and the
 * request id from the request it serves to the requests it makes for it (README, "Traces"). The
 * sidecars read and write these headers; they cannot tie an outgoing call to an incoming one.
 */
import * as grpc from '@grpc/grpc-js';

/** The headers an app forwards: W3C trace context and the request id. */
export const TRACE_HEADERS: readonly string[] = Object.freeze(['traceparent', 'tracestate', 'x-request-id']);

/** Metadata for an outgoing call carrying `incoming`'s trace headers (added to `into` when given). */
export function forwardTraceHeaders(incoming: grpc.Metadata, into: grpc.Metadata = new grpc.Metadata()): grpc.Metadata {
  for (const h of TRACE_HEADERS) {
    const v = incoming.get(h);
    if (v.length > 0 && typeof v[0] === 'string') into.set(h, v[0]);
  }
  return into;
}
