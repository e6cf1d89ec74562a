/**
 * The inbound port's mesh mTLS (listener/sniffing-server.ts with identity/mesh-tls.ts), over real
 * sockets and real TLS 1.3 with certificates from the mesh CA: what each mode accepts and
 * refuses, that every refusal is counted with its reason while the port keeps serving, and that
 * the app learns the verified caller through x-forwarded-client-cert.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { FakeClock } from '../../../shared/src/clock';
import { silentLogger } from '../../../shared/src/log';
import { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import type { IssuedIdentity } from '../../../shared/src/identity/rotating-identity';
import { MeshTls } from '../../../sidecar/src/identity/mesh-tls';
import { sniffingServer } from '../../../sidecar/src/listener/sniffing-server';
import type { InboundMode } from '../../../sidecar/src/listener/sniffing-server';
import { peerIdentityOf } from '../../../sidecar/src/listener/peer-identity';
import { StringMatcher } from '../../../sidecar/src/route/string-matcher';
import type { UpstreamTlsConfig } from '../../../sidecar/src/upstream/cluster-config';
import { testCa, workloadIdentity } from '../../support/test-ca';
import type { TestCa } from '../../support/test-ca';

const HOUR = 3600_000;

async function meshTlsOf(id: IssuedIdentity): Promise<MeshTls> {
  const rot = new RotatingIdentity({ issue: async () => id, clock: new FakeClock(), log: silentLogger(), what: 'test' });
  await rot.start();
  rot.close();
  return new MeshTls(rot, id.spiffeId, 'skein.local', silentLogger());
}

const anyMeshId: UpstreamTlsConfig = { allowedIds: [], alpn: [], sni: '', minVersion: 'TLSv1.3' };
const only = (sa: string): UpstreamTlsConfig => ({ ...anyMeshId, allowedIds: [new StringMatcher('exact', `spiffe://skein.local/ns/default/sa/${sa}`, false, undefined)] });

describe('the inbound port: mesh mTLS by mode', () => {
  let mesh: TestCa;
  let foreign: TestCa;
  let server: MeshTls;
  let client: MeshTls;
  let port = 0;
  let meshRoots = '';
  let mode: InboundMode = 'STRICT';
  let listener: net.Server;
  const refused = new Map<string, number>();
  const accepted = { mtls: 0, plaintext: 0 };
  /** What the app saw: the x-forwarded-client-cert the sidecar would set, per protocol. */
  const handler = (socket: unknown) => peerIdentityOf(socket)?.xfcc ?? 'none';

  before(async () => {
    // The mesh root is made 3 hours "ago", so a leaf issued 2 hours ago for 1 hour is expired now.
    mesh = await testCa('skein.local', new FakeClock(Date.now() - 3 * HOUR));
    foreign = await testCa('skein.local');
    const serverId = await workloadIdentity(mesh, 'reviews');
    meshRoots = serverId.trustBundlePem;
    server = await meshTlsOf(serverId);
    client = await meshTlsOf(await workloadIdentity(mesh, 'frontend'));
    const h1 = http.createServer((req, res) => res.end(`h1 ${handler(req.socket)}`));
    const h2 = http2.createServer();
    h2.on('stream', (s) => { s.respond({ ':status': 200 }); s.end(`h2 ${handler(s.session!.socket)}`); });
    listener = sniffingServer(h1, h2, {
      tls: {
        mode: () => mode, contextOptions: () => server.contextOptions('TLSv1.3'), generation: () => server.generation(), peerOf: (c) => server.peerOf(c),
        accepted: (how) => { accepted[how]++; },
        refused: (reason) => { refused.set(reason, (refused.get(reason) ?? 0) + 1); },
      },
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    port = (listener.address() as net.AddressInfo).port;
  });
  after(() => { listener?.close(); mesh?.close(); foreign?.close(); });

  /** One h2 request; resolves with the body of a 200, rejects when there is no response. */
  function h2Get(opts: tls.ConnectionOptions | undefined): Promise<string> {
    return new Promise((resolve, reject) => {
      const session = opts === undefined ? http2.connect(`http://127.0.0.1:${port}`) : http2.connect(`https://127.0.0.1:${port}`, { ...opts, ALPNProtocols: ['h2'] });
      session.on('error', reject);
      const req = session.request({ ':path': '/' });
      req.on('error', reject);
      let status = 0;
      let body = '';
      req.on('response', (h) => { status = Number(h[':status']); });
      req.setEncoding('utf8');
      req.on('data', (d: string) => { body += d; });
      req.on('close', () => {
        session.destroy();
        if (status === 200) resolve(body);
        else reject(new Error(`no response (status ${status})`));
      });
      req.end();
    });
  }
  /** One HTTP/1.1 request over mTLS (ALPN http/1.1). */
  function h1Get(opts: tls.ConnectionOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/', ...opts, agent: false } as https.RequestOptions, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
  }
  const refusedCount = (reason: string) => refused.get(reason) ?? 0;
  const XFCC = /^By=spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews;Hash=[0-9a-f]{64};URI=spiffe:\/\/skein\.local\/ns\/default\/sa\/frontend$/;

  test('STRICT: an h2 call over mTLS is served, and the app sees the caller in x-forwarded-client-cert', async () => {
    mode = 'STRICT';
    const body = await h2Get(client.forUpstream('reviews', only('reviews'), 'h2')());
    assert.match(body.replace(/^h2 /, ''), XFCC);
    assert.ok(body.startsWith('h2 '));
  });

  test('STRICT: an HTTP/1.1 call over mTLS (ALPN http/1.1) is served the same way', async () => {
    const body = await h1Get(client.forUpstream('reviews', anyMeshId, 'h1')());
    assert.ok(body.startsWith('h1 '), body);
    assert.match(body.slice(3), XFCC);
  });

  const strictRefusals: [string, string, () => Promise<tls.ConnectionOptions | undefined>][] = [
    ['a plaintext h2c connection', 'plaintext', async () => undefined],
    ['a client certificate from a foreign CA', 'untrusted_certificate', async () => {
      const f = await workloadIdentity(foreign, 'frontend');
      // It trusts the mesh root, so only the server's check of the client can fail.
      return { key: f.keyPem, cert: f.certChainPem, ca: meshRoots, checkServerIdentity: () => undefined };
    }],
    ['an expired client certificate', 'untrusted_certificate', async () => {
      const expired = await workloadIdentity(mesh, 'frontend', { issuedAt: Date.now() - 2 * HOUR, ttlMs: HOUR });
      assert.ok(expired.notAfter < Date.now(), 'the certificate is expired');
      return { key: expired.keyPem, cert: expired.certChainPem, ca: expired.trustBundlePem, checkServerIdentity: () => undefined };
    }],
    ['no client certificate at all', 'untrusted_certificate', async () => ({ ca: meshRoots, checkServerIdentity: () => undefined })],
  ];
  for (const [what, reason, make] of strictRefusals) {
    test(`STRICT refuses ${what} (counted as ${reason}), and the next mTLS call is served`, async () => {
      mode = 'STRICT';
      const before = refusedCount(reason);
      await assert.rejects(h2Get(await make()));
      assert.equal(refusedCount(reason), before + 1);
      assert.match(await h2Get(client.forUpstream('reviews', anyMeshId, 'h2')()), /^h2 By=/);
    });
  }

  test('the client side refuses a server whose SPIFFE ID is not allowed for the destination, naming both', async () => {
    await assert.rejects(h2Get(client.forUpstream('ratings', only('ratings'), 'h2')()), /cluster ratings: the server is spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews, which is not allowed for this destination/);
  });

  test('PERMISSIVE serves mTLS and plaintext on the same port; plaintext callers get no x-forwarded-client-cert', async () => {
    mode = 'PERMISSIVE';
    const a = { ...accepted };
    assert.match(await h2Get(client.forUpstream('reviews', anyMeshId, 'h2')()), /^h2 By=/);
    assert.equal(await h2Get(undefined), 'h2 none');
    assert.deepEqual(accepted, { mtls: a.mtls + 1, plaintext: a.plaintext + 1 });
  });

  test('DISABLE serves plaintext and refuses a TLS handshake', async () => {
    mode = 'DISABLE';
    const before = refusedCount('tls_disabled');
    assert.equal(await h2Get(undefined), 'h2 none');
    await assert.rejects(h2Get(client.forUpstream('reviews', anyMeshId, 'h2')()));
    assert.equal(refusedCount('tls_disabled'), before + 1);
  });
});
