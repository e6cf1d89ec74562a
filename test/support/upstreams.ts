/**
 * Real upstream servers on 127.0.0.1 for tests of what talks to upstreams (pools, health checks,
 * the router): an HTTP/2 (h2c) one and an HTTP/1.1 one. Each counts its connections and ends them
 * all on close(); what it answers is the caller's `onRequest`, called once a request arrives (or,
 * with `readBody`, once its whole body has).
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';

const HOST = '127.0.0.1';

export interface UpstreamServer {
  port: number;
  /** Connections ever accepted, and those still open. */
  accepted: number;
  open: number;
  /** The TCP sockets ever accepted, to end one as a dying peer would (no GOAWAY, no response). */
  sockets: net.Socket[];
  /** Ends every connection, then closes the listener. */
  close(): Promise<void>;
}

export interface H2UpstreamServer extends UpstreamServer {
  /** The server-side sessions ever accepted, to destroy one from the server. */
  sessions: http2.ServerHttp2Session[];
}

/** About one request: its number on its connection (1 for the first) and its body (empty unless `readBody`). */
export interface Arrival { onConnection: number; body: Buffer }

export interface UpstreamOptions {
  /** Call onRequest once the request body has ended, with the body. */
  readBody?: boolean;
}

export async function h2Upstream(
  onRequest: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, arrival: Arrival) => void,
  opts: UpstreamOptions & { settings?: http2.Settings } = {},
): Promise<H2UpstreamServer> {
  const server = http2.createServer({ settings: opts.settings ?? {} });
  const up: H2UpstreamServer = {
    port: 0, accepted: 0, open: 0, sockets: [], sessions: [],
    async close() {
      for (const s of up.sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const perSession = new WeakMap<http2.Http2Session, number>();
  server.on('connection', (socket: net.Socket) => up.sockets.push(socket));
  server.on('session', (s) => {
    up.accepted++; up.open++; up.sessions.push(s);
    s.on('close', () => { up.open--; });
    s.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const onConnection = (perSession.get(stream.session!) ?? 0) + 1;
    perSession.set(stream.session!, onConnection);
    if (opts.readBody !== true) {
      onRequest(stream, headers, { onConnection, body: Buffer.alloc(0) });
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => onRequest(stream, headers, { onConnection, body: Buffer.concat(chunks) }));
  });
  up.port = await listen(server);
  return up;
}

export async function h1Upstream(
  onRequest: (req: http.IncomingMessage, res: http.ServerResponse, arrival: Arrival) => void,
  opts: UpstreamOptions & { onUpgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void; keepAliveTimeoutMs?: number } = {},
): Promise<UpstreamServer> {
  const server = http.createServer();
  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  const up: UpstreamServer = {
    port: 0, accepted: 0, open: 0, sockets: [],
    async close() {
      for (const s of up.sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const perSocket = new WeakMap<net.Socket, number>();
  server.on('connection', (s: net.Socket) => {
    up.accepted++; up.open++; up.sockets.push(s);
    s.on('close', () => { up.open--; });
  });
  if (opts.onUpgrade !== undefined) server.on('upgrade', opts.onUpgrade);
  server.on('request', (req, res) => {
    const onConnection = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, onConnection);
    if (opts.readBody !== true) {
      onRequest(req, res, { onConnection, body: Buffer.alloc(0) });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => onRequest(req, res, { onConnection, body: Buffer.concat(chunks) }));
  });
  up.port = await listen(server);
  return up;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return (server.address() as net.AddressInfo).port;
}
