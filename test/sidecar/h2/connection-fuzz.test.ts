/**
 * A bounded, seeded fuzz of H2Connection in both roles over loopback: each connection gets a
 * sequence of frames, some well-formed (requests or responses, bodies, trailers, window updates,
 * resets, settings, pings, GOAWAY, CONTINUATION, PRIORITY, unknown types) and then mutated byte
 * by byte, or random frame headers with random payloads. Every sequence is followed by a PING
 * and a frame's worth of zero bytes, which end any frame left open and then are a connection
 * error, so every connection ends, deterministically. Nothing may throw out of the engine (an
 * uncaught exception fails the test), every connection closes with no stream left, the heap
 * stays bounded, and after each batch a normal call on a new connection succeeds.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { once } from 'node:events';
import { FLAG, FRAME } from '../../../sidecar/src/h2/frame-types';
import { dataFrameHeader, frameHeader, goawayFrame, headersFrames, pingFrame, rstStreamFrame, settingsFrame, windowUpdateFrame } from '../../../sidecar/src/h2/frame-writer';
import { HpackEncoder } from '../../../sidecar/src/h2/hpack-encoder';
import { H2Stats } from '../../../sidecar/src/h2/limits';
import { connectH2, rawClient, rawServer, requestHead, serveH2 } from '../../support/h2-endpoint';
import type { RawPeer, Recorder } from '../../support/h2-endpoint';
import { mulberry32 } from '../../support/prng';
import { until } from '../../support/until';

const TIMEOUT = 110_000;
const BATCHES = 8;
const PER_BATCH = 40;
const HEAP_BOUND = 96 * 1024 * 1024;
const TAIL = Buffer.alloc(9 + 16384); // completes any open frame, then DATA on stream 0: a connection error

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** A plausible sequence from one side: `role` is who sends it. */
function plausible(r: Rand, role: 'client' | 'server'): Buffer[] {
  const enc = new HpackEncoder({ maxTableSize: int(r, 2) === 0 ? 0 : 4096 });
  const out: Buffer[] = [];
  const n = 1 + int(r, 12);
  for (let i = 0; i < n; i++) {
    const sid = role === 'client' ? 1 + 2 * int(r, 4) : 1;
    switch (int(r, 12)) {
      case 0: case 1: {
        const head = role === 'client' ? requestHead(80, int(r, 2) === 0 ? 'GET' : 'POST', `/f/${i}`, ['x-i', String(i)]) : [':status', String(100 + int(r, 5) * 100), 'x-i', String(i)];
        out.push(...headersFrames(sid, enc.encode(head), int(r, 3) === 0, 16384));
        break;
      }
      case 2: case 3: { const len = int(r, 3000); out.push(dataFrameHeader(sid, len, int(r, 3) === 0), Buffer.alloc(len, i)); break; }
      case 4: out.push(...headersFrames(sid, enc.encode(['grpc-status', '0']), true, 16384)); break;
      case 5: out.push(windowUpdateFrame(int(r, 2) === 0 ? 0 : sid, 1 + int(r, 100000))); break;
      case 6: out.push(rstStreamFrame(sid, int(r, 14))); break;
      case 7: out.push(settingsFrame([1 + int(r, 6), int(r, 70000)])); break;
      case 8: out.push(pingFrame(Buffer.alloc(8, i), int(r, 4) === 0)); break;
      case 9: out.push(goawayFrame(int(r, 8), int(r, 3))); break;
      case 10: {
        const block = enc.encode(role === 'client' ? requestHead(80, 'GET', '/c') : [':status', '200']);
        const cut = int(r, block.length + 1);
        out.push(frameHeader(cut, FRAME.HEADERS, int(r, 2), sid), block.subarray(0, cut), frameHeader(block.length - cut, FRAME.CONTINUATION, FLAG.END_HEADERS, sid), block.subarray(cut));
        break;
      }
      default: { const len = int(r, 10); out.push(frameHeader(len, int(r, 2) === 0 ? FRAME.PRIORITY : 0x20 + int(r, 10), 0, sid), Buffer.alloc(len, 1)); break; }
    }
  }
  return out;
}

/** Mutated: a plausible sequence with a few bytes changed. Random: frame headers and payloads of any kind. */
function fuzzBytes(r: Rand, role: 'client' | 'server'): Buffer {
  if (int(r, 2) === 0) {
    const b = Buffer.concat(plausible(r, role));
    const flips = 1 + int(r, 4);
    for (let i = 0; i < flips && b.length > 0; i++) b[int(r, b.length)] = int(r, 256);
    return b;
  }
  const parts: Buffer[] = [];
  const n = 1 + int(r, 10);
  for (let i = 0; i < n; i++) {
    const len = int(r, 64);
    const payload = Buffer.alloc(len);
    for (let j = 0; j < len; j++) payload[j] = int(r, 256);
    parts.push(frameHeader(len, int(r, 11), int(r, 256), int(r, 8)), payload);
  }
  return Buffer.concat(parts);
}

function echo(rec: Recorder): void {
  rec.onEnd = (s) => {
    rec.conn.respond(s, [':status', '200', 'content-type', 'text/plain'], false);
    rec.conn.write(s, Buffer.alloc(20000, 0x61));
    rec.conn.end(s, ['x-done', '1']);
  };
}

async function nodeCallTo(port: number): Promise<number> {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  try {
    const req = c.request({ ':path': '/after-batch' });
    const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    for await (const chunk of req) void chunk;
    return Number(head[':status']);
  } finally { c.close(); }
}

describe('seeded fuzz', () => {
  test('an H2Connection server: mutated and random client frames', { timeout: TIMEOUT }, async () => {
    const stats = new H2Stats();
    const server = await serveH2(echo, { stats });
    const r = mulberry32(0x5eed1);
    let heapAfterFirst = 0;
    try {
      for (let batch = 0; batch < BATCHES; batch++) {
        const peers: RawPeer[] = [];
        for (let i = 0; i < PER_BATCH; i++) {
          const p = await rawClient(server.port);
          p.send(fuzzBytes(r, 'client'), pingFrame(Buffer.alloc(8), false), TAIL);
          peers.push(p);
        }
        await until(() => peers.every((p) => p.closed), 'every fuzzed connection closed', 30_000);
        for (const p of peers) p.sock.destroy();
        assert.equal(await nodeCallTo(server.port), 200, `a normal call after batch ${batch}`);
        if (batch === 0) heapAfterFirst = process.memoryUsage().heapUsed;
      }
      await until(() => server.recorders.every((rec) => rec.closed), 'every server connection closed');
      for (const rec of server.recorders) assert.equal(rec.conn.activeStreams, 0);
      assert.ok(process.memoryUsage().heapUsed < heapAfterFirst + HEAP_BOUND, 'the heap stayed bounded');
      assert.ok(stats.connectionErrors >= BATCHES * PER_BATCH, 'every fuzzed connection ended in a connection error');
    } finally { await server.close(); }
  });

  test('an H2Connection client: mutated and random server frames', { timeout: TIMEOUT }, async () => {
    const r = mulberry32(0x5eed2);
    const sequences: Buffer[] = [];
    const raw = await rawServer((p) => p.send(settingsFrame([]), sequences.shift() ?? Buffer.alloc(0), pingFrame(Buffer.alloc(8), false), TAIL));
    const rawPort = raw.port;
    const node = http2.createServer((_req, res) => { res.end('ok'); });
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    const nodePort = (node.address() as net.AddressInfo).port;
    const stats = new H2Stats();
    try {
      for (let batch = 0; batch < BATCHES; batch++) {
        const recs: Recorder[] = [];
        for (let i = 0; i < PER_BATCH; i++) {
          sequences.push(fuzzBytes(r, 'server'));
          const rec = await connectH2(rawPort, { stats });
          rec.conn.request(requestHead(rawPort, 'POST', '/f'), false);
          recs.push(rec);
        }
        await until(() => recs.every((rec) => rec.closed), 'every fuzzed client connection closed', 30_000);
        for (const rec of recs) assert.equal(rec.conn.activeStreams, 0);
        const ok = await connectH2(nodePort);
        const s = ok.conn.request(requestHead(nodePort, 'GET', '/'), true)!;
        await until(() => ok.logs.get(s.id)?.closeCode !== undefined, 'a normal call');
        assert.equal(ok.logs.get(s.id)!.body(), 'ok', `a normal call after batch ${batch}`);
        ok.conn.destroy();
      }
    } finally {
      raw.close();
      node.close();
    }
  });
});
