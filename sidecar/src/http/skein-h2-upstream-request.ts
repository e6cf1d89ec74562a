/**
 * An attempt over HTTP/2 on skein's own engine (`--h2-engine skein`): one H2Stream from the
 * host's pool of H2Connections (skein-h2-client.ts). The attempt is the stream's owner
 * (`s.user`): the connection calls its onH2* methods, so a request costs no listener, no
 * closure and no Duplex; it is also the request body's sink (BodySink), so the router writes
 * the body straight onto the stream's queue.
 *
 * Flow control end to end:
 * - request body: write() false (the stream's queue is past its high-water mark) pauses the
 *   downstream; the stream's onWritable resumes it (RouterFilterInterface.onSinkDrain);
 * - response body: each DATA view goes to the downstream; the upstream's window opens again
 *   (consumed) at once when the downstream took it, else once the downstream drains (resume),
 *   so what this attempt holds is bounded by the stream window, whatever the upstream sends.
 *
 * Failures: the stream's close code maps as with the Node engine: REFUSED_STREAM or a stream
 * above a GOAWAY's last-stream-id is refused (retryable, nothing processed); any other code
 * without a complete response is a reset with request bytes sent.
 */
import type { MeshError } from '../../../shared/src/errors';
import { H2_ERROR } from '../h2/errors';
import type { H2Stream } from '../h2/stream';
import type { H2StreamReceiver } from '../upstream/pool/h2-pool';
import type { H2StreamUser, SkeinH2Pool } from '../upstream/pool/skein-h2-client';
import type { BodySink, RouterFilterInterface, UpstreamHead, UpstreamRequest } from './upstream-request';
import { headerBag, headerList } from './header-list';

export class SkeinH2UpstreamRequest implements UpstreamRequest, H2StreamReceiver<H2Stream>, H2StreamUser, BodySink {
  private stream: H2Stream | undefined;
  private hasBody = false;
  /** The router committed this attempt's response head. */
  private committed = false;
  /** Response bytes the downstream took while full: consumed() once it drains. */
  private owed = 0;
  /** The whole committed response arrived (END_STREAM on its head, DATA or trailers). */
  private responseDone = false;
  /** The request body's end was queued (BodySink). */
  writableEnded = false;

  constructor(readonly router: RouterFilterInterface, private readonly pool: SkeinH2Pool) {}

  start(head: UpstreamHead): void {
    this.hasBody = head.body !== undefined;
    this.pool.request(requestHead(head), !this.hasBody, this);
  }

  private get live(): boolean { return this.router.isLive(this); }

  get responseEnded(): boolean { const s = this.stream; return s !== undefined && (this.responseDone || s.closed); }

  onPoolStream(err: MeshError | null, s?: H2Stream): void {
    if (!this.live) { if (s !== undefined) s.conn.reset(s, H2_ERROR.CANCEL); return; }
    if (err !== null || s === undefined) { this.router.onPoolFailure(err); return; }
    s.user = this;
    this.stream = s;
    if (this.hasBody) this.router.onUpstreamStream(this);
  }

  abandon(): void {
    const s = this.stream;
    if (s !== undefined && !s.closed) s.conn.reset(s, H2_ERROR.CANCEL);
  }

  resume(): void {
    const s = this.stream;
    if (s === undefined || this.owed === 0) return;
    const n = this.owed;
    this.owed = 0;
    s.conn.consumed(s, n);
  }

  // --- BodySink: the request body from the router -----------------------------------------------

  get destroyed(): boolean { const s = this.stream; return s === undefined || s.closed; }

  write(chunk: Buffer): boolean {
    const s = this.stream!;
    return s.conn.write(s, chunk);
  }

  end(): void {
    const s = this.stream;
    if (s === undefined || this.writableEnded) return;
    this.writableEnded = true;
    s.conn.end(s);
  }

  // --- H2StreamUser: the response ---------------------------------------------------------------

  onH2Headers(s: H2Stream, headers: string[], endStream: boolean): void {
    if (!this.live) { s.conn.reset(s, H2_ERROR.CANCEL); return; }
    const bag = headerBag(headers);
    if (!this.router.onUpstreamHeaders(bag[':status'] as number, bag, endStream)) return;
    this.committed = true;
    if (endStream) this.responseEnd(s);
  }

  /** A 1xx before the response: passed on, but 100 (the listener answered Expect: 100-continue itself). */
  onH2Informational(_s: H2Stream, headers: string[]): void {
    if (!this.live || headers[1] === '100') return;
    this.router.onUpstreamInformational(headers);
  }

  onH2Data(s: H2Stream, data: Buffer, endStream: boolean): void {
    const n = data.length;
    if (!this.committed || !this.live) { s.conn.consumed(s, n); return; }
    const down = this.router.down;
    down.activity++;
    const w = down.writable;
    if (w.destroyed || w.writableEnded) s.conn.consumed(s, n);
    else {
      if (n > 0) {
        if (w.write(data)) s.conn.consumed(s, n);
        else { this.owed += n; down.watchDrain(); }
      }
      if (endStream) w.end();
    }
    if (endStream) this.responseEnd(s);
  }

  onH2Trailers(s: H2Stream, trailers: string[]): void {
    if (!this.committed || !this.live) return;
    this.router.onUpstreamTrailers(headerBag(trailers));
    const w = this.router.down.writable;
    if (!w.destroyed && !w.writableEnded) w.end();
    this.responseEnd(s);
  }

  /**
   * The whole response is here. If the request is not (the upstream answered before the body
   * ended, as a gRPC server that fails a call early), the stream would stay half-closed until
   * the body ends, and a caller that leaves would hold it: as Envoy, reset it (CANCEL); the
   * close then completes the attempt (onH2Close).
   */
  private responseEnd(s: H2Stream): void {
    this.responseDone = true;
    if (!s.closed && !s.endQueued && !s.localEnded) s.conn.reset(s, H2_ERROR.CANCEL);
  }

  onH2Writable(): void { if (this.live) this.router.onSinkDrain(); }

  onH2Close(_s: H2Stream, code: number, retryable: boolean): void {
    // An attempt abandoned for a retry or a timeout was already accounted for.
    if (!this.live) return;
    const r = this.router;
    if (this.committed && (code === H2_ERROR.NO_ERROR || this.responseDone)) { r.onUpstreamComplete(false); return; }
    r.onUpstreamReset(retryable, true, code,
      retryable ? 'the upstream refused the stream' : code === H2_ERROR.NO_ERROR ? 'the upstream closed the stream without a response' : `the upstream reset the stream (code ${code})`);
  }
}

/** The request head as the engine's flat list: pseudo-headers first, then the router's headers (hop-by-hop already removed). */
function requestHead(head: UpstreamHead): string[] {
  return headerList([':method', head.method, ':scheme', 'http', ':authority', head.authority, ':path', head.path], head.requestHeaders);
}
