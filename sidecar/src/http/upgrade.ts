/**
 * HTTP/1.1 Upgrade (WebSocket) tunnels. Ordinary requests, any protocol on either side, go
 * through the http filters and the router filter (router-filter.ts).
 *
 * An Upgrade request is routed like any request and runs the same http filters (an ActiveStream:
 * the fault delay, during which the socket waits on the clock, then the fault abort and the local
 * rate limit, then the route's header mutation), then max_requests, which the tunnel holds until
 * it closes. The upstream's answer feeds the cluster's attempt accounting (Cluster.onAttemptEnd)
 * as an attempt does. Not the hot path: closures are fine here.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { MeshError } from '../../../shared/src/errors';
import type { Cluster } from '../upstream/cluster';
import type { H1Pool } from '../upstream/pool/h1-pool';
import { BreakerOpenError } from '../upstream/resources';
import { ActiveStream } from './active-stream';
import type { ConnectionManager } from './connection-manager';
import type { Selection } from './listener-context';
import { LOCAL_REPLIES, localReplyForError } from './local-reply';
import { UNTRUSTED_IDENTITY_HEADERS } from './proxy-headers';
import { hasDuplicateHost } from './request-validation';
import type { LocalReply } from './local-reply';
import { peerIdentityOf } from '../listener/peer-identity';
import type { PeerIdentity } from '../listener/peer-identity';

/** Maps a pool error to the local reply it should become (local-reply.ts). */
export const replyFor = (err: MeshError): LocalReply => localReplyForError(err);

/** Upgrade (WebSocket): route like any request, run the filters, then splice the two sockets together. */
export function tunnelUpgrade(hcm: ConnectionManager, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  if (hasDuplicateHost(req.rawHeaders)) { hcm.listenerStats.rqMalformed.inc(); refuse(socket, LOCAL_REPLIES.badRequest); return; }
  const authority = req.headers.host ?? '';
  const entry = hcm.match(authority, req.url ?? '/', req.method ?? 'GET', req.headers);
  if ('reply' in entry) { refuse(socket, entry.reply); return; }
  const headers: Record<string, string | string[] | undefined> = {};
  const untrusted = !hcm.opts.policy.trustForwardedFor;
  for (const k in req.headers) {
    if (k === 'connection' || k === 'upgrade' || k === 'expect' || (untrusted && UNTRUSTED_IDENTITY_HEADERS.includes(k))) continue;
    headers[k] = req.headers[k];
  }
  new UpgradeStream(hcm, entry, headers, req, socket, head).start();
}

/** An Upgrade request on its way through the filters to its tunnel. */
class UpgradeStream extends ActiveStream {
  private opened = false;

  constructor(hcm: ConnectionManager, entry: Parameters<ConnectionManager['select']>[1], headers: Record<string, string | string[] | undefined>,
    private readonly req: http.IncomingMessage, private readonly socket: Duplex, private readonly head: Buffer) {
    super(hcm, hcm.snapshot, entry, false, req.method ?? 'GET', req.url ?? '/', req.headers.host ?? '', headers, req.headers);
  }

  get downstreamPeer(): PeerIdentity | undefined { return peerIdentityOf(this.req.socket); }

  /** Upgrade tunnels are not requests: not in the listener's active count. */
  protected override get countsActive(): boolean { return false; }

  protected watchDownstream(): void {
    this.socket.once('close', () => { if (!this.opened) this.onGoneBeforeRouter(); });
  }

  protected pauseBody(): void { /* nothing is read before the tunnel opens */ }

  localReply(reply: LocalReply): void { refuse(this.socket, reply); }

  protected forward(sel: Selection): void {
    if (this.socket.destroyed) { this.finish(0, -1, undefined); return; }
    if (sel.cluster.protocol !== 'h1') { this.finish(0, -1, sel.cluster); refuse(this.socket, { reason: 'upgrade_requires_http1_upstream', http: 503 }); return; }
    this.opened = true;
    openTunnel(this, sel, this.req, this.socket, this.head);
  }
}

function openTunnel(stream: UpgradeStream, sel: Selection, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  const { cluster, host } = sel;
  if (!cluster.onAttemptStart(host)) {
    localReply(stream, cluster, LOCAL_REPLIES.maxRequests);
    return;
  }
  const headers = stream.requestHeaders as Record<string, string | string[] | undefined>;
  const attemptStartedAt = performance.now();
  let ended = false;
  let upgraded = false;
  let gone = false;
  let status = 0;
  /** The end of the attempt (Cluster.onAttemptEnd, as the router's), then of the request. */
  const done = (report: 'response' | 'connect-failure' | 'timeout' | 'reset' | 'none') => {
    if (ended) return;
    ended = true;
    cluster.onAttemptEnd(host, report, status, -1, status, performance.now() - attemptStartedAt, stream.cm.clock.now());
    stream.finish(status, -1, cluster);
  };
  const exchange = (cluster.pool(host) as H1Pool).request({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body: null, upgrade: String(req.headers.upgrade ?? 'websocket') }, {
    // The upstream did not switch protocols: its answer is the one response, a plain one
    // (undici has decoded any chunked framing), so it goes out close-delimited.
    onHead(s, h) { status = s; socket.write(plainResponseHead(s, h)); },
    onData(chunk) { return socket.write(chunk); },
    onEnd() { socket.end(); done('response'); },
    onError(err) {
      if (ended) return; // the answer is complete: nothing more goes to the caller
      if (gone) { done('none'); return; }
      if (status === 0) refuse(socket, replyFor(err)); else socket.destroy();
      status = 0;
      const code = err.code;
      done(err instanceof BreakerOpenError || code === 'SKEIN_ERR_POOL_CLOSED' || code === 'SKEIN_ERR_UPSTREAM_OVERFLOW' ? 'none'
        : code === 'SKEIN_ERR_UPSTREAM_CONNECT_FAILURE' ? 'connect-failure' : code === 'SKEIN_ERR_UPSTREAM_CONNECT_TIMEOUT' ? 'timeout' : 'reset');
    },
    onUpgrade(s, h, upstream) {
      upgraded = true;
      status = s;
      socket.write(rawHead(s, h));
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => { socket.destroy(); done('response'); });
      upstream.pipe(socket);
      socket.pipe(upstream);
    },
  });
  // The caller left before the upstream answered: give the slot back (not the host's fault).
  socket.once('close', () => { if (!upgraded && !ended) { gone = true; exchange.abort(new Error('the downstream went away')); } });
}

/** The proxy's own answer to an Upgrade request that went no further, counted like any local reply. */
function localReply(s: UpgradeStream, cluster: Cluster, reply: LocalReply): void {
  s.cm.countLocalReply(s.stats, reply);
  s.finish(0, -1, cluster);
  s.localReply(reply);
}

function refuse(socket: Duplex, r: { reason: string; http: number }): void {
  if (socket.destroyed || !socket.writable) return;
  socket.end(`HTTP/1.1 ${r.http} ${http.STATUS_CODES[r.http] ?? 'Error'}\r\nx-skein-reason: ${r.reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

/**
 * The head of an upstream's non-101 answer to an Upgrade request: hop-by-hop headers and the
 * framing undici already decoded (transfer-encoding) removed, `connection: close` added (the
 * body is delimited by the close, or by its content-length when the upstream sent one).
 */
function plainResponseHead(status: number, headers: http.IncomingHttpHeaders): string {
  let s = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Status'}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (PLAIN_DROP.has(k)) continue;
    for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined) s += `${k}: ${x}\r\n`;
  }
  return `${s}connection: close\r\n\r\n`;
}

const PLAIN_DROP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

function rawHead(status: number, headers: http.IncomingHttpHeaders): string {
  let s = `HTTP/1.1 ${status} ${status === 101 ? 'Switching Protocols' : 'Status'}\r\n`;
  for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined) s += `${k}: ${x}\r\n`;
  return `${s}\r\n`;
}
