/**
 * HTTP/1.1 at both listeners of the sidecar's downstream edge (outbound: what the local app
 * calls; inbound: what peers call), on raw sockets where clients would not misbehave:
 * duplicate Host, Expect: 100-continue uploads, Upgrade to a backend that does not switch,
 * identity headers from outside the mesh, slow request heads, keep-alive idle, slow uploads.
 *
 *   caller -> client sidecar (outbound) -> server sidecar (inbound) -> HTTP/1.1 app
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { startEdgeMesh, startH1App } from '../support/edge-mesh';
import type { EdgeMesh } from '../support/edge-mesh';
import { h1Request, MiB, rawExchange } from '../support/sidecar-apps';
import { eventually } from '../support/ads-client';

const LISTENERS = ['outbound', 'inbound'] as const;

/** Every status line in a raw HTTP/1.1 byte stream. */
function statusLines(raw: string): string[] {
  return raw.split('\r\n').filter((l) => /^HTTP\/1\.[01] \d{3}/.test(l));
}

function connect(address: string): Promise<net.Socket> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** An HTTP/1.1 upload with `Expect: 100-continue`, sending the body only after the 100 (as curl does). */
function uploadWithExpect(address: string, body: Buffer): Promise<{ status: number; gotContinue: boolean; body: string; reason: string | undefined }> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    let gotContinue = false;
    const req = http.request({
      host: address.slice(0, i), port: Number(address.slice(i + 1)), method: 'POST', path: '/upload', agent: false,
      headers: { host: 'svc', expect: '100-continue', 'content-length': String(body.length), 'content-type': 'application/octet-stream' },
      timeout: 15_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, gotContinue, body: Buffer.concat(chunks).toString(), reason: res.headers['x-skein-reason'] as string | undefined }));
    });
    req.on('continue', () => { gotContinue = true; req.end(body); });
    req.on('timeout', () => req.destroy(new Error('no answer in 15s')));
    req.on('error', reject);
    req.flushHeaders();
  });
}

describe('HTTP/1.1 requests at the edge', () => {
  let app: Awaited<ReturnType<typeof startH1App>>;
  let mesh: EdgeMesh;

  before(async () => {
    app = await startH1App();
    // The hop between the sidecars is HTTP/1.1 so Upgrade requests can cross it.
    mesh = await startEdgeMesh({ appPort: app.port, appProtocol: 'http', hop: 'h1' });
  });
  after(async () => { await mesh?.close(); await app?.close(); });

  for (const listener of LISTENERS) {
    const addr = (): string => (listener === 'outbound' ? mesh.outbound : mesh.inbound);

    test(`${listener}: a request with two Host headers is answered 400 bad_request, not routed on the first`, async () => {
      const before = mesh.stat(`listener.${listener}.downstream_rq_malformed`);
      const raw = (await rawExchange(addr(), ['GET /two-hosts HTTP/1.1\r\nHost: svc\r\nHost: evil\r\n\r\n'], { idleMs: 3000 })).toString('latin1');
      assert.deepEqual(statusLines(raw), ['HTTP/1.1 400 Bad Request'], raw);
      assert.match(raw, /x-skein-reason: bad_request/i);
      assert.match(raw, /connection: close/i);
      assert.equal(app.requests.get('/two-hosts'), undefined, 'never forwarded');
      assert.equal(mesh.stat(`listener.${listener}.downstream_rq_malformed`) - before, 1);
      // The same for an Upgrade request.
      const up = (await rawExchange(addr(), ['GET /two-hosts HTTP/1.1\r\nHost: svc\r\nHost: evil\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'], { idleMs: 3000 })).toString('latin1');
      assert.deepEqual(statusLines(up), ['HTTP/1.1 400 Bad Request'], up);
      assert.equal(app.requests.get('/two-hosts'), undefined);
    });

    test(`${listener}: an upload over 1 MiB with Expect: 100-continue gets its 100 and goes through`, async () => {
      const body = Buffer.alloc(3 * MiB / 2, 7);
      const r = await uploadWithExpect(addr(), body);
      assert.equal(r.status, 200, `${r.reason ?? ''} ${r.body}`);
      assert.ok(r.gotContinue, 'the caller got 100 Continue');
      const seen = JSON.parse(r.body) as { bytes: number; headers: http.IncomingHttpHeaders };
      assert.equal(seen.bytes, body.length, 'the app got the whole body');
    });

    test(`${listener}: an Upgrade request to a backend that does not switch protocols gets exactly one response, the backend's`, async () => {
      const raw = (await rawExchange(addr(), ['GET /no-switch HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'], { idleMs: 3000 })).toString('latin1');
      assert.deepEqual(statusLines(raw), ['HTTP/1.1 200 OK'], raw);
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      assert.equal((JSON.parse(body) as { path: string }).path, '/no-switch', 'the backend body, unframed and whole');
      assert.doesNotMatch(raw, /transfer-encoding/i, 'no chunked framing claimed for a decoded body');
    });
  }

  test('inbound: identity headers from outside the mesh (x-forwarded-client-cert, forwarded, x-real-ip) do not reach the app', async () => {
    const forged = { 'x-forwarded-client-cert': 'By=spiffe://evil;Hash=00;Subject="CN=admin"', forwarded: 'for=10.0.0.1;by=evil', 'x-real-ip': '10.0.0.1', 'x-kept': 'yes' };
    for (const address of [mesh.inbound, mesh.outbound]) {
      const r = await h1Request(address, { host: 'svc', path: '/identity', headers: forged });
      assert.equal(r.status, 200, r.body.toString());
      const seen = (JSON.parse(r.body.toString()) as { headers: http.IncomingHttpHeaders }).headers;
      assert.equal(seen['x-forwarded-client-cert'], undefined);
      assert.equal(seen['forwarded'], undefined);
      assert.equal(seen['x-real-ip'], undefined);
      assert.equal(seen['x-kept'], 'yes', 'other headers pass');
    }
    // Through HTTP/2 too (a peer's sidecar speaks h2 to the inbound listener).
    const session = http2.connect(`http://${mesh.inbound}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/identity-h2', ':authority': 'svc', ...forged });
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve(Buffer.concat(chunks).toString()));
        req.on('error', reject);
      });
      const seen = (JSON.parse(body) as { headers: http.IncomingHttpHeaders }).headers;
      assert.equal(seen['x-forwarded-client-cert'], undefined);
      assert.equal(seen['forwarded'], undefined);
      assert.equal(seen['x-real-ip'], undefined);
    } finally {
      session.close();
    }
  });

  test('inbound over HTTP/2: a repeated field reaches the app once, joined as Node joins it; x-forwarded-for is replaced by the peer', async () => {
    const session = http2.connect(`http://${mesh.inbound}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/repeated-h2', ':authority': 'svc', 'x-multi': ['a', 'b'], cookie: ['c1=1', 'c2=2'], 'x-forwarded-for': ['10.0.0.1', '10.0.0.2'], 'x-real-ip': ['1', '2'] });
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve(Buffer.concat(chunks).toString()));
        req.on('error', reject);
      });
      const seen = (JSON.parse(body) as { headers: http.IncomingHttpHeaders }).headers;
      assert.equal(seen['x-multi'], 'a, b');
      assert.equal(seen['cookie'], 'c1=1; c2=2');
      assert.equal(seen['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen['x-real-ip'], undefined);
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.match(String(seen['x-request-id']), /^[0-9a-f-]{36}$/);
    } finally {
      session.close();
    }
  });

  test('outbound: the local app\'s own forwarded headers are kept (it is trusted)', async () => {
    // A cluster straight to the app, so no inbound listener is on the way.
    const ads = mesh.ads;
    const { TYPE_URLS } = await import('../../shared/src/xds/protos');
    const { routeConfig, staticCluster } = await import('../support/scripted-ads');
    ads.set(TYPE_URLS.CLUSTER, [staticCluster('svc', [{ address: '127.0.0.1', port: Number(mesh.inbound.slice(mesh.inbound.lastIndexOf(':') + 1)) }]), staticCluster('direct', [{ address: '127.0.0.1', port: app.port }])]);
    ads.set(TYPE_URLS.ROUTE, [{ name: 'rc', virtual_hosts: [routeConfig('rc', 'svc', { cluster: 'svc' }).virtual_hosts[0], routeConfig('rc', 'direct', { cluster: 'direct' }).virtual_hosts[0]] }]);
    await eventually(async () => ((await h1Request(mesh.outbound, { host: 'direct', path: '/x' })).status === 200 ? true : undefined), 'the direct route');
    const r = await h1Request(mesh.outbound, { host: 'direct', path: '/trusted', headers: { forwarded: 'for=10.0.0.1', 'x-real-ip': '10.0.0.1' } });
    const seen = (JSON.parse(r.body.toString()) as { headers: http.IncomingHttpHeaders }).headers;
    assert.equal(seen['forwarded'], 'for=10.0.0.1');
    assert.equal(seen['x-real-ip'], '10.0.0.1');
  });
});

describe('HTTP/1.1 timeouts at the edge', () => {
  let app: Awaited<ReturnType<typeof startH1App>>;
  let mesh: EdgeMesh;

  before(async () => {
    app = await startH1App();
    mesh = await startEdgeMesh({ appPort: app.port, appProtocol: 'http', hop: 'h1', downstream: { requestHeadersTimeoutMs: 500, http1IdleTimeoutMs: 500, streamIdleTimeoutMs: 10_000 } });
  });
  after(async () => { await mesh?.close(); await app?.close(); });

  for (const listener of LISTENERS) {
    const addr = (): string => (listener === 'outbound' ? mesh.outbound : mesh.inbound);

    test(`${listener}: 200 connections trickling a request head get 408 and are closed by the headers timeout; a normal client keeps working`, async () => {
      const counter = `listener.${listener}.downstream_rq_header_timeout`;
      const before = mesh.stat(counter);
      const sockets = await Promise.all(Array.from({ length: 200 }, () => connect(addr())));
      const received = sockets.map(() => '');
      const closed = sockets.map(() => false);
      sockets.forEach((s, i) => {
        s.on('data', (c: Buffer) => { received[i] += c.toString('latin1'); });
        s.on('close', () => { closed[i] = true; });
        s.on('error', () => undefined);
        s.write('GET /slow HTTP/1.1\r\nHost: svc\r\nX-Slow: ');
      });
      // One header byte per connection every 100 ms, for at most 10 s: never a complete head.
      const trickle = setInterval(() => { for (let i = 0; i < sockets.length; i++) if (!closed[i]) sockets[i]!.write('a'); }, 100);
      try {
        let ok = 0;
        while (closed.some((c) => !c)) {
          const r = await h1Request(addr(), { host: 'svc', path: '/normal' });
          assert.equal(r.status, 200, 'a normal client is served meanwhile');
          ok++;
          if (ok > 400) break;
          await new Promise((res) => setTimeout(res, 20));
        }
        await eventually(() => (closed.every((c) => c) ? true : undefined), 'every trickling connection to be closed', 10_000);
      } finally {
        clearInterval(trickle);
        for (const s of sockets) s.destroy();
      }
      for (const r of received) assert.deepEqual(statusLines(r), ['HTTP/1.1 408 Request Timeout'], r);
      assert.ok(received.every((r) => /x-skein-reason: request_headers_timeout/.test(r)));
      assert.equal(mesh.stat(counter) - before, 200);
      assert.equal(app.requests.get('/slow'), undefined);
    });

    test(`${listener}: a keep-alive connection idle after its response is closed by the idle timeout, and counted`, async () => {
      const counter = `listener.${listener}.downstream_cx_idle_timeout`;
      const before = mesh.stat(counter);
      const s = await connect(addr());
      let raw = '';
      let closed = false;
      s.on('data', (c: Buffer) => { raw += c.toString('latin1'); });
      s.on('close', () => { closed = true; });
      s.write('GET /keep HTTP/1.1\r\nHost: svc\r\n\r\n');
      await eventually(() => (closed ? true : undefined), 'the idle connection to be closed', 10_000);
      assert.deepEqual(statusLines(raw), ['HTTP/1.1 200 OK']);
      assert.match(raw, /keep-alive: timeout=0/i, 'the idle timeout is announced (500 ms rounds down to 0 s)');
      assert.equal(mesh.stat(counter) - before, 1);
    });

    test(`${listener}: slow uploads that stop sending are cut by the stream idle timeout (408, connection closed)`, async () => {
      const active = `listener.${listener}.downstream_rq_active`;
      const counter = `listener.${listener}.downstream_rq_idle_timeout`;
      const before = mesh.stat(counter);
      const base = mesh.stat(active);
      const sockets = await Promise.all(Array.from({ length: 100 }, () => connect(addr())));
      const received = sockets.map(() => '');
      const closed = sockets.map(() => false);
      sockets.forEach((s, i) => {
        s.on('data', (c: Buffer) => { received[i] += c.toString('latin1'); });
        s.on('close', () => { closed[i] = true; });
        s.on('error', () => undefined);
        s.write('POST /upload-slow HTTP/1.1\r\nHost: svc\r\nContent-Length: 100000\r\n\r\nfirst bytes');
      });
      try {
        await eventually(() => (mesh.stat(active) - base === 100 ? true : undefined), `${active} to count the 100 uploads`, 10_000);
        const during = await h1Request(addr(), { host: 'svc', path: '/normal' });
        assert.equal(during.status, 200);
        mesh.clock.advance(12_000); // past the 10 s stream idle timeout
        await eventually(() => (closed.every((c) => c) ? true : undefined), 'every stalled upload to be cut', 10_000);
      } finally {
        for (const s of sockets) s.destroy();
      }
      for (const r of received) assert.deepEqual(statusLines(r), ['HTTP/1.1 408 Request Timeout'], r);
      assert.equal(mesh.stat(counter) - before, 100);
      const afterwards = await h1Request(addr(), { host: 'svc', path: '/normal' });
      assert.equal(afterwards.status, 200);
    });
  }
});
