/**
 * An attempt over HTTP/1.1: one undici exchange from the host's H1Pool. The request body goes
 * through a PassThrough (undici reads it); the response is pushed chunk by chunk (onData), and
 * paused while the downstream is full.
 */
import { PassThrough } from 'node:stream';
import type * as http from 'node:http';
import * as http2 from 'node:http2';
import type { MeshError } from '../../../shared/src/errors';
import type { HeaderBag } from '../route/header-ops';
import type { H1Exchange, H1Pool, H1ResponseHandler } from '../upstream/pool/h1-pool';
import { isPoolError } from './local-reply';
import type { RouterFilterInterface, UpstreamHead, UpstreamRequest } from './upstream-request';

const { NGHTTP2_CANCEL } = http2.constants;

const kReq = Symbol('skein.upstream.request');
type TaggedBody = PassThrough & { [kReq]?: H1UpstreamRequest };

export class H1UpstreamRequest implements UpstreamRequest, H1ResponseHandler {
  private exchange: H1Exchange | undefined;

  constructor(readonly router: RouterFilterInterface, private readonly pool: H1Pool) {}

  start(head: UpstreamHead): void {
    const router = this.router;
    const out: Record<string, string | string[] | undefined> = {};
    const h = head.requestHeaders;
    for (const k in h) if (k.charCodeAt(0) !== 58 /* ':' */) out[k] = h[k] as string | string[] | undefined;
    out['host'] = head.authority;
    let body: TaggedBody | null = null;
    if (head.body !== undefined) {
      body = new PassThrough() as TaggedBody;
      body[kReq] = this;
      body.on('drain', onSinkDrain);
    }
    if (body !== null) router.onUpstreamStream(body);
    this.exchange = this.pool.request({ method: head.method, path: head.path, headers: out, body }, this);
  }

  private get live(): boolean { return this.router.isLive(this); }

  get responseEnded(): boolean { return false; }

  abandon(): void { this.exchange?.abort(new Error('request ended by the proxy')); }

  resume(): void { this.exchange?.resume(); }

  onHead(status: number, headers: http.IncomingHttpHeaders): void {
    // The body (or its end) follows through onData / onEnd; on false the router abandoned this attempt.
    if (this.live) this.router.onUpstreamHeaders(status, headers as HeaderBag, false);
  }

  onData(chunk: Buffer): boolean { return this.live ? this.router.onUpstreamData(chunk) : true; }

  onEnd(trailers: http.IncomingHttpHeaders): void {
    if (!this.live) return;
    for (const _ in trailers) { this.router.onUpstreamTrailers(trailers as HeaderBag); break; }
    this.router.onUpstreamComplete(true);
  }

  onError(err: MeshError): void {
    if (!this.live) return;
    if (isPoolError(err)) { this.router.onPoolFailure(err); return; }
    // Not yet put on a connection by undici: no request byte went out (reset-before-request).
    this.router.onUpstreamReset(false, this.exchange?.started !== false, NGHTTP2_CANCEL, err.message);
  }
}

function onSinkDrain(this: TaggedBody): void {
  const req = this[kReq]!;
  if (req.router.isLive(req)) req.router.onSinkDrain();
}
