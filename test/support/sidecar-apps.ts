/**
 * Apps and raw clients for black-box sidecar tests: a Greeter that accepts large messages, a
 * gRPC server whose handlers fail with a status and trailers, an HTTP/1.1 echo app, a counting
 * TCP relay, and byte-level HTTP/1.1 / HTTP/2 peers for malformed input.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterBackend } from '../../shared/src/sample-app/greeter';

export const MiB = 1024 * 1024;

/** gRPC channel/server options for 10 MiB messages (grpc-js defaults to 4 MiB received). */
export const LARGE_MESSAGES: grpc.ChannelOptions = { 'grpc.max_receive_message_length': 32 * MiB, 'grpc.max_send_message_length': 32 * MiB };

/** The sample Greeter with 32 MiB message limits. */
export function startLargeGreeter(opts: { backend: string; version: string }): Promise<GreeterBackend> {
  return startGreeter({ ...opts, serverOptions: LARGE_MESSAGES });
}

const raw = (b: Buffer): Buffer => b;
const method = (name: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/skein.test.Status/${name}`, requestStream: false, responseStream,
  requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
});

/**
 * skein.test.Status, raw-bytes messages:
 *   Fail (unary)           NOT_FOUND 'nope' with trailers x-why: because, x-blob-bin: 00 01 fe ff
 *   FailAfter (server stream)  the request echoed 3 times, then the same error
 */
export const STATUS_SERVICE = { Fail: method('Fail', false), FailAfter: method('FailAfter', true) } satisfies grpc.ServiceDefinition;
export const STATUS_BLOB = Buffer.from([0, 1, 0xfe, 0xff]);

export type StatusClient = grpc.Client & {
  Fail(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: Buffer) => void): grpc.ClientUnaryCall;
  FailAfter(req: Buffer, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
};

export function statusClient(target: string, options: grpc.ChannelOptions = {}): StatusClient {
  const Ctor = grpc.makeGenericClientConstructor(STATUS_SERVICE, 'Status');
  return new Ctor(target, grpc.credentials.createInsecure(), options) as unknown as StatusClient;
}

export async function startStatusServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  const failure = (): Partial<grpc.StatusObject> => {
    const md = new grpc.Metadata();
    md.set('x-why', 'because');
    md.set('x-blob-bin', STATUS_BLOB);
    return { code: grpc.status.NOT_FOUND, details: 'nope', metadata: md };
  };
  server.addService(STATUS_SERVICE, {
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(failure()),
    FailAfter: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 0; i < 3; i++) call.write(call.request);
      call.emit('error', failure());
    },
  });
  const port = await bindGrpc(server);
  return { port, close: () => closeGrpc(server) };
}

function bindGrpc(server: grpc.Server): Promise<number> {
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

function closeGrpc(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => { server.forceShutdown(); resolve(); }, 1000);
    server.tryShutdown(() => { clearTimeout(force); resolve(); });
  });
}

/** What the HTTP/1.1 echo app saw, returned as JSON for any path but /echo. */
export interface SeenRequest { method: string; url: string; headers: http.IncomingHttpHeaders; peer: string; bodyBytes: number }

/**
 * An HTTP/1.1 app: POST /echo returns the body as is; any other path returns a SeenRequest as
 * JSON. Every response also carries `x-app: <name>`.
 */
export async function startHttpEcho(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/echo') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-app': name });
        res.end(body);
        return;
      }
      const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, peer: req.socket.remoteAddress ?? '', bodyBytes: body.length };
      res.writeHead(200, { 'content-type': 'application/json', 'x-app': name });
      res.end(JSON.stringify(seen));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** A TCP relay to `target` that counts the connections it accepted. */
export async function countingRelay(target: string): Promise<{ address: string; accepted(): number; close(): Promise<void> }> {
  let accepted = 0;
  const i = target.lastIndexOf(':');
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (down) => {
    accepted++;
    const up = net.connect({ port: Number(target.slice(i + 1)), host: target.slice(0, i), noDelay: true });
    for (const s of [down, up]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { down.destroy(); up.destroy(); }); }
    down.pipe(up).on('close', () => down.destroy());
    up.pipe(down);
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** An HTTP/1.1 request with an explicit Host header (fetch cannot set Host). */
export function h1Request(address: string, opts: { host: string; method?: string; path?: string; headers?: Record<string, string>; body?: Buffer }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: address.slice(0, i), port: Number(address.slice(i + 1)), method: opts.method ?? 'GET', path: opts.path ?? '/', agent: false,
      headers: { host: opts.host, ...(opts.headers ?? {}), ...(opts.body ? { 'content-length': String(opts.body.length) } : {}) },
      timeout: 10_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${address} in 10s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Opens a TCP connection, writes `bytes` (a list: written one by one), and collects what comes
 * back until the peer closes or `idleMs` pass without data. `destroyAfterWrite` resets the
 * connection right after writing instead of reading.
 */
export function rawExchange(address: string, bytes: (Buffer | string)[], opts: { idleMs?: number; destroyAfterWrite?: boolean } = {}): Promise<Buffer> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
    const done = () => { clearTimeout(timer); s.destroy(); resolve(Buffer.concat(chunks)); };
    let timer = setTimeout(done, opts.idleMs ?? 2000);
    s.on('data', (c: Buffer) => { chunks.push(c); clearTimeout(timer); timer = setTimeout(done, opts.idleMs ?? 2000); });
    s.on('close', done);
    s.on('error', done);
    s.on('connect', () => {
      for (const b of bytes) s.write(b);
      if (opts.destroyAfterWrite) setTimeout(() => s.resetAndDestroy(), 50);
    });
  });
}

/** An HTTP/2 frame: 9-byte header + payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h.writeUInt8(type, 3);
  h.writeUInt8(flags, 4);
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Opens an h2c session, sends one request and runs `act` on the stream (reset it, destroy the
 * session, ...). Resolves once the session closed; errors are swallowed (they are the point).
 */
export function h2Abuse(address: string, headers: http2.OutgoingHttpHeaders, act: (s: http2.ClientHttp2Stream, session: http2.ClientHttp2Session) => void, options: http2.ClientSessionOptions = {}): Promise<void> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://${address}`, options);
    const timer = setTimeout(() => session.destroy(), 5000);
    session.on('error', () => undefined);
    session.on('close', () => { clearTimeout(timer); resolve(); });
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch {
      session.destroy();
      return;
    }
    stream.on('error', () => undefined);
    stream.on('close', () => session.close());
    act(stream, session);
  });
}

/** VmRSS of a process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * Sockets on local `port` in CLOSE_WAIT (Linux /proc/net/tcp*): the peer has closed, this side
 * never did. Any that stay are leaked connections.
 */
export function closeWaitSockets(port: number): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[3] === '08' && parseInt(f[1]!.split(':')[1]!, 16) === port) n++;
    }
  }
  return n;
}
