/**
 * A fault-injectable upstream for resilience tests: one plaintext port on 127.0.0.1 that speaks
 * h2c (gRPC: skein.demo.v1.Greeter/SayHello and grpc.health.v1.Health/Check) and HTTP/1.1 (any
 * path, plus GET /healthz); the first bytes of a connection decide which.
 *
 * Every control is a plain field, changeable at any time, read when a request has fully arrived:
 *   closeConnection  destroy the connection (TCP FIN) instead of answering
 *   reset            false (default), or an HTTP/2 error code: RST_STREAM with it. HTTP/1.1 has
 *                    no stream to reset: the connection is reset (TCP RST) instead
 *   blackhole        never answer, never close (until close())
 *   hold             keep the request open until release()
 *   delayMs          wait this long (real time) before answering; default 0
 *   failPercent      0..100, default 0. Deterministic: the i-th answered request (0-based) fails
 *                    iff floor((i+1)p/100) > floor(ip/100), so exactly p of any 100 consecutive
 *                    answers fail. The index is taken when the request arrives, held or not.
 *   failWith         what a failure is; default HTTP 503 / gRPC UNAVAILABLE (trailers-only)
 *   healthy          what /healthz (200 or 503) and Health/Check (SERVING or NOT_SERVING) say;
 *                    default true. Health checks ignore every other control and are counted
 *                    only in `healthChecks`, so they never shift the failure sequence.
 *   healthBlackhole  health checks are never answered; default false
 * The checks run in the order listed. Success answers: SayHello -> HelloReply{message: `hello
 * <name>`, backend: name, version, payload echoed}; other gRPC methods -> UNIMPLEMENTED; HTTP ->
 * 200 JSON {upstream, method, url, bodyBytes, attempt}. Every answer carries `x-upstream: name`.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { PROTO_DIR } from '../../shared/src/paths';

export const SAY_HELLO = '/skein.demo.v1.Greeter/SayHello';
export const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
export const HEALTHZ = '/healthz';
/** The request header the client sidecar numbers its upstream attempts with (1, 2, ...). */
export const ATTEMPT_HEADER = 'x-skein-attempt-count';
/** The `byAttempt` key for requests without an attempt header. */
export const NO_ATTEMPT = 'none';

/** An injected failure: the HTTP status, or for gRPC the status in a trailers-only response. */
export interface Failure { http: number; grpc: number; message: string }
export const UNAVAILABLE: Failure = { http: 503, grpc: 14, message: 'injected failure' };

/** One request as it arrived (health checks excluded). `bodyBytes` is -1 until the body ended. */
export interface SeenRequest {
  protocol: 'h2' | 'http/1.1';
  method: string;
  path: string;
  attempt: string | undefined;
  grpcTimeout: string | undefined;
  bodyBytes: number;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

let greeterTypes: { req: protobuf.Type; reply: protobuf.Type } | undefined;
function types(): { req: protobuf.Type; reply: protobuf.Type } {
  if (greeterTypes === undefined) {
    const root = protobuf.loadSync(path.join(PROTO_DIR, 'skein/demo/v1/greeter.proto'));
    greeterTypes = { req: root.lookupType('skein.demo.v1.HelloRequest'), reply: root.lookupType('skein.demo.v1.HelloReply') };
  }
  return greeterTypes;
}

/** A gRPC length-prefixed message (uncompressed). */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The first gRPC message of a body, or an empty one. */
function firstMessage(body: Buffer): Buffer {
  return body.length < 5 ? Buffer.alloc(0) : body.subarray(5, 5 + body.readUInt32BE(1));
}

/** grpc-timeout (`<digits><H|M|S|m|u|n>`) in milliseconds; undefined when absent or malformed. */
export function grpcTimeoutMs(v: string | undefined): number | undefined {
  const m = v === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(v);
  if (m === null) return undefined;
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as 'H'];
  return Number(m[1]) * unit;
}

function header(v: string | string[] | undefined): string | undefined { return Array.isArray(v) ? v[0] : v; }
function bump(m: Map<string, number>, k: string): void { m.set(k, (m.get(k) ?? 0) + 1); }

/** The protocol-specific half of one request: how to answer it, reset it, or drop its connection. */
interface Exchange {
  protocol: 'h2' | 'http/1.1';
  answer(status: number, headers: Record<string, string>, body: Buffer | string, trailers?: Record<string, string>): void;
  reset(code: number): void;
  dropConnection(): void;
  gone(): boolean;
}

export class FaultUpstream extends EventEmitter {
  // Controls (the file comment gives the order they apply in).
  /** Percent of answers that fail, deterministically (see the file comment). Default 0. */
  failPercent = 0;
  /** What a failure is. Default UNAVAILABLE: HTTP 503 / gRPC 14, trailers-only. */
  failWith: Failure = UNAVAILABLE;
  /** Real-time wait before answering, in ms. Default 0. */
  delayMs = 0;
  /** Keep requests open until release(). Default false. */
  hold = false;
  /** RST_STREAM with this HTTP/2 code (HTTP/1.1: TCP reset) instead of answering. Default false. */
  reset: number | false = false;
  /** Destroy the connection instead of answering. Default false. */
  closeConnection = false;
  /** Never answer and never close. Default false. */
  blackhole = false;
  /** /healthz 200 and SERVING when true, 503 and NOT_SERVING when false. Default true. */
  healthy = true;
  /** Never answer health checks. Default false. */
  healthBlackhole = false;

  // Counters (health checks excluded unless named so).
  requests = 0;
  readonly byPath = new Map<string, number>();
  readonly byMethod = new Map<string, number>();
  /** Requests by their x-skein-attempt-count value; NO_ATTEMPT when absent. */
  readonly byAttempt = new Map<string, number>();
  readonly seen: SeenRequest[] = [];
  /** Body lengths of POST requests (gRPC calls included), in arrival order of their ends. */
  readonly postBodies: number[] = [];
  connections = 0;
  openConnections = 0;
  /** Requests that arrived and are not finished yet (answered, reset, or their stream closed). */
  open = 0;
  peakOpen = 0;
  /** Open requests with an attempt count above 1 (retries), and their peak. */
  openRetries = 0;
  peakOpenRetries = 0;
  succeeded = 0;
  failed = 0;
  resets = 0;
  closes = 0;
  blackholed = 0;
  healthChecks = 0;

  private answered = 0;
  private readonly held: (() => void)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<net.Socket>();
  private readonly sessionSockets = new WeakMap<http2.Http2Session, net.Socket>();
  private nextSessionSocket: net.Socket | undefined;
  private readonly server: net.Server;
  private closed = false;
  port = 0;

  private constructor(readonly name: string, readonly version: string) {
    super();
    this.setMaxListeners(0);
    const h1 = http.createServer((req, res) => this.onH1(req, res));
    h1.keepAliveTimeout = 0; // never close an idle keep-alive connection: that would race the pool
    const h2 = http2.createServer();
    h2.on('session', (s) => { if (this.nextSessionSocket) this.sessionSockets.set(s, this.nextSessionSocket); s.on('error', () => undefined); });
    h2.on('stream', (stream, headers) => this.onH2(stream, headers));
    this.server = net.createServer({ noDelay: true }, (socket) => this.onConnection(socket, h1, h2));
  }

  static async start(opts: { name: string; version?: string }): Promise<FaultUpstream> {
    const u = new FaultUpstream(opts.name, opts.version ?? 'v1');
    await new Promise<void>((resolve) => u.server.listen(0, '127.0.0.1', () => resolve()));
    u.port = (u.server.address() as net.AddressInfo).port;
    return u;
  }

  get address(): string { return `127.0.0.1:${this.port}`; }

  /** Requests held now (hold), waiting for release(). */
  get heldCount(): number { return this.held.length; }

  /** Answers every held request (each with the outcome it was given when it arrived). */
  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  /** Resolves once `pred()` holds; checked now and after every counter change. */
  waitFor(pred: (u: this) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (pred(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => { if (pred(this)) { cleanup(); resolve(); } };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`${this.name}: timed out waiting for ${what}: ${JSON.stringify(this.counters())}`)); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.off('change', check); };
      this.on('change', check);
    });
  }

  /** The scalar counters, for messages. */
  counters(): Record<string, number> {
    const { requests, connections, openConnections, open, peakOpen, peakOpenRetries, succeeded, failed, resets, closes, blackholed, healthChecks } = this;
    return { requests, connections, openConnections, open, peakOpen, peakOpenRetries, succeeded, failed, resets, closes, blackholed, healthChecks };
  }

  /**
   * Stops abruptly, as a killed process would: the port closes, every connection is destroyed
   * with its requests (held and blackholed ones included), nothing is answered.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.held.length = 0;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    return done;
  }

  private changed(): void { this.emit('change'); }

  private onConnection(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
    this.connections++;
    this.openConnections++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => { this.sockets.delete(socket); this.openConnections--; this.changed(); });
    this.changed();
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && n < PREFACE.length) return;
      socket.off('data', onData);
      socket.pause();
      socket.unshift(seen);
      if (isH2) {
        this.nextSessionSocket = socket;
        h2.emit('connection', socket);
        this.nextSessionSocket = undefined;
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  }

  private onH2(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const socket = this.sessionSockets.get(stream.session!);
    const ex: Exchange = {
      protocol: 'h2',
      answer: (status, h, body, trailers) => {
        if (stream.destroyed || stream.closed) return;
        if (trailers === undefined && body.length === 0) { stream.respond({ ':status': status, ...h }, { endStream: true }); return; }
        if (trailers === undefined) { stream.respond({ ':status': status, ...h }); stream.end(body); return; }
        stream.respond({ ':status': status, ...h }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers(trailers));
        stream.end(body);
      },
      reset: (code) => stream.close(code),
      dropConnection: () => (socket ? socket.destroy() : stream.session?.destroy()),
      gone: () => stream.destroyed || stream.closed,
    };
    this.onRequest(ex, String(headers[':method']), String(headers[':path']), headers, stream, (fn) => stream.once('close', fn));
  }

  private onH1(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ex: Exchange = {
      protocol: 'http/1.1',
      answer: (status, h, body) => { if (!res.destroyed && !res.headersSent) { res.writeHead(status, h); res.end(body); } },
      reset: () => req.socket.resetAndDestroy(),
      dropConnection: () => req.socket.destroy(),
      gone: () => res.destroyed || res.writableEnded,
    };
    this.onRequest(ex, req.method ?? '', req.url ?? '', req.headers, req, (fn) => res.once('close', fn));
  }

  private onRequest(ex: Exchange, method: string, url: string, headers: http.IncomingHttpHeaders, body: NodeJS.ReadableStream, onClose: (fn: () => void) => void): void {
    const p = url.split('?')[0]!;
    const grpc = (header(headers['content-type']) ?? '').startsWith('application/grpc');
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    if (p === HEALTH_CHECK || (p === HEALTHZ && !grpc)) {
      body.on('end', () => this.onHealth(ex, grpc));
      return;
    }
    const attempt = header(headers[ATTEMPT_HEADER]);
    const seen: SeenRequest = { protocol: ex.protocol, method, path: p, attempt, grpcTimeout: header(headers['grpc-timeout']), bodyBytes: -1 };
    const retry = attempt !== undefined && Number(attempt) > 1;
    this.requests++;
    bump(this.byPath, p);
    bump(this.byMethod, method);
    bump(this.byAttempt, attempt ?? NO_ATTEMPT);
    this.seen.push(seen);
    this.open++;
    this.peakOpen = Math.max(this.peakOpen, this.open);
    if (retry) { this.openRetries++; this.peakOpenRetries = Math.max(this.peakOpenRetries, this.openRetries); }
    let finished = false;
    onClose(() => {
      if (finished) return;
      finished = true;
      this.open--;
      if (retry) this.openRetries--;
      this.changed();
    });
    this.changed();
    body.on('end', () => {
      const bytes = Buffer.concat(chunks);
      seen.bodyBytes = bytes.length;
      if (method === 'POST') this.postBodies.push(bytes.length);
      this.afterBody(ex, grpc, p, method, url, attempt, bytes);
      this.changed();
    });
  }

  private afterBody(ex: Exchange, grpc: boolean, p: string, method: string, url: string, attempt: string | undefined, body: Buffer): void {
    if (this.closeConnection) { this.closes++; ex.dropConnection(); return; }
    if (this.reset !== false) { this.resets++; ex.reset(this.reset); return; }
    if (this.blackhole) { this.blackholed++; return; }
    const i = this.answered++;
    const fail = Math.floor(((i + 1) * this.failPercent) / 100) > Math.floor((i * this.failPercent) / 100);
    const failure = this.failWith;
    const answer = () => {
      if (ex.gone()) return;
      if (fail) this.failed++;
      else this.succeeded++;
      if (grpc) this.answerGrpc(ex, p, body, fail ? failure : undefined);
      else if (fail) ex.answer(failure.http, { 'content-type': 'text/plain', 'x-upstream': this.name }, `${failure.message}\n`);
      else ex.answer(200, { 'content-type': 'application/json', 'x-upstream': this.name }, JSON.stringify({ upstream: this.name, method, url, bodyBytes: body.length, attempt: attempt ?? null }));
      this.changed();
    };
    if (this.hold) { this.held.push(answer); return; }
    if (this.delayMs > 0) {
      const t = setTimeout(() => { this.timers.delete(t); answer(); }, this.delayMs);
      this.timers.add(t);
      return;
    }
    answer();
  }

  private answerGrpc(ex: Exchange, p: string, body: Buffer, failure: Failure | undefined): void {
    const head = { 'content-type': 'application/grpc', 'x-upstream': this.name };
    if (failure !== undefined) {
      ex.answer(200, { ...head, 'grpc-status': String(failure.grpc), 'grpc-message': encodeURIComponent(failure.message) }, '');
      return;
    }
    if (p !== SAY_HELLO) {
      ex.answer(200, { ...head, 'grpc-status': '12', 'grpc-message': encodeURIComponent(`${p} is not implemented`) }, '');
      return;
    }
    const { req, reply } = types();
    const r = req.toObject(req.decode(firstMessage(body))) as { name?: string; payload?: Uint8Array };
    const msg = reply.encode(reply.create({ message: `hello ${r.name ?? ''}`, backend: this.name, version: this.version, ...(r.payload && r.payload.length > 0 ? { payload: r.payload } : {}) })).finish();
    ex.answer(200, head, grpcFrame(msg), { 'grpc-status': '0' });
  }

  private onHealth(ex: Exchange, grpc: boolean): void {
    this.healthChecks++;
    this.changed();
    if (this.healthBlackhole) return;
    if (grpc) {
      // HealthCheckResponse{status = 1}: SERVING = 1, NOT_SERVING = 2.
      ex.answer(200, { 'content-type': 'application/grpc', 'x-upstream': this.name }, grpcFrame(Buffer.from([0x08, this.healthy ? 1 : 2])), { 'grpc-status': '0' });
    } else {
      ex.answer(this.healthy ? 200 : 503, { 'content-type': 'text/plain', 'x-upstream': this.name }, this.healthy ? 'ok\n' : 'unhealthy\n');
    }
  }
}
