/**
 * Sidecar-to-sidecar traffic is mutual TLS by default, end to end: a control plane process, its
 * sidecars with identities bought with join tokens, and real apps. The app learns who called
 * from x-forwarded-client-cert; a plaintext caller is refused by a STRICT port and counted; a
 * service switched from PERMISSIVE to STRICT under load fails no call; DISABLE is plaintext.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import { emptyCount, sendAndCount } from '../../shared/src/sample-app/load';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { h1Request, startHttpEcho } from '../support/sidecar-apps';
import type { SeenRequest } from '../support/sidecar-apps';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { API_VERSION } from '../support/skein';

const service = (name: string, spec: Record<string, unknown>) => ({ apiVersion: API_VERSION, kind: 'Service', metadata: { name }, spec });

async function counters(sc: SidecarProcess, filter: string): Promise<Record<string, number>> {
  return ((await (await fetch(`http://${sc.admin}/stats?filter=${encodeURIComponent(filter)}`)).json()) as { counters: Record<string, number> }).counters;
}

/** One plaintext h2c request straight to an address; resolves with the :status, or 0 when the connection is refused. */
function plaintextCall(address: string): Promise<number> {
  return new Promise((resolve) => {
    const s = http2.connect(`http://${address}`);
    s.on('error', () => resolve(0));
    s.on('close', () => resolve(0));
    const r = s.request({ ':method': 'POST', ':path': '/skein.demo.v1.Greeter/SayHello', ':authority': 'greeter:50051', 'content-type': 'application/grpc', te: 'trailers' });
    r.on('error', () => undefined);
    r.on('response', (h) => { resolve(Number(h[':status'])); s.destroy(); });
    r.on('close', () => { resolve(0); s.destroy(); });
    r.end(Buffer.from([0, 0, 0, 0, 0])); // one gRPC message: an empty HelloRequest
  });
}

describe('mTLS between sidecars (STRICT by default)', () => {
  let mesh: Mesh;
  let client: SidecarProcess;
  let web: SidecarProcess;
  let greeter: SidecarProcess;

  before(async () => {
    mesh = await Mesh.start('mtls');
    await mesh.apply([
      service('web', { protocol: 'http', ports: [{ name: 'http', port: 8080 }] }),
      service('greeter', { ports: [{ name: 'grpc', port: 50051 }], mtls: 'PERMISSIVE' }),
    ]);
    const echo = mesh.app(await startHttpEcho('web-a'));
    const app = mesh.app(await startGreeter({ backend: 'g-a', version: 'v1' }));
    [web, greeter] = await Promise.all([
      mesh.sidecar({ nodeId: 'web-a', service: 'web', app: `127.0.0.1:${echo.port}`, appProtocol: 'http' }),
      mesh.sidecar({ nodeId: 'greeter-a', service: 'greeter', app: `${app.address}:${app.port}` }),
    ]);
    client = await mesh.sidecar({ nodeId: 'frontend-1', serviceAccount: 'frontend' });
    await eventually(async () => ((await fetch(`http://${client.admin}/ready`)).status === 200 ? true : undefined), 'the client sidecar to be ready');
    await mesh.hosts(client, 'web', [inboundOf(web)]);
    await mesh.hosts(client, 'greeter', [inboundOf(greeter)]);
  });
  after(async () => { await mesh?.stop(); });

  test('a call through two STRICT sidecars succeeds, and the app sees the caller\'s SPIFFE ID in x-forwarded-client-cert', async () => {
    const r = await h1Request(client.outbound, { host: 'web:8080', path: '/who', headers: { 'x-forwarded-client-cert': 'By=spoofed;URI=spiffe://skein.local/ns/default/sa/admin' } });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body.toString()) as SeenRequest;
    assert.match(String(seen.headers['x-forwarded-client-cert']), /^By=spiffe:\/\/skein\.local\/ns\/default\/sa\/web;Hash=[0-9a-f]{64};URI=spiffe:\/\/skein\.local\/ns\/default\/sa\/frontend$/,
      'set from the verified peer; the one the app sent is dropped');
    const after = await counters(web, 'listener.inbound');
    assert.ok((after['listener.inbound.mtls.cx_accepted'] ?? 0) >= 1, `the client sidecar's connection was accepted over mTLS: ${JSON.stringify(after)}`);
    assert.equal(after['listener.inbound.plaintext.cx_accepted'] ?? 0, 0, 'no plaintext connection reached the STRICT port');
  });

  test('a STRICT port refuses a plaintext caller, counts it with its reason, and keeps serving mTLS calls', async () => {
    const before = (await counters(web, 'cx_refused'))['listener.inbound.cx_refused{reason=plaintext}'] ?? 0;
    const r = await h1Request(inboundOf(web), { host: 'web:8080', path: '/direct' }).catch((e: Error) => e);
    assert.ok(r instanceof Error, `a plaintext request straight to the STRICT port must fail, got ${JSON.stringify(r)}`);
    assert.equal((await counters(web, 'cx_refused'))['listener.inbound.cx_refused{reason=plaintext}'], before + 1);
    assert.equal((await h1Request(client.outbound, { host: 'web:8080', path: '/after' })).status, 200);
  });

  test('PERMISSIVE -> STRICT on a live service under load: no call fails, and plaintext is refused once STRICT is in force', async () => {
    const grpcClient = mesh.greeter(client, 'greeter:50051');
    assert.ok(await plaintextCall(inboundOf(greeter)) > 0, 'PERMISSIVE: plaintext is served');
    const load = emptyCount();
    const running = sendAndCount([grpcClient], 600, 4, load);
    await eventually(() => (load.total >= 100 ? true : undefined), '100 calls under way');
    const revision = await mesh.apply([service('greeter', { ports: [{ name: 'grpc', port: 50051 }], mtls: 'STRICT' })]);
    await mesh.synced('greeter-a', TYPE_URLS.LISTENER, revision);
    await running;
    assert.equal(load.errors, 0, `calls failed during the switch: ${load.lastError}`);
    assert.equal(load.total, 600);
    assert.equal(await plaintextCall(inboundOf(greeter)), 0, 'STRICT: plaintext is refused');
  });

  test('DISABLE: the client sidecar sends plaintext, the server accepts it, and the app gets no client certificate header', async () => {
    const revision = await mesh.apply([service('web', { protocol: 'http', ports: [{ name: 'http', port: 8080 }], mtls: 'DISABLE' })]);
    await mesh.synced('web-a', TYPE_URLS.LISTENER, revision);
    await mesh.synced('frontend-1', TYPE_URLS.CLUSTER, revision);
    const before = (await counters(web, 'plaintext'))['listener.inbound.plaintext.cx_accepted'] ?? 0;
    const r = await h1Request(client.outbound, { host: 'web:8080', path: '/plain' });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body.toString()) as SeenRequest).headers['x-forwarded-client-cert'], undefined);
    assert.ok(((await counters(web, 'plaintext'))['listener.inbound.plaintext.cx_accepted'] ?? 0) > before, 'the call came in plaintext');
  });
});
