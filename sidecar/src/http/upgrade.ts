/**
 * HTTP/1.1 Upgrade (WebSocket) tunnels. Ordinary requests, any protocol on either side, go
 * through the router (router.ts).
 */
import type * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { MeshError } from '../../../shared/src/errors';
import type { H1Pool } from '../upstream/pool/h1-pool';
import type { ConnectionManager } from './connection-manager';
import { LOCAL_REPLIES } from './local-reply';
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

/** Upgrade (WebSocket): route like any request, then splice the two sockets together. */
export function tunnelUpgrade(hcm: ConnectionManager, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const authority = req.headers.host ?? '';
  const sel = hcm.select(authority, req.url ?? '/', req.method ?? 'GET', req.headers);
  const refuse = (status: number, reason: string) => { socket.end(`HTTP/1.1 ${status} ${http2.constants.HTTP_STATUS_SERVICE_UNAVAILABLE === status ? 'Service Unavailable' : 'Error'}\r\nx-skein-reason: ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`); };
  if ('reply' in sel) { refuse(sel.reply.http, sel.reply.reason); return; }
  if (sel.cluster.protocol !== 'h1') { hcm.finished(sel.cluster, sel.entry, performance.now(), 0); refuse(503, 'upgrade_requires_http1_upstream'); return; }
  const headers: Record<string, string | string[] | undefined> = {};
  for (const k in req.headers) if (k !== 'connection' && k !== 'upgrade') headers[k] = req.headers[k];
  const startedAt = performance.now();
  const host = sel.host;
  host.activeRequests++;
  host.requestsTotal++;
  let ended = false;
  const done = (status: number) => {
    if (ended) return;
    ended = true;
    host.activeRequests--;
    if (status === 0) host.failuresTotal++;
    hcm.finished(sel.cluster, sel.entry, startedAt, status);
  };
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
