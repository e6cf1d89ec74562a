/**
 * The sidecar watches its own app (real processes: `skein control-plane`, `skein sidecar` with
 * --service, and a Greeter app in this process that the test stops and starts again on the same
 * port, as a crashed and restarted container would).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { h1Request } from '../support/sidecar-apps';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterBackend } from '../../shared/src/sample-app/greeter';
import { API_VERSION } from '../../shared/src/config/types';
import { eventually } from '../support/ads-client';
import { api } from '../support/mesh-api';
import { Mesh } from '../support/sidecar-mesh';
import type { SidecarProcess } from '../../harness/src/sidecar-process';

interface Lease { service: string; address: string; port: number; health: string }

describe('the sidecar watches its app', () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await Mesh.start('app-health');
    // PERMISSIVE: a test calls the inbound port straight, in plaintext, as a peer without a sidecar would.
    await mesh.apply([{ apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }], mtls: 'PERMISSIVE' } }]);
  });
  after(async () => { await mesh.stop(); });

  const leaseOf = async (sc: SidecarProcess): Promise<Lease | undefined> => {
    const { endpoints } = await api<{ endpoints: Lease[] }>(mesh.cp.api, 'GET', '/v1/endpoints');
    return endpoints.find((e) => `${e.address}:${e.port}` === sc.inbound);
  };
  const ready = async (sc: SidecarProcess): Promise<{ status: number; body: { ready: boolean; reason?: string } }> => {
    const res = await fetch(`http://${sc.admin}/ready`);
    return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
  };
  const healthIs = (sc: SidecarProcess, want: string) => eventually(async () => ((await leaseOf(sc))?.health === want ? true : undefined), `the endpoint to be ${want}`);

  test('a dead app is reported UNHEALTHY at once and /ready answers 503 with the reason; back after the healthy threshold', async () => {
    let app: GreeterBackend = await startGreeter({ backend: 'g1', version: 'v1' });
    const port = app.port;
    const sc = await mesh.sidecar({ nodeId: 'watcher-1', service: 'greeter', app: `${app.address}:${app.port}`, extraArgs: ['--app-health-interval', '200ms', '--app-health-unhealthy-threshold', '2', '--app-health-healthy-threshold', '2'] });
    await healthIs(sc, 'HEALTHY');
    await eventually(async () => ((await ready(sc)).status === 200 ? true : undefined), 'ready');
    await app.close();
    await healthIs(sc, 'UNHEALTHY');
    const r = await ready(sc);
    assert.equal(r.status, 503);
    assert.match(r.body.reason!, /the app failed its health check: .*ECONNREFUSED/);
    const stats = await (await fetch(`http://${sc.admin}/stats?filter=cluster.skein.inbound.health_check.`)).json() as { counters: Record<string, number> };
    assert.ok((stats.counters['cluster.skein.inbound.health_check.network_failure'] ?? 0) >= 2, JSON.stringify(stats));
    app = mesh.app(await startGreeter({ backend: 'g1', version: 'v1', port }));
    await healthIs(sc, 'HEALTHY');
    assert.equal((await ready(sc)).status, 200);
  });

  test('a request that finds the app refusing connections marks it down without waiting for a probe', async () => {
    const app = await startGreeter({ backend: 'g2', version: 'v1' });
    // Probes every hour: only the first one runs during this test.
    const sc = await mesh.sidecar({ nodeId: 'watcher-2', service: 'greeter', app: `${app.address}:${app.port}`, extraArgs: ['--app-health-interval', '1h'] });
    await healthIs(sc, 'HEALTHY');
    await eventually(async () => ((await ready(sc)).status === 200 ? true : undefined), 'ready');
    await app.close();
    // Calls straight to the inbound listener, as a peer sidecar sends them. The app was never
    // reached, so HTTP/2 gets REFUSED_STREAM (any client may retry it elsewhere), HTTP/1.1 a 503.
    const h2 = http2.connect(`http://${sc.inbound}`);
    const rst = await new Promise<number>((resolve) => {
      const st = h2.request({ ':method': 'POST', ':path': '/greeter.Greeter/SayHello', ':authority': 'greeter:50051', 'content-type': 'application/grpc' });
      st.on('error', () => undefined);
      st.on('close', () => resolve(st.rstCode ?? -1));
      st.end();
    });
    h2.close();
    assert.equal(rst, http2.constants.NGHTTP2_REFUSED_STREAM);
    await healthIs(sc, 'UNHEALTHY');
    assert.match((await ready(sc)).body.reason!, /a request found the app refusing connections/);
    const h1 = await h1Request(sc.inbound!, { host: 'greeter:50051', path: '/' });
    assert.equal(h1.status, 503);
    assert.equal(h1.headers['x-skein-reason'], 'app_unavailable');
    const stats = await (await fetch(`http://${sc.admin}/stats?filter=app_unavailable`)).json() as { counters: Record<string, number> };
    assert.ok(Object.entries(stats.counters).some(([k, v]) => k.includes('app_unavailable') && v >= 2), JSON.stringify(stats));
  });

  test('--app-health none turns the watch off; bad values are refused naming the flag', async () => {
    const { startSidecarProcess } = await import('../../harness/src/sidecar-process');
    for (const [args, message] of [[['--app-health', 'ping'], /--app-health: must be tcp, grpc, grpc:SERVICE, http:\/PATH or none/], [['--app-health', 'http:nope'], /--app-health: http:PATH needs a path/],
      [['--app-health-interval', '0'], /--app-health-interval: must be at least 1ms/], [['--app-health-healthy-threshold', '0'], /--app-health-healthy-threshold: must be an integer from 1 to 100/],
      // A start-up failure after the admin port opened must still end the process (it used to hang).
      [['--app', '127.0.0.1'], /--app: "127\.0\.0\.1" must be host:port/]] as const) {
      await assert.rejects(startSidecarProcess({ xds: mesh.cp.xds, api: mesh.cp.api, nodeId: 'bad', service: 'greeter', app: '127.0.0.1:1', extraArgs: [...args] }), (e: Error) => { assert.match(e.message, message); return true; });
    }
    const sc = await mesh.sidecar({ nodeId: 'unwatched', service: 'greeter', app: '127.0.0.1:1', extraArgs: ['--app-health', 'none'] });
    await healthIs(sc, 'HEALTHY');
    const stats = await (await fetch(`http://${sc.admin}/stats?filter=cluster.skein.inbound.health_check.`)).json() as { counters: Record<string, number> };
    assert.deepEqual(stats.counters, {}, 'no probe runs');
  });
});
