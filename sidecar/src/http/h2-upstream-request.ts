/**
 * An attempt over HTTP/2 (h2c): one stream from the host's H2Pool. Its events go through shared
 * module functions that find the attempt via one symbol on the stream; the pool calls back the
 * attempt's onPoolStream method (no closure per request). Once the router committed the head,
 * the response body goes straight to the downstream with backpressure: a full downstream pauses
 * the stream, and its 'drain' (router filter -> resume()) resumes it; the 'drain' listener is
 * registered only then (Downstream.watchDrain), so a response that never fills it adds none.
 */
import * as http2 from 'node:http2';
import type { MeshError } from '../../../shared/src/errors';
import type { HeaderBag } from '../route/header-ops';
import type { H2Pool, H2StreamReceiver } from '../upstream/pool/h2-pool';
import { kStreamOwner } from '../upstream/pool/h2-client';
import type { H2StreamOwner } from '../upstream/pool/h2-client';
import type { RouterFilterInterface, UpstreamHead, UpstreamRequest } from './upstream-request';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** Tagged with the pool's owner symbol (h2-client.ts), which also delivers the stream's 'close' to onStreamClose. */
type Tagged = http2.ClientHttp2Stream & { [kStreamOwner]?: H2UpstreamRequest };

const END_STREAM: http2.ClientSessionRequestOptions = Object.freeze({ endStream: true });
const OPEN_STREAM: http2.ClientSessionRequestOptions = Object.freeze({ endStream: false });

export class H2UpstreamRequest implements UpstreamRequest, H2StreamReceiver, H2StreamOwner {
  private stream: Tagged | undefined;
  private hasBody = false;

  constructor(readonly router: RouterFilterInterface, private readonly pool: H2Pool) {}

  start(head: UpstreamHead): void {
    this.hasBody = head.body !== undefined;
    const h = head.requestHeaders;
    h[':method'] = head.method;
    h[':path'] = head.path;
    h[':authority'] = head.authority;
    h[':scheme'] = 'http';
    this.pool.request(h as http2.OutgoingHttpHeaders, this.hasBody ? OPEN_STREAM : END_STREAM, this);
  }

  get live(): boolean { return this.router.isLive(this); }

  get responseEnded(): boolean { const s = this.stream; return s !== undefined && (s.readableEnded || s.closed); }

  onPoolStream(err: MeshError | null, stream?: http2.ClientHttp2Stream): void {
    if (!this.live) { stream?.close(NGHTTP2_CANCEL); return; }
    if (err !== null || stream === undefined) { this.router.onPoolFailure(err); return; }
    const up = stream as Tagged;
    up[kStreamOwner] = this;
    this.stream = up;
    up.on('error', ignore);
    up.on('response', onUpResponse);
    up.on('trailers', onUpTrailers);
    if (this.hasBody) { up.on('drain', onSinkDrain); this.router.onUpstreamStream(up); }
  }

  abandon(): void {
    const up = this.stream;
    if (up !== undefined && !up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
  }

  resume(): void {
    const s = this.stream;
    if (s !== undefined && s.isPaused()) s.resume();
  }

  /** The stream closed (the pool's 'close' listener calls this). A stream abandoned for a retry or a timeout was already accounted for. */
  onStreamClose(up: http2.ClientHttp2Stream): void {
    if (!this.live) return;
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    const r = this.router;
    if (code === NGHTTP2_NO_ERROR && this.committed) { r.onUpstreamComplete(false); return; }
    const refused = code === NGHTTP2_REFUSED_STREAM;
    r.onUpstreamReset(refused, true, code,
      refused ? 'the upstream refused the stream' : code === NGHTTP2_NO_ERROR ? 'the upstream closed the stream without a response' : `the upstream reset the stream (code ${code})`);
  }

  /** The router committed this attempt's response head. */
  committed = false;
}

function onUpResponse(this: Tagged, headers: http2.IncomingHttpHeaders, flags: number): void {
  const req = this[kStreamOwner]!;
  if (!req.live) { this.close(NGHTTP2_CANCEL); return; }
  const end = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  if (!req.router.onUpstreamHeaders(Number(headers[':status']), headers as HeaderBag, end)) return;
  req.committed = true;
  if (!end) { this.on('data', onUpData); this.on('end', onUpEnd); }
}

function onUpData(this: Tagged, chunk: Buffer): void {
  const down = this[kStreamOwner]!.router.down;
  down.activity++;
  const w = down.writable;
  if (w.destroyed || w.writableEnded) return;
  if (!w.write(chunk)) { this.pause(); down.watchDrain(); }
}

function onUpEnd(this: Tagged): void {
  const w = this[kStreamOwner]!.router.down.writable;
  if (!w.destroyed && !w.writableEnded) w.end();
}

function onUpTrailers(this: Tagged, trailers: http2.IncomingHttpHeaders): void {
  const req = this[kStreamOwner]!;
  if (req.live) req.router.onUpstreamTrailers(trailers as HeaderBag);
}

function onSinkDrain(this: Tagged): void {
  const req = this[kStreamOwner]!;
  if (req.live) req.router.onSinkDrain();
}

function ignore(): void { /* errors surface through 'close' and rstCode */ }
