/**
 * Two H2Connections as a relay, the way the proxy will use them (not the pipeline: a minimal
 * relay in the test): a server connection facing a real Node http2 client, a client connection
 * facing a real Node http2 server. Headers pass as flat arrays, DATA as the received views
 * (never copied), trailers as they come. End-to-end flow control: the relay calls consumed()
 * on one side only as the other side's queue takes the bytes (write() true, or onWritable), so
 * what it holds per direction stays within one window plus the queue's high-water mark, while
 * 2 MiB go each way.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { once } from 'node:events';
import { H2_ERROR } from '../../../sidecar/src/h2/errors';
import { H2Connection } from '../../../sidecar/src/h2/connection';
import type { H2Handler } from '../../../sidecar/src/h2/connection';
import { DEFAULT_H2_LIMITS } from '../../../sidecar/src/h2/limits';
import type { H2Stream } from '../../../sidecar/src/h2/stream';

const TIMEOUT = 60_000;
const MIB = 1 << 20;

/** One direction's bytes handed to the other side's queue but not yet consumed() on this side. */
interface Pair { down: H2Stream; up: H2Stream | undefined; downPending: number; upPending: number }

/** The most bytes the relay held in one direction: received and not consumed, plus queued. */
let maxHeld = 0;
const held = (from: H2Stream, to: H2Stream): void => { maxHeld = Math.max(maxHeld, from.buffered + to.queuedBytes); };

class DownSide implements H2Handler {
  conn!: H2Connection;
  up!: H2Connection;
  onHeaders(s: H2Stream, headers: string[], endStream: boolean): void {
    const pair: Pair = { down: s, up: undefined, downPending: 0, upPending: 0 };
    s.user = pair;
    pair.up = this.up.request(headers, endStream, pair);
    if (pair.up === undefined) this.conn.reset(s, H2_ERROR.REFUSED_STREAM);
  }
  onData(s: H2Stream, data: Buffer, endStream: boolean): void {
    const p = s.user as Pair;
    if (p.up === undefined) return;
    const ok = data.length > 0 ? this.up.write(p.up, data, endStream) : (this.up.end(p.up), true);
    held(s, p.up);
    if (ok) this.conn.consumed(s, data.length); else p.downPending += data.length;
  }
  onTrailers(s: H2Stream, trailers: string[]): void { const p = s.user as Pair; if (p.up !== undefined) this.up.end(p.up, trailers); }
  /** The downstream's queue drained: take what the upstream gave. */
  onWritable(s: H2Stream): void { const p = s.user as Pair; if (p.up !== undefined) { this.up.consumed(p.up, p.upPending); p.upPending = 0; } }
  onStreamClose(s: H2Stream, code: number): void { const p = s.user as Pair; if (code !== H2_ERROR.NO_ERROR && p.up !== undefined) this.up.reset(p.up, H2_ERROR.CANCEL); }
  onInformational(): void { /* server role */ }
  onGoaway(): void { /* the test's client closes */ }
  onCapacity(): void { /* server role */ }
  onClose(): void { /* per connection */ }
}

class UpSide implements H2Handler {
  conn!: H2Connection;
  down!: H2Connection;
  onHeaders(s: H2Stream, headers: string[], endStream: boolean): void { this.down.respond((s.user as Pair).down, headers, endStream); }
  onInformational(s: H2Stream, headers: string[]): void { this.down.informational((s.user as Pair).down, headers); }
  onData(s: H2Stream, data: Buffer, endStream: boolean): void {
    const p = s.user as Pair;
    const ok = data.length > 0 ? this.down.write(p.down, data, endStream) : (this.down.end(p.down), true);
    held(s, p.down);
    if (ok) this.conn.consumed(s, data.length); else p.upPending += data.length;
  }
  onTrailers(s: H2Stream, trailers: string[]): void { this.down.end((s.user as Pair).down, trailers); }
  /** The upstream's queue drained: take what the downstream gave. */
  onWritable(s: H2Stream): void { const p = s.user as Pair; this.down.consumed(p.down, p.downPending); p.downPending = 0; }
  onStreamClose(s: H2Stream, code: number): void { if (code !== H2_ERROR.NO_ERROR) this.down.reset((s.user as Pair).down, code); }
  onGoaway(): void { /* not in this test */ }
  onCapacity(): void { /* not in this test */ }
  onClose(): void { /* per connection */ }
}

describe('two H2Connections as a relay between real Node http2 peers', () => {
  test('2 MiB each way with trailers; the relay holds at most a window and a queue per direction', { timeout: TIMEOUT }, async () => {
    const big = Buffer.alloc(2 * MIB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const backend = http2.createServer();
    backend.on('stream', (stream) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        const got = Buffer.concat(parts);
        stream.respond({ ':status': 200, 'x-got': String(got.length), 'x-same': String(got.equals(big)) }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(big);
      });
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    const upSock = net.connect((backend.address() as net.AddressInfo).port, '127.0.0.1');
    await once(upSock, 'connect');
    const upSide = new UpSide();
    const up = upSide.conn = new H2Connection(upSock, { role: 'client', handler: upSide });
    const relay = net.createServer((sock) => {
      const downSide = new DownSide();
      downSide.up = up;
      upSide.down = downSide.conn = new H2Connection(sock, { role: 'server', handler: downSide });
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    const client = http2.connect(`http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`);
    client.on('error', () => undefined);
    try {
      const req = client.request({ ':method': 'POST', ':path': '/relay', 'content-type': 'application/octet-stream' });
      req.end(big);
      let trailers: http2.IncomingHttpHeaders | undefined;
      req.on('trailers', (t: http2.IncomingHttpHeaders) => { trailers = t; });
      const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      const parts: Buffer[] = [];
      for await (const chunk of req) parts.push(chunk as Buffer);
      assert.equal(head[':status'], 200);
      assert.equal(head['x-got'], String(big.length));
      assert.equal(head['x-same'], 'true', 'the backend got every request byte in order');
      assert.ok(Buffer.concat(parts).equals(big), 'the client got every response byte in order');
      assert.equal(trailers?.['grpc-status'], '0');
      const bound = DEFAULT_H2_LIMITS.streamWindow + DEFAULT_H2_LIMITS.streamHighWater + 16384;
      assert.ok(maxHeld > 0 && maxHeld <= bound, `held at most ${maxHeld} bytes in one direction (bound ${bound})`);
    } finally {
      client.close();
      up.destroy();
      relay.close();
      backend.close();
    }
  });
});
