/**
 * H2Pool on skein's engine (upstream/pool/skein-h2-client.ts) against REAL Node http2 servers:
 * a connect failure is the pool's UPSTREAM_CONNECT_FAILURE; a peer's MAX_CONCURRENT_STREAMS of 1
 * makes the pool open another connection for a second request in flight; a peer's GOAWAY sends
 * the next request to a new connection; drain() ends every socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshError } from '../../../shared/src/errors';
import { ErrorCodes } from '../../../shared/src/errors';
import { H2Stats } from '../../../sidecar/src/h2/limits';
import type { H2Stream } from '../../../sidecar/src/h2/stream';
import { skeinH2Pool } from '../../../sidecar/src/upstream/pool/skein-h2-client';
import type { H2StreamUser, SkeinH2Pool } from '../../../sidecar/src/upstream/pool/skein-h2-client';
import { closedPort } from '../../support/ports';
import { h2Upstream } from '../../support/upstreams';
import { until } from '../../support/until';

/** Collects one stream's response. */
class Collect implements H2StreamUser {
  status = 0;
  body = '';
  closed = -1;
  onH2Headers(_s: H2Stream, h: string[]): void { this.status = Number(h[h.indexOf(':status') + 1]); }
  onH2Data(s: H2Stream, d: Buffer): void { this.body += d.toString(); s.conn.consumed(s, d.length); }
  onH2Trailers(): void { /* none here */ }
  onH2Informational(): void { /* none here */ }
  onH2Writable(): void { /* nothing queued */ }
  onH2Close(_s: H2Stream, code: number): void { this.closed = code; }
}

function head(port: number, path: string): string[] {
  return [':method', 'GET', ':scheme', 'http', ':authority', `127.0.0.1:${port}`, ':path', path];
}

/** One request through the pool: resolves with the stream (its owner set to a Collect) or the pool's error. */
function open(pool: SkeinH2Pool, port: number, path: string): Promise<{ s?: H2Stream; c: Collect; err: MeshError | null }> {
  return new Promise((resolve) => {
    const c = new Collect();
    pool.request(head(port, path), true, (err, s) => {
      if (s !== undefined) s.user = c;
      resolve({ ...(s !== undefined ? { s } : {}), c, err });
    });
  });
}

test('a closed port is UPSTREAM_CONNECT_FAILURE naming the errno', async () => {
  const port = await closedPort();
  const pool = skeinH2Pool({ address: '127.0.0.1', port }, { connectTimeoutMs: 5000 }, { stats: new H2Stats() });
  const r = await open(pool, port, '/');
  assert.equal(r.err?.code, ErrorCodes.UPSTREAM_CONNECT_FAILURE);
  assert.match(r.err!.message, /ECONNREFUSED/);
  await pool.close();
});

test('a peer allowing one stream: a second request in flight opens a second connection; drain ends both', async () => {
  const held: (() => void)[] = [];
  const up = await h2Upstream((stream) => {
    held.push(() => { stream.respond({ ':status': 200 }); stream.end('ok'); });
  }, { settings: { maxConcurrentStreams: 1 } });
  const stats = new H2Stats();
  const pool = skeinH2Pool({ address: '127.0.0.1', port: up.port }, {}, { stats });
  try {
    const a = await open(pool, up.port, '/a');
    assert.equal(a.err, null);
    await until(() => held.length === 1, 'the first request to arrive');
    const b = await open(pool, up.port, '/b');
    assert.equal(b.err, null);
    await until(() => held.length === 2, 'the second request to arrive');
    assert.equal(up.accepted, 2, 'each stream on its own connection');
    for (const answer of held) answer();
    await until(() => a.c.closed === 0 && b.c.closed === 0, 'both streams to complete');
    assert.deepEqual([a.c.status, a.c.body, b.c.status, b.c.body], [200, 'ok', 200, 'ok']);
    assert.equal(stats.streamsOpened, 2);
    await pool.drain();
    await until(() => up.open === 0, 'the upstream to see both connections end');
  } finally {
    await pool.close();
    await up.close();
  }
});

test('after the peer\'s GOAWAY the next request goes to a new connection', async () => {
  const up = await h2Upstream((stream) => { stream.respond({ ':status': 200 }); stream.end('ok'); });
  const pool = skeinH2Pool({ address: '127.0.0.1', port: up.port }, {}, { stats: new H2Stats() });
  try {
    const first = await open(pool, up.port, '/1');
    await until(() => first.c.closed === 0, 'the first stream to complete');
    up.sessions[0]!.goaway();
    await until(() => pool.stats().sessions === 0 || pool.stats().draining === 1, 'the pool to see the GOAWAY');
    const second = await open(pool, up.port, '/2');
    assert.equal(second.err, null);
    await until(() => second.c.closed === 0, 'the second stream to complete');
    assert.equal(second.c.body, 'ok');
    assert.equal(up.accepted, 2);
  } finally {
    await pool.close();
    await up.close();
  }
});
