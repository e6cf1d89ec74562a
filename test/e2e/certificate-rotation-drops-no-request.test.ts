/**
 * Workload certificates rotate under load without a failed call, and a control plane that is
 * down through a renewal point costs nothing but the renewal: the sidecars keep serving with the
 * certificate they have and renew once it is back. Real processes with short lifetimes: the
 * control plane issues 1-minute certificates and the sidecars renew at 5% (±1%) of that.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import { emptyCount, sendAndCount } from '../../shared/src/sample-app/load';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { API_VERSION } from '../support/skein';

interface Identity { spiffeId: string; serial: string; notAfter: string; renewals: number; renewalFailures: number }
const identityOf = async (sc: SidecarProcess): Promise<Identity> => (await (await fetch(`http://${sc.admin}/identity`)).json()) as Identity;
const FAST_RENEWAL = ['--cert-renew-at', '0.05', '--cert-renew-jitter', '0.01'];

describe('certificate rotation drops no request', () => {
  let mesh: Mesh;
  let server: SidecarProcess;
  let client: SidecarProcess;
  let greeter: GreeterClient;

  before(async () => {
    mesh = await Mesh.start('rotation', { controlPlaneArgs: ['--workload-cert-ttl', '1m'] });
    await mesh.apply([{ apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } }]);
    const app = mesh.app(await startGreeter({ backend: 'g-a', version: 'v1' }));
    server = await mesh.sidecar({ nodeId: 'greeter-a', service: 'greeter', app: `${app.address}:${app.port}`, extraArgs: FAST_RENEWAL, logLevel: 'info' });
    client = await mesh.clientSidecar('frontend-1', FAST_RENEWAL);
    await mesh.hosts(client, 'greeter', [inboundOf(server)]);
    greeter = mesh.greeter(client, 'greeter:50051');
  });
  after(async () => { await mesh?.stop(); });

  test('both sidecars renew their certificates several times under steady load, and no call fails', async () => {
    const [s0, c0] = await Promise.all([identityOf(server), identityOf(client)]);
    const load = emptyCount();
    let renewed = false;
    const deadline = Date.now() + 30_000;
    // Calls in rounds until each sidecar has renewed at least twice (about every 3 s).
    while (!renewed && Date.now() < deadline) {
      await sendAndCount([greeter], 100, 4, load);
      const [s, c] = await Promise.all([identityOf(server), identityOf(client)]);
      renewed = s.renewals >= s0.renewals + 2 && c.renewals >= c0.renewals + 2;
    }
    assert.ok(renewed, 'both sidecars renewed twice within 30 s');
    assert.equal(load.errors, 0, `calls failed during rotation: ${load.lastError}`);
    assert.ok(load.total >= 100);
    const [s1, c1] = await Promise.all([identityOf(server), identityOf(client)]);
    assert.notEqual(s1.serial, s0.serial);
    assert.notEqual(c1.serial, c0.serial);
    assert.equal(s1.spiffeId, 'spiffe://skein.local/ns/default/sa/greeter', 'the same identity, a new certificate');
  });

  test('with the control plane down through a renewal point, calls keep succeeding; renewal fails, and succeeds once it is back', async () => {
    await mesh.stopControlPlane();
    const before = await identityOf(server);
    const load = emptyCount();
    await eventually(async () => {
      await sendAndCount([greeter], 50, 4, load);
      return (await identityOf(server)).renewalFailures > before.renewalFailures ? true : undefined;
    }, 'a renewal to fail while the control plane is down', 20_000);
    assert.equal(load.errors, 0, `calls failed while the control plane was down: ${load.lastError}`);
    assert.equal((await identityOf(server)).serial, before.serial, 'still the certificate it had');
    assert.match(server.logs(), /workload certificate renewal failed; retrying/);
    await mesh.restartControlPlane();
    const renewed = await eventually(async () => {
      const now = await identityOf(server);
      return now.serial !== before.serial ? now : undefined;
    }, 'the server sidecar to renew once the control plane is back', 30_000);
    assert.ok(Date.parse(renewed.notAfter) > Date.parse(before.notAfter));
    const afterCalls = await sendAndCount([greeter], 100, 4);
    assert.equal(afterCalls.errors, 0, afterCalls.lastError);
  });
});
