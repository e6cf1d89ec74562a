import type * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { MeshError } from '../../../shared/src/errors';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/host';
import type { RouteEntry } from '../router/route-table';
import type { H1Exchange, H1Pool, H1ResponseHandler } from '../upstream/pool/h1-pool';
import type { H2Pool } from '../upstream/pool/h2-pool';
import type { ConnectionManager } from './connection-manager';
import { applyResponseHeaderOps } from './connection-manager';
import { LOCAL_REPLIES, replyH1, replyH2 } from './local-reply';
import type { LocalReply } from './local-reply';
import { downstreamHeaders } from './proxy-headers';

export type Downstream = { kind: 'h2'; stream: http2.ServerHttp2Stream } | { kind: 'h1'; req: http.IncomingMessage; res: http.ServerResponse };

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/** Maps a pool error to the local reply it should become. */
export function replyFor(err: MeshError | { code?: string }): LocalReply {
  switch (err.code) {
    case 'SKEIN_ERR_UPSTREAM_OVERFLOW': return LOCAL_REPLIES.upstreamOverflow;
    case 'SKEIN_ERR_UPSTREAM_CONNECT_FAILURE':
    case 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT':
    case 'SKEIN_ERR_POOL_CLOSED': return LOCAL_REPLIES.upstreamConnectFailure;
    default: return LOCAL_REPLIES.upstreamReset;
  }
}

function hasBody(down: Downstream): boolean {
  if (down.kind === 'h2') return !down.stream.endAfterHeaders;
  const h = down.req.headers;
  return (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined;
}

/**
 * Forwards to an HTTP/1.1 upstream (any downstream), or from an HTTP/1.1 downstream to an
 * HTTP/2 upstream. The HTTP/2-to-HTTP/2 path, the hot one for gRPC, is in connection-manager.ts.
 */
export function forwardH1(hcm: ConnectionManager, cluster: Cluster, host: Host, entry: RouteEntry, down: Downstream, method: string, path: string, authority: string, headers: http.OutgoingHttpHeaders, grpc: boolean): void {
  if (cluster.protocol === 'h2') { h1ToH2(hcm, cluster, host, entry, down as Extract<Downstream, { kind: 'h1' }>, method, path, authority, headers, grpc); return; }
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in headers) if (k.charCodeAt(0) !== 58 /* ':' */) out[k] = headers[k] as string | string[] | undefined;
  out['host'] = authority;
  const f = new H1Forward(hcm, host, cluster, entry, down, grpc);
  const body = hasBody(down) ? (down.kind === 'h2' ? down.stream : down.req) : null;
  f.exchange = (cluster.pool(host) as H1Pool).request({ method, path, headers: out, body }, f);
  const downStream = down.kind === 'h2' ? down.stream : down.res;
  downStream.on('close', () => { if (!f.done) f.exchange?.abort(new Error('the downstream went away')); });
  downStream.on('drain', () => f.exchange?.resume());
  const timeout = entry.route!.timeoutMs;
  if (timeout > 0) f.timer = hcm.opts.clock.setTimer(timeout, () => f.onTimeout(timeout));
}

class H1Forward implements H1ResponseHandler {
  exchange: H1Exchange | undefined;
  done = false;
  responded = false;
  timer: { cancel(): void } | undefined;
  private status = 0;
  private readonly startedAt: number;

  constructor(private readonly hcm: ConnectionManager, private readonly host: Host, private readonly cluster: Cluster, private readonly entry: RouteEntry, private readonly down: Downstream, private readonly grpc: boolean) {
    this.startedAt = performance.now();
  }

  onHead(status: number, headers: http.IncomingHttpHeaders): void {
    this.responded = true;
    this.status = this.grpc && status === 200 && headers['grpc-status'] !== undefined && headers['grpc-status'] !== '0' ? 500 : status;
    const out = downstreamHeaders(headers);
    applyResponseHeaderOps(out, this.entry);
    if (this.down.kind === 'h1') this.down.res.writeHead(status, out as http.OutgoingHttpHeaders);
    else if (!this.down.stream.destroyed) { delete out['content-length']; this.down.stream.respond({ ...out, ':status': status }); }
  }

  onData(chunk: Buffer): boolean {
    if (this.down.kind === 'h1') return this.down.res.write(chunk);
    return this.down.stream.destroyed ? true : this.down.stream.write(chunk);
  }

  onEnd(trailers: http.IncomingHttpHeaders): void {
    if (this.down.kind === 'h1') {
      if (Object.keys(trailers).length > 0) this.down.res.addTrailers(trailers as http.OutgoingHttpHeaders);
      this.down.res.end();
    } else if (!this.down.stream.destroyed) this.down.stream.end();
    if (this.grpc && trailers['grpc-status'] !== undefined) this.status = trailers['grpc-status'] === '0' ? 200 : 500;
    this.finish();
  }

  onError(err: MeshError): void {
    if (this.done) return;
    if (!this.responded) {
      if (this.down.kind === 'h1') replyH1(this.down.res, this.grpc, replyFor(err), err.message);
      else replyH2(this.down.stream, this.grpc, replyFor(err), err.message);
      this.hcm.localReplyFor(this.entry, replyFor(err), err.message);
    } else if (this.down.kind === 'h1') this.down.res.destroy();
    else if (!this.down.stream.destroyed) this.down.stream.close(NGHTTP2_CANCEL);
    this.status = 0;
    this.finish();
  }

  onTimeout(ms: number): void {
    if (this.done) return;
    this.exchange?.abort(new Error('route timeout'));
    if (!this.responded) {
      if (this.down.kind === 'h1') replyH1(this.down.res, this.grpc, LOCAL_REPLIES.upstreamTimeout, `no response within ${ms}ms`);
      else replyH2(this.down.stream, this.grpc, LOCAL_REPLIES.upstreamTimeout, `no response within ${ms}ms`);
      this.hcm.localReplyFor(this.entry, LOCAL_REPLIES.upstreamTimeout, `no response within ${ms}ms`);
    }
    this.status = 0;
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.timer?.cancel();
    this.hcm.finished(this.host, this.cluster, this.entry, this.startedAt, this.status);
  }
}

/** HTTP/1.1 downstream to an HTTP/2 upstream (e.g. curl to a gRPC-protocol service's JSON gateway). */
function h1ToH2(hcm: ConnectionManager, cluster: Cluster, host: Host, entry: RouteEntry, down: Extract<Downstream, { kind: 'h1' }>, method: string, path: string, authority: string, headers: http.OutgoingHttpHeaders, grpc: boolean): void {
  const h: http2.OutgoingHttpHeaders = { ...headers, ':method': method, ':path': path, ':authority': authority, ':scheme': 'http' };
  const startedAt = performance.now();
  let finished = false;
  let status = 0;
  const finish = (s: number) => { if (!finished) { finished = true; hcm.finished(host, cluster, entry, startedAt, s); } };
  const body = hasBody(down);
  (cluster.pool(host) as H2Pool).request(h, { endStream: !body }, (err, up) => {
    if (err !== null || up === undefined) { replyH1(down.res, grpc, replyFor(err ?? {}), err?.message ?? 'no stream'); finish(0); return; }
    up.on('error', () => undefined);
    if (body) down.req.pipe(up);
    down.res.on('close', () => { if (!up.closed) up.close(NGHTTP2_CANCEL); });
    up.on('response', (rh) => {
      status = Number(rh[':status']);
      const out = downstreamHeaders(rh);
      for (const k of Object.keys(out)) if (k.startsWith(':')) delete out[k];
      applyResponseHeaderOps(out, entry);
      down.res.writeHead(status, out);
      up.pipe(down.res);
    });
    up.on('trailers', (t) => down.res.addTrailers(downstreamHeaders(t) as http.OutgoingHttpHeaders));
    up.on('close', () => {
      const ok = (up.rstCode ?? NGHTTP2_NO_ERROR) === NGHTTP2_NO_ERROR;
      if (!ok && !down.res.headersSent) replyH1(down.res, grpc, LOCAL_REPLIES.upstreamReset, `the upstream reset the stream (code ${up.rstCode})`);
      else if (!ok) down.res.destroy();
      finish(ok ? status : 0);
    });
  });
}

/** Upgrade (WebSocket): route like any request, then splice the two sockets together. */
export function tunnelUpgrade(hcm: ConnectionManager, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const authority = req.headers.host ?? '';
  const sel = hcm.select(authority, req.url ?? '/', req.method ?? 'GET', req.headers);
  const refuse = (status: number, reason: string) => { socket.end(`HTTP/1.1 ${status} ${http2.constants.HTTP_STATUS_SERVICE_UNAVAILABLE === status ? 'Service Unavailable' : 'Error'}\r\nx-skein-reason: ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`); };
  if ('reply' in sel) { refuse(sel.reply.http, sel.reply.reason); return; }
  if (sel.cluster.protocol !== 'h1') { hcm.finished(sel.host, sel.cluster, sel.entry, performance.now(), 0); refuse(503, 'upgrade_requires_http1_upstream'); return; }
  const headers: Record<string, string | string[] | undefined> = {};
  for (const k in req.headers) if (k !== 'connection' && k !== 'upgrade') headers[k] = req.headers[k];
  const startedAt = performance.now();
  const done = (status: number) => hcm.finished(sel.host, sel.cluster, sel.entry, startedAt, status);
  (sel.cluster.pool(sel.host) as H1Pool).request({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body: null, upgrade: String(req.headers.upgrade ?? 'websocket') }, {
    onHead(status, h) { socket.write(rawHead(status, h)); },
    onData(chunk) { return socket.write(chunk); },
    onEnd() { socket.end(); done(200); },
    onError(err) { refuse(replyFor(err).http, replyFor(err).reason); done(0); },
    onUpgrade(status, h, upstream) {
      socket.write(rawHead(status, h));
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => { socket.destroy(); done(101); });
      upstream.pipe(socket);
      socket.pipe(upstream);
    },
  });
}

function rawHead(status: number, headers: http.IncomingHttpHeaders): string {
  let s = `HTTP/1.1 ${status} ${status === 101 ? 'Switching Protocols' : 'Status'}\r\n`;
  for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined) s += `${k}: ${x}\r\n`;
  return `${s}\r\n`;
}
