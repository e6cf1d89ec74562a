/**
 * A real Prometheus (the Debian package, installed by scripts/ensure-debian-tools.sh when
 * missing) scrapes a client sidecar's and a server sidecar's admin /metrics and the control
 * plane's monitoring /metrics; PromQL through its HTTP API returns the exact request counts sent,
 * per route and per version, a traced request's trace id as an exemplar, and the control plane
 * target is up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterClient } from '../../shared/src/sample-app/greeter';
import type { SidecarProcess } from '../../harness/src/sidecar-process';
import { eventually } from '../support/ads-client';
import { inboundOf, Mesh } from '../support/sidecar-mesh';
import { ensurePrometheus, Prometheus } from '../support/prometheus';
import { API_VERSION } from '../support/skein';

const CANARY = 7;
const MAIN = 5;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('Prometheus scrapes the mesh', () => {
  let mesh: Mesh | undefined;
  let prom: Prometheus | undefined;
  let client: SidecarProcess;
  let server: SidecarProcess;
  let greeter: GreeterClient;

  before(async () => {
    ensurePrometheus();
    mesh = await Mesh.start('prometheus');
    // v2 is a backend without a sidecar (a static endpoint); v1 is the server sidecar's app.
    const v2 = mesh.app(await startGreeter({ backend: 'g-v2', version: 'v2' }));
    await mesh.apply([
      { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }],
        subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
        endpoints: [{ address: '127.0.0.1', port: v2.port, labels: { version: 'v2' } }] } },
      { apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' }, spec: { parentRefs: [{ name: 'greeter' }], rules: [
        { name: 'canary', matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }], backendRefs: [{ name: 'greeter', subset: 'v2' }] },
        { name: 'main', backendRefs: [{ name: 'greeter', subset: 'v1' }] },
      ] } },
    ]);
    const v1 = mesh.app(await startGreeter({ backend: 'g-v1', version: 'v1' }));
    server = await mesh.sidecar({ nodeId: 'greeter-v1', service: 'greeter', version: 'v1', app: `${v1.address}:${v1.port}` });
    client = await mesh.clientSidecar('frontend-1');
    await mesh.hosts(client, 'greeter/v1', [inboundOf(server)]);
    await mesh.hosts(client, 'greeter/v2', [`127.0.0.1:${v2.port}`]);
    greeter = mesh.greeter(client, 'greeter:50051');
    const call = (canary: boolean) => new Promise<string>((resolve, reject) => {
      const md = new grpc.Metadata();
      if (canary) md.set('x-canary', 'true');
      if (canary) md.set('traceparent', `00-${TRACE}-00f067aa0ba902b7-01`);
      greeter.SayHello({ name: 'x' }, md, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!.version)));
    });
    for (let i = 0; i < CANARY; i++) assert.equal(await call(true), 'v2');
    for (let i = 0; i < MAIN; i++) assert.equal(await call(false), 'v1');
    prom = await Prometheus.start({ 'client-sidecar': [client.admin], 'server-sidecar': [server.admin], 'control-plane': [mesh.cp.monitoring!] });
  }, { timeout: 600_000 });
  after(async () => {
    await prom?.stop();
    await mesh?.stop();
  });

  /** Polls a PromQL query until it gives `want` (label values -> value), within 60 s. */
  async function expectSeries(promql: string, key: (m: Record<string, string>) => string, want: Record<string, number>): Promise<void> {
    let last: Record<string, number> = {};
    try {
      await eventually(async () => {
        last = Object.fromEntries((await prom!.query(promql)).map((s) => [key(s.metric), Number(s.value[1])]));
        return JSON.stringify(Object.entries(last).sort()) === JSON.stringify(Object.entries(want).sort()) ? true : undefined;
      }, promql, 60_000);
    } catch {
      assert.deepEqual(last, want, promql);
    }
  }

  test('the client sidecar\'s outbound requests per route and version: exactly what was sent', async () => {
    await expectSeries('sum by (route, destination_version) (skein_requests_total{job="client-sidecar",direction="outbound",destination_service="greeter",response_code="200",grpc_status="0"})',
      (m) => `${m['route']} ${m['destination_version']}`, { 'GRPCRoute/greeter/canary v2': CANARY, 'GRPCRoute/greeter/main v1': MAIN });
    await expectSeries('sum by (route) (skein_request_duration_milliseconds_count{job="client-sidecar",direction="outbound"})', (m) => m['route']!,
      { 'GRPCRoute/greeter/canary': CANARY, 'GRPCRoute/greeter/main': MAIN });
  });

  test('the server sidecar counts the inbound requests of its version; histogram_quantile answers from the buckets', async () => {
    await expectSeries('sum by (route, destination_service, destination_version) (skein_requests_total{job="server-sidecar",direction="inbound",response_code="200"})',
      (m) => `${m['route']} ${m['destination_service']} ${m['destination_version']}`, { 'inbound greeter v1': MAIN });
    const p99 = await prom!.query('histogram_quantile(0.99, sum by (le) (skein_request_duration_milliseconds_bucket{job="client-sidecar",direction="outbound"}))');
    assert.equal(p99.length, 1);
    assert.ok(Number(p99[0]!.value[1]) > 0 && Number(p99[0]!.value[1]) < 5000, `p99 ${p99[0]!.value[1]} ms`);
  });

  test('the canary route\'s traced requests left an exemplar with their trace id; the untraced main route none', async () => {
    const found = await eventually(async () => {
      const series = await prom!.exemplars('skein_request_duration_milliseconds_bucket{job="client-sidecar",direction="outbound"}');
      return series.length > 0 ? series : undefined;
    }, 'exemplars of the client sidecar\'s duration buckets', 60_000);
    for (const s of found) {
      assert.equal(s.seriesLabels['route'], 'GRPCRoute/greeter/canary', JSON.stringify(s.seriesLabels));
      for (const e of s.exemplars) assert.deepEqual(e.labels, { trace_id: TRACE });
    }
  });

  test('the workload certificates\' expiry is exported, in the future', async () => {
    const certs = await eventually(async () => {
      const r = await prom!.query('skein_workload_cert_expiry_timestamp_seconds');
      return r.length === 2 ? r : undefined;
    }, 'both sidecars\' certificate expiry', 60_000);
    for (const c of certs) assert.ok(Number(c.value[1]) > Date.now() / 1000, `${c.metric['job']} expires ${c.value[1]}`);
  });

  test('every target is up, the control plane\'s among them, with its xDS metrics', async () => {
    await expectSeries('up', (m) => m['job']!, { 'client-sidecar': 1, 'server-sidecar': 1, 'control-plane': 1 });
    await expectSeries('skein_xds_connected_proxies{job="control-plane",state="SYNCED"}', () => 'synced', { synced: 2 });
  });

  test('the control plane exports the sidecars\' merged route stats: the same counts per route and version', async () => {
    await expectSeries('skein_route_requests_total{job="control-plane",service="greeter"}', (m) => `${m['route']} ${m['version']}`,
      { 'GRPCRoute/greeter/canary v2': CANARY, 'GRPCRoute/greeter/main v1': MAIN });
  });
});
