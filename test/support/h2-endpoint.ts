/**
 * H2Connection endpoints for tests over real loopback sockets: a Recorder handler that logs
 * every event per stream (and consumes DATA at once unless told not to), a server that runs one
 * H2Connection per accepted socket, a client connection to a port, and a raw peer that sends
 * any frames.
 */
import * as net from 'node:net';
import { once } from 'node:events';
import { H2Connection } from '../../sidecar/src/h2/connection';
import type { H2ConnectionOptions, H2Handler } from '../../sidecar/src/h2/connection';
import type { H2Stream } from '../../sidecar/src/h2/stream';
import type { H2Limits } from '../../sidecar/src/h2/limits';
import { H2Stats } from '../../sidecar/src/h2/limits';
import type { Clock } from '../../shared/src/clock';
import { FrameParser } from '../../sidecar/src/h2/frame-parser';
import type { FrameHandler } from '../../sidecar/src/h2/frame-parser';
import { CLIENT_PREFACE } from '../../sidecar/src/h2/frame-types';
import { settingsAckFrame, settingsFrame } from '../../sidecar/src/h2/frame-writer';

export class StreamLog {
  headers: string[] | undefined;
  endedWithHead = false;
  readonly informational: string[][] = [];
  readonly data: Buffer[] = [];
  received = 0;
  trailers: string[] | undefined;
  remoteEnded = false;
  closeCode: number | undefined;
  retryable: boolean | undefined;
  body(): string { return Buffer.concat(this.data).toString('latin1'); }
}

export class Recorder implements H2Handler {
  conn!: H2Connection;
  /** Call consumed() as DATA arrives (false: the test consumes). */
  autoConsume = true;
  readonly logs = new Map<number, StreamLog>();
  readonly streams = new Map<number, H2Stream>();
  readonly goaways: [number, number][] = [];
  closed = false;
  closeError: Error | undefined;
  capacity = 0;
  writable = 0;
  /** Server: what to do when a request's head arrives; `onEnd`: when the peer's side ended. */
  onRequest: ((s: H2Stream, headers: string[], endStream: boolean) => void) | undefined;
  onEnd: ((s: H2Stream, log: StreamLog) => void) | undefined;

  log(s: H2Stream): StreamLog {
    let l = this.logs.get(s.id);
    if (l === undefined) { l = new StreamLog(); this.logs.set(s.id, l); this.streams.set(s.id, s); }
    return l;
  }
  onHeaders(s: H2Stream, headers: string[], endStream: boolean): void {
    const l = this.log(s);
    l.headers = headers;
    l.endedWithHead = endStream;
    if (this.conn.role === 'server') this.onRequest?.(s, headers, endStream);
    if (endStream) this.ended(s, l);
  }
  onInformational(s: H2Stream, headers: string[]): void { this.log(s).informational.push(headers); }
  onData(s: H2Stream, data: Buffer, endStream: boolean): void {
    const l = this.log(s);
    l.data.push(Buffer.from(data));
    l.received += data.length;
    if (this.autoConsume) this.conn.consumed(s, data.length);
    if (endStream) this.ended(s, l);
  }
  onTrailers(s: H2Stream, trailers: string[]): void { const l = this.log(s); l.trailers = trailers; this.ended(s, l); }
  onWritable(): void { this.writable++; }
  onStreamClose(s: H2Stream, code: number, retryable: boolean): void { const l = this.log(s); l.closeCode = code; l.retryable = retryable; }
  onGoaway(last: number, code: number): void { this.goaways.push([last, code]); }
  onCapacity(): void { this.capacity++; }
  onClose(err: Error | undefined): void { this.closed = true; this.closeError = err; }
  private ended(s: H2Stream, l: StreamLog): void { l.remoteEnded = true; this.onEnd?.(s, l); }
}

export interface EndpointOptions { limits?: Partial<H2Limits>; stats?: H2Stats; clock?: Clock }

function options(role: 'server' | 'client', handler: H2Handler, o: EndpointOptions): H2ConnectionOptions {
  const opts: H2ConnectionOptions = { role, handler, stats: o.stats ?? new H2Stats() };
  if (o.limits !== undefined) opts.limits = o.limits;
  if (o.clock !== undefined) opts.clock = o.clock;
  return opts;
}

export interface H2TestServer { port: number; recorders: Recorder[]; stats: H2Stats; close(): Promise<void> }

/** A loopback server: one H2Connection (server role) per socket, its Recorder set up by `setup`. */
export async function serveH2(setup: (r: Recorder) => void, o: EndpointOptions = {}): Promise<H2TestServer> {
  const recorders: Recorder[] = [];
  const stats = o.stats ?? new H2Stats();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const r = new Recorder();
    setup(r);
    recorders.push(r);
    r.conn = new H2Connection(sock, options('server', r, { ...o, stats }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    recorders,
    stats,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A client H2Connection to 127.0.0.1:`port`. */
export async function connectH2(port: number, o: EndpointOptions = {}): Promise<Recorder> {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  const r = new Recorder();
  r.conn = new H2Connection(sock, options('client', r, o));
  return r;
}

/** A request head for a client H2Connection. */
export function requestHead(port: number, method: string, path: string, extra: string[] = []): string[] {
  return [':method', method, ':scheme', 'http', ':path', path, ':authority', `127.0.0.1:${port}`, ...extra];
}

/**
 * A raw HTTP/2 peer built from the frame writers and parser, for sending what no real client
 * or server sends. It records the RST_STREAMs, GOAWAY, PING ACKs and HEADERS it receives, and
 * acknowledges SETTINGS unless `ackSettings` is false.
 */
export class RawPeer implements FrameHandler {
  readonly parser: FrameParser;
  readonly rsts: [number, number][] = [];
  goaway: [number, number, string] | undefined;
  pingAcks = 0;
  readonly headerStreams: number[] = [];
  readonly settings: number[][] = [];
  closed = false;
  ackSettings = true;

  constructor(readonly sock: net.Socket, role: 'server' | 'client') {
    this.parser = new FrameParser(this, { role });
    sock.on('data', (c: Buffer) => this.parser.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => { this.closed = true; });
  }
  send(...frames: (Buffer | Buffer[])[]): void { if (!this.sock.destroyed) this.sock.write(Buffer.concat(frames.flat())); }
  /** SETTINGS ACKs received: the other side applied ours. */
  settingsAcks = 0;
  onSettings(ack: boolean, entries: readonly number[]): void {
    if (ack) { this.settingsAcks++; return; }
    this.settings.push([...entries]);
    if (this.ackSettings) this.send(settingsAckFrame());
  }
  onPing(ack: boolean): void { if (ack) this.pingAcks++; }
  onGoaway(last: number, code: number, debug: Buffer): void { this.goaway = [last, code, debug.toString('latin1')]; }
  onRstStream(sid: number, code: number): void { this.rsts.push([sid, code]); }
  onHeaders(sid: number): void { this.headerStreams.push(sid); }
  /** DATA bytes received per stream (flow-controlled length). */
  readonly dataBytes = new Map<number, number>();
  onData(sid: number, _payload: Buffer, _end: boolean, flowLength: number): void { this.dataBytes.set(sid, (this.dataBytes.get(sid) ?? 0) + flowLength); }
  onContinuation(): void { /* not sent by the engine in these tests */ }
  onPriority(): void { /* ignored */ }
  onWindowUpdate(): void { /* not needed */ }
  onStreamError(): void { /* the engine's frames are well-formed */ }
  onConnectionError(): void { this.sock.destroy(); }
}

/** A raw client of `port`: the preface and an empty SETTINGS are sent. */
export async function rawClient(port: number): Promise<RawPeer> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  await once(sock, 'connect');
  const p = new RawPeer(sock, 'client');
  p.send(CLIENT_PREFACE, settingsFrame([]));
  return p;
}

/** A loopback server whose every connection is a RawPeer (server side), handed to `onPeer`. */
export async function rawServer(onPeer: (p: RawPeer) => void): Promise<{ port: number; close(): void }> {
  const server = net.createServer((sock) => onPeer(new RawPeer(sock, 'server')));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}
