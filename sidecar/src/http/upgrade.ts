/**
 * HTTP/1.1 Upgrade (WebSocket) tunnels. Ordinary requests, any protocol on either side, go
 * through the router (router.ts).
 *
 * An Upgrade request is routed like any request and gets the same route filters and breakers:
 * the fault delay (the socket waits on the clock), then the fault abort and the local rate limit
 * (ConnectionManager.admit), then max_requests, which the tunnel holds until it closes. The
 * upstream's answer feeds outlier detection, host load and the cluster's stats as an attempt
 * does. Not the hot path: closures are fine here.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { MeshError } from '../../../shared/src/errors';
import type { RouteEntry } from '../router/route-table';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/host';
import type { H1Pool } from '../upstream/pool/h1-pool';
import { BreakerOpenError } from '../upstream/resources';
import type { ConnectionManager } from './connection-manager';
import { LOCAL_REPLIES } from './local-reply';
import { UNTRUSTED_IDENTITY_HEADERS } from './proxy-headers';
import { hasDuplicateHost } from './request-validation';
import type { LocalReply } from './local-reply';

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

type Selected = { entry: RouteEntry; cluster: Cluster; host: Host };

/** Upgrade (WebSocket): route like any request, then splice the two sockets together. */
export function tunnelUpgrade(hcm: ConnectionManager, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  if (hasDuplicateHost(req.rawHeaders)) { hcm.listenerStats.rqMalformed.inc(); refuse(socket, LOCAL_REPLIES.badRequest); return; }
  const authority = req.headers.host ?? '';
  const sel = hcm.select(authority, req.url ?? '/', req.method ?? 'GET', req.headers);
  if ('reply' in sel) { refuse(socket, sel.reply); return; }
  const startedAt = performance.now();
  if (sel.cluster.protocol !== 'h1') { hcm.finished(sel.cluster, sel.entry, startedAt, 0); refuse(socket, { reason: 'upgrade_requires_http1_upstream', http: 503 }); return; }
  const delayMs = hcm.drawnFaultDelayMs;
  if (delayMs === 0) { openTunnel(hcm, sel, req, socket, head, startedAt); return; }
  // Envoy's filter order, as for any request: the delay, then the abort and the rate limit.
  const timer = hcm.opts.clock.setTimer(delayMs, () => {
    socket.off('close', onGone);
    if (socket.destroyed) return;
    const refused = hcm.admit(sel.entry);
    if (refused !== undefined) { localReply(hcm, sel, socket, refused, startedAt); return; }
    openTunnel(hcm, sel, req, socket, head, startedAt);
  });
  const onGone = () => { timer.cancel(); hcm.finished(sel.cluster, sel.entry, startedAt, 0); };
  socket.once('close', onGone);
}

function openTunnel(hcm: ConnectionManager, sel: Selected, req: http.IncomingMessage, socket: Duplex, head: Buffer, startedAt: number): void {
  const { entry, cluster, host } = sel;
  if (!cluster.resources.tryStartRequest()) {
    cluster.stats?.rqOverflow.inc();
    localReply(hcm, sel, socket, LOCAL_REPLIES.maxRequests, startedAt);
    return;
  }
  const headers: Record<string, string | string[] | undefined> = {};
  const untrusted = !hcm.opts.policy.trustForwardedFor;
  for (const k in req.headers) {
    if (k === 'connection' || k === 'upgrade' || k === 'expect' || (untrusted && UNTRUSTED_IDENTITY_HEADERS.includes(k))) continue;
    headers[k] = req.headers[k];
  }
  host.activeRequests++;
  host.requestsTotal++;
  if (cluster.stats !== undefined) cluster.stats.rqActive.value++;
  const attemptStartedAt = performance.now();
  let ended = false;
  let upgraded = false;
  let gone = false;
  let status = 0;
  /** The end of the attempt: host load, breaker, outlier detection, stats (as Forward.endAttempt). */
  const done = (report: 'response' | 'connect-failure' | 'timeout' | 'reset' | 'none') => {
    if (ended) return;
    ended = true;
    host.activeRequests--;
    if (cluster.stats !== undefined) cluster.stats.rqActive.value--;
    if (status === 0 || status >= 500) host.failuresTotal++;
    cluster.resources.endRequest();
    const now = hcm.opts.clock.now();
    cluster.stats?.record(status, (performance.now() - attemptStartedAt) * 1000, now);
    const od = cluster.outlier;
    if (od !== undefined && report !== 'none') {
      if (report !== 'response') od.onLocalOrigin(host, report);
      else { od.onLocalOrigin(host, 'success'); od.onResponse(host, status); }
    }
    hcm.finished(cluster, entry, startedAt, status);
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
function localReply(hcm: ConnectionManager, sel: Selected, socket: Duplex, reply: LocalReply, startedAt: number): void {
  hcm.countLocalReply(sel.entry, reply);
  hcm.finished(sel.cluster, sel.entry, startedAt, 0);
  refuse(socket, reply);
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
