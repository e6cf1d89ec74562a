/**
 * One attempt of a request on one upstream host (Envoy's UpstreamRequest, grpc-js's
 * SubchannelCall): it gets a stream from the host's pool, sends the request head, hands the
 * router a sink for the body, and reports the response (or the failure) through
 * RouterFilterInterface. It knows nothing of retries, timeouts or stats: the router filter
 * decides; Cluster.onAttemptEnd accounts.
 *
 * Three implementations, by the cluster's protocol and the pool's engine: h2-upstream-request.ts
 * (a Node http2 stream from H2Pool), skein-h2-upstream-request.ts (an H2Stream of skein's engine,
 * `--h2-engine skein`) and h1-upstream-request.ts (an undici exchange from H1Pool). Events of an attempt the
 * router has moved on from (`isLive` false) are dropped.
 */
import type { ResponseSink } from './downstream-wire';
import type { MeshError } from '../../../shared/src/errors';
import type { HeaderBag } from '../route/header-ops';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/host';
import type { H1Pool } from '../upstream/pool/h1-pool';
import type { H2Pool } from '../upstream/pool/h2-pool';
import { H1UpstreamRequest } from './h1-upstream-request';
import { H2UpstreamRequest } from './h2-upstream-request';
import { SkeinH2UpstreamRequest } from './skein-h2-upstream-request';
import type { SkeinH2Pool } from '../upstream/pool/skein-h2-client';

/** What the router can do to its live attempt. */
export interface UpstreamRequest {
  /** Sends the request head (the router has made this its live attempt first: the pool may answer at once). */
  start(head: UpstreamHead): void;
  /** The router moved on: close the stream / abort the exchange; later events are dropped. */
  abandon(): void;
  /** Read the response again after the downstream drained. */
  resume(): void;
  /** The whole response arrived (HTTP/2: the stream ended or closed). */
  readonly responseEnded: boolean;
}

/** What an attempt reports to the router filter (Envoy's RouterFilterInterface). */
export interface RouterFilterInterface {
  /** Whether `req` is still the router's current attempt. */
  isLive(req: UpstreamRequest): boolean;
  /** The pool gave no stream (breaker, overflow, connect failure, closed pool). */
  onPoolFailure(err: MeshError | null): void;
  /** The stream exists; the request body (if any) goes to `sink`. */
  onUpstreamStream(sink: BodySink | undefined): void;
  /** The response head: false when the router retries or the downstream is gone (the attempt is then abandoned). */
  onUpstreamHeaders(status: number, headers: HeaderBag, endStream: boolean): boolean;
  /** A response body chunk for the attempt to push (HTTP/1.1); false: pause until resume(). */
  onUpstreamData(chunk: Buffer): boolean;
  onUpstreamTrailers(trailers: HeaderBag): void;
  /** A 1xx head (not 100 or 101) before the final one, as a flat list with :status first: passed on if the downstream can carry it. */
  onUpstreamInformational(headers: string[]): void;
  /** The committed response ended well; `endDownstream`: the attempt did not relay the body end itself. */
  onUpstreamComplete(endDownstream: boolean): void;
  /** The attempt broke: refused (not processed) or reset, with or without request bytes sent. */
  onUpstreamReset(refused: boolean, sentBytes: boolean, code: number, detail: string): void;
  /** Where an HTTP/2 response body is written; watchDrain() once a write returned false (resume() follows its 'drain'). */
  readonly down: { readonly writable: ResponseSink; activity: number; watchDrain(): void };
  onSinkDrain(): void;
}

/**
 * Where the router writes an attempt's request body: a Writable (Node's h2 stream, or the
 * PassThrough undici reads), or the skein engine's attempt itself. write() false: pause the
 * downstream until the attempt calls RouterFilterInterface.onSinkDrain.
 */
export type BodySink = ResponseSink;

/** What an attempt sends: the request line and headers (the router owns the header object). */
export interface UpstreamHead {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly requestHeaders: HeaderBag;
  /** The request has a body (the router writes it to the attempt's sink). */
  readonly body: unknown;
}

/** A new attempt on `host` (its load was already taken by Cluster.onAttemptStart); start() sends it. */
export function newUpstreamRequest(router: RouterFilterInterface, cluster: Cluster, host: Host): UpstreamRequest {
  if (cluster.protocol !== 'h2') return new H1UpstreamRequest(router, cluster.pool(host) as H1Pool);
  const pool = cluster.pool(host) as H2Pool | SkeinH2Pool;
  return pool.engine === 'skein' ? new SkeinH2UpstreamRequest(router, pool as SkeinH2Pool) : new H2UpstreamRequest(router, pool as H2Pool);
}
