/**
 * A full root rotation under load (skein ca rotate): the new root is trusted everywhere first,
 * then issues; both sidecars move to certificates from it by themselves; the old root leaves the
 * bundle; and no call fails at any point. Real processes, real TLS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import { emptyCount, sendAndCount } from '../../shared/src/sample-app/load';
import type { SplitCount } from '../../shared/src/sample-app/load';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { API_VERSION, call } from '../support/skein';

interface Rotation { phase: string; oldRootSerial?: string; newRootSerial?: string; waitingFor?: string }
const rootOf = async (sc: SidecarProcess): Promise<string | null> => ((await (await fetch(`http://${sc.admin}/identity`)).json()) as { issuedByRoot: string | null }).issuedByRoot;
const certsIn = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;

describe('root rotation drops no request', () => {
  let mesh: Mesh;
  let server: SidecarProcess;
  let client: SidecarProcess;
  let greeter: GreeterClient;

  before(async () => {
    mesh = await Mesh.start('root-rotation');
    await mesh.apply([{ apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } }]);
    const app = mesh.app(await startGreeter({ backend: 'g-a', version: 'v1' }));
    server = await mesh.sidecar({ nodeId: 'greeter-a', service: 'greeter', app: `${app.address}:${app.port}`, logLevel: 'info' });
    client = await mesh.clientSidecar('frontend-1');
    await mesh.hosts(client, 'greeter', [inboundOf(server)]);
    greeter = mesh.greeter(client, 'greeter:50051');
  });
  after(async () => { await mesh?.stop(); });

  test('trust, issue, finish under steady load: both sidecars renew from the new root by themselves, the old root leaves, no call fails', async () => {
    const oldRoot = await rootOf(server);
    assert.ok(oldRoot !== null);
    const load: SplitCount = emptyCount();
    let stop = false;
    const running = (async () => { while (!stop) await sendAndCount([greeter], 50, 4, load); })();
    try {
      const started = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: {} });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      const rot = started.body.rotation as Rotation;
      assert.equal(rot.phase, 'trust');
      assert.equal(rot.oldRootSerial, oldRoot);
      assert.equal(certsIn(started.body.trustBundle as string), 2, 'both roots are trusted');
      // The control plane moves on once every sidecar has ACKed the bundle with both roots.
      await eventually(async () => ((await call(mesh.cp.api, 'GET', '/v1/ca')).body.rotation.phase === 'issue' ? true : undefined), 'the issue phase', 20_000);
      // Each sidecar sees the new root first in ROOTCA and renews from it.
      await eventually(async () => ((await rootOf(server)) === rot.newRootSerial && (await rootOf(client)) === rot.newRootSerial ? true : undefined), 'both sidecars to hold certificates from the new root', 20_000);
      const calls = load.total;
      await eventually(() => (load.total >= calls + 100 ? true : undefined), '100 more calls on new-root certificates');
      const finished = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: { finish: true } });
      assert.equal(finished.status, 200, JSON.stringify(finished.body));
      assert.equal(finished.body.rotation.phase, 'none');
      const bundle = finished.body.trustBundle as string;
      assert.equal(certsIn(bundle), 1, 'only the new root is left');
      assert.equal(new X509Certificate(bundle).serialNumber.toLowerCase(), rot.newRootSerial);
      assert.equal(fs.readFileSync(mesh.cp.trustBundleFile, 'utf8').trim(), bundle.trim(), 'the bundle file follows');
      const before = load.total;
      await eventually(() => (load.total >= before + 200 ? true : undefined), '200 calls after the old root left');
    } finally {
      stop = true;
      await running;
    }
    assert.equal(load.errors, 0, `calls failed during the rotation: ${load.lastError}`);
    // A sidecar that joins now gets its identity from the new root and is served.
    const late = await mesh.clientSidecar('frontend-2');
    await mesh.hosts(late, 'greeter', [inboundOf(server)]);
    assert.equal(await rootOf(late), (await call(mesh.cp.api, 'GET', '/v1/ca')).body.rotation.phase === 'none' ? new X509Certificate(fs.readFileSync(mesh.cp.trustBundleFile)).serialNumber.toLowerCase() : null);
    const r = await sendAndCount([mesh.greeter(late, 'greeter:50051')], 20, 2);
    assert.equal(r.errors, 0, r.lastError);
  });

  test('a second rotation while one is running is refused; --finish with none running is refused; both name why', async () => {
    const finish = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: { finish: true } });
    assert.equal(finish.status, 409, JSON.stringify(finish.body));
    assert.match(finish.body.error.message, /no root rotation in progress/);
    const bad = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: { now: true } });
    assert.equal(bad.status, 422);
    const anon = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: {}, anonymous: true });
    assert.equal(anon.status, 401);
    const first = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: {} });
    assert.equal(first.status, 200);
    const second = await call(mesh.cp.api, 'POST', '/v1/ca/rotate', { body: {} });
    assert.equal(second.status, 409);
    assert.match(second.body.error.message, /already in its (trust|issue) phase/);
  });
});
