/**
 * The active gauges in /stats agree with what /clusters reports while requests are held open,
 * at both sidecars (client: outbound listener and cluster svc; server: inbound listener and the
 * cluster to its app), and return to 0 when the requests end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { startEdgeMesh, startH2App } from '../support/edge-mesh';
import type { EdgeMesh } from '../support/edge-mesh';
import { eventually } from '../support/ads-client';
import type { Sidecar } from '../../sidecar/src/sidecar';

interface AdminCluster {
  name: string;
  circuitBreakers: { maxRequests: { active: number } };
  hosts: { activeRequests: number; pool?: { sessions?: number; connecting?: number; connected?: number } }[];
}

async function admin(sc: Sidecar): Promise<{ gauges: Record<string, number>; clusters: AdminCluster[] }> {
  const base = `http://${sc.addresses()['admin']}`;
  const stats = await (await fetch(`${base}/stats`)).json() as { gauges: Record<string, number> };
  const clusters = await (await fetch(`${base}/clusters`)).json() as AdminCluster[];
  return { gauges: stats.gauges, clusters };
}

function openConnections(c: AdminCluster): number {
  let n = 0;
  for (const h of c.hosts) n += h.pool?.connected ?? (h.pool?.sessions ?? 0) - (h.pool?.connecting ?? 0);
  return n;
}

describe('/stats active gauges during held-open requests', () => {
  let app: Awaited<ReturnType<typeof startH2App>>;
  let mesh: EdgeMesh;

  before(async () => {
    app = await startH2App();
    mesh = await startEdgeMesh({ appPort: app.port, appProtocol: 'grpc', hop: 'h2' });
  });
  after(async () => { await mesh?.close(); await app?.close(); });

  test('with N requests held, upstream_rq_active / upstream_cx_active / downstream_rq_active / downstream_cx_active match /clusters, then drop to 0', async () => {
    const N = 7;
    const session = http2.connect(`http://${mesh.outbound}`);
    session.on('error', () => undefined);
    const done: Promise<number>[] = [];
    for (let i = 0; i < N; i++) {
      const req = session.request({ ':method': 'GET', ':path': `/hold/${i}`, ':authority': 'svc' });
      req.on('error', () => undefined);
      req.resume();
      done.push(new Promise((resolve) => { let status = 0; req.on('response', (h) => { status = Number(h[':status']); }); req.on('close', () => resolve(status)); }));
    }
    try {
      await eventually(() => (app.held.length === N ? true : undefined), `${N} requests to be held by the app`);
      for (const [sc, cluster, listener] of [[mesh.client, 'svc', 'outbound'], [mesh.server, 'skein.inbound', 'inbound']] as const) {
        const { gauges, clusters } = await admin(sc);
        const c = clusters.find((x) => x.name === cluster)!;
        assert.equal(c.circuitBreakers.maxRequests.active, N, `/clusters ${cluster}: max_requests in use`);
        assert.equal(c.hosts.reduce((a, h) => a + h.activeRequests, 0), N, `/clusters ${cluster}: host active requests`);
        assert.equal(gauges[`cluster.${cluster}.upstream_rq_active`], N, `cluster.${cluster}.upstream_rq_active`);
        assert.equal(gauges[`cluster.${cluster}.upstream_cx_active`], openConnections(c), `cluster.${cluster}.upstream_cx_active agrees with the pool in /clusters`);
        assert.ok(openConnections(c) >= 1);
        assert.equal(gauges[`listener.${listener}.downstream_rq_active`], N, `listener.${listener}.downstream_rq_active`);
        assert.equal(gauges[`listener.${listener}.downstream_cx_active`], 1, `listener.${listener}.downstream_cx_active (one connection)`);
      }
      app.release();
      assert.deepEqual(await Promise.all(done), Array(N).fill(200));
      for (const [sc, cluster, listener] of [[mesh.client, 'svc', 'outbound'], [mesh.server, 'skein.inbound', 'inbound']] as const) {
        await eventually(async () => {
          const { gauges } = await admin(sc);
          return gauges[`cluster.${cluster}.upstream_rq_active`] === 0 && gauges[`listener.${listener}.downstream_rq_active`] === 0 ? true : undefined;
        }, `the ${listener} side's active gauges to drop to 0`);
      }
    } finally {
      session.destroy();
    }
  });
});
