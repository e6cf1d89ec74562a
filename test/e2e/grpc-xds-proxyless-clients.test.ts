import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { SKEIN_MAIN, startControlPlaneProcess } from '../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { demoConfig } from '../../cli/src/demo/demo-config';
import { startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterBackend, GreeterClient, HelloReply } from '../../shared/src/sample-app/greeter';
import { sendAndCount, shares } from '../../shared/src/sample-app/load';
import { xdsGreeterClient } from '../../shared/src/sample-app/xds-client';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { eventually } from '../support/ads-client';
import { api, Heartbeat, proxy } from '../support/mesh-api';

/**
 * Proof with a real, independently written xDS client: @grpc/grpc-js-xds dialing xds:///greeter,
 * against `skein control-plane` running as its own process. Nothing is mocked.
 * Split checks use 1000 calls and a 5-point tolerance: at least 4 standard deviations.
 */
describe('proxyless gRPC clients (@grpc/grpc-js-xds) against the control plane process', () => {
  const NODE = 'e2e-client';
  let dir: string;
  let cp: ControlPlaneProcess;
  let client: GreeterClient;
  const backends: GreeterBackend[] = [];
  const beats: Heartbeat[] = [];

  /** Waits until the client has ACKed `type` as sent from config revision >= `revision`. */
  const synced = (type: string, revision: number) => eventually(async () => {
    const p = await proxy(cp.api, NODE);
    const t = p?.types.find((x) => x.typeUrl === type);
    return p?.state === 'SYNCED' && t !== undefined && (t.sentRevision ?? 0) >= revision ? p : undefined;
  }, `${NODE} to ACK ${type.slice(type.lastIndexOf('.') + 1)} of revision ${revision}`);

  const canary = async (v1: number, v2: number) => {
    const r = await api<{ revision: number }>(cp.api, 'POST', '/v1/canary', { route: 'greeter', weights: { v1, v2 } });
    await synced(TYPE_URLS.ROUTE, r.revision);
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-e2e-'));
    // grpc-js-xds takes only insecure or google_default channel credentials from its bootstrap,
    // so these clients use the control plane's plaintext loopback listener.
    cp = await startControlPlaneProcess({ dataDir: dir, logLevel: 'warn', extraArgs: ['--xds-insecure-listen', '127.0.0.1:0'] });
    for (const [backend, version] of [['v1-a', 'v1'], ['v1-b', 'v1'], ['v2-a', 'v2'], ['v2-static', 'v2']] as const) backends.push(await startGreeter({ backend, version }));
    await api(cp.api, 'POST', '/v1/config', demoConfig(backends[3]!.port, { v1: 50, v2: 50 }));
    for (const b of backends.slice(0, 3)) beats.push(await new Heartbeat(cp.api, b).start());
    client = xdsGreeterClient('greeter', cp.xdsInsecure!, NODE);
  });

  after(async () => {
    for (const h of beats) h.stop();
    client?.close();
    await Promise.all(backends.map((b) => b.close()));
    await cp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('routes RPCs to endpoints from the registry and from static config', async () => {
    const c = await sendAndCount([client], 400);
    assert.equal(c.errors, 0, c.lastError);
    for (const b of ['v1-a', 'v1-b', 'v2-a', 'v2-static']) assert.ok((c.byBackend.get(b) ?? 0) > 0, `${b} got no calls: ${JSON.stringify([...c.byBackend])}`);
    const p = await proxy(cp.api, NODE);
    assert.match(p!.userAgent, /gRPC Node/);
    assert.equal(p!.types.length, 4);
  });

  test('shifts the observed split when canary weights change through the API, without restarting the client', async () => {
    await canary(90, 10);
    const before = await sendAndCount([client], 1000);
    assert.equal(before.errors, 0, before.lastError);
    assert.ok(Math.abs(shares(before)['v2']! - 10) <= 5, `v2 share ${shares(before)['v2']}% for weight 10`);
    await canary(20, 80);
    const afterShift = await sendAndCount([client], 1000);
    assert.equal(afterShift.errors, 0, afterShift.lastError);
    assert.ok(Math.abs(shares(afterShift)['v2']! - 80) <= 5, `v2 share ${shares(afterShift)['v2']}% for weight 80`);
  });

  test('sends every call with x-canary: true to v2, whatever the weights', async () => {
    const md = new grpc.Metadata();
    md.set('x-canary', 'true');
    for (let i = 0; i < 50; i++) {
      const r = await new Promise<HelloReply>((resolve, reject) => client.SayHello({ name: 'c' }, md, { deadline: Date.now() + 5000 }, (e, v) => (e ? reject(e) : resolve(v!))));
      assert.equal(r.version, 'v2');
    }
  });

  test('shows a rejected resource as NACKED with the client error, while the client keeps its last good config', async () => {
    // gRPC rejects a retry policy with num_retries 0 (gRFC A44); Envoy and the skein sidecar read it
    // as "one attempt, no retries" (its per-try timeout still applies). The dry-run warns about it.
    const route = (retries: number) => {
      const docs = demoConfig(backends[3]!.port, { v1: 20, v2: 80 }) as { kind: string; spec: { rules: { retry?: { retries: number } }[] } }[];
      const doc = docs.find((d) => d.kind === 'GRPCRoute')!;
      const spec = doc.spec;
      for (const r of spec.rules) if (r.retry !== undefined) r.retry.retries = retries;
      return doc;
    };
    // The dry run forecasts it, naming this client, and the NACK that comes is the one forecast.
    const dry = await api<{ dryRun: boolean; warnings: { nodeId: string; userAgent: string; typeUrl: string; resource: string; message: string }[] }>(cp.api, 'POST', '/v1/config?dryRun=true', route(0));
    assert.equal(dry.dryRun, true);
    assert.equal(dry.warnings.length, 1, JSON.stringify(dry.warnings));
    const w = dry.warnings[0]!;
    assert.equal(w.nodeId, NODE);
    assert.match(w.userAgent, /^gRPC Node Pure JS\/1\./);
    assert.equal(w.typeUrl, TYPE_URLS.ROUTE);
    assert.match(w.message, /Invalid policy\.num_retries\.value: 0/);
    const clean = await api<{ warnings: unknown[] }>(cp.api, 'POST', '/v1/config?dryRun=true', route(1));
    assert.deepEqual(clean.warnings, [], 'a retry policy with retries >= 1 is accepted: no warning');
    const file = path.join(dir, 'route0.json');
    fs.writeFileSync(file, JSON.stringify(route(0)));
    const cli = spawnSync(process.execPath, [SKEIN_MAIN, 'apply', '-f', file, '--dry-run', '--api', cp.api, '--admin-token-file', cp.adminTokenFile, '--ca-file', cp.trustBundleFile], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(cli.status, 3, `${cli.stdout}\n${cli.stderr}`);
    assert.match(cli.stdout, new RegExp(`warning: ${NODE} \\(gRPC Node Pure JS/[^)]+\\) will reject RDS \\S+: .*num_retries`));
    const bad = await api<{ revision: number }>(cp.api, 'POST', '/v1/config', route(0));
    const p = await eventually(async () => {
      const s = await proxy(cp.api, NODE);
      return s?.types.find((t) => t.typeUrl === TYPE_URLS.ROUTE)?.state === 'NACKED' ? s : undefined;
    }, 'RDS to be NACKED');
    const rds = p.types.find((t) => t.typeUrl === TYPE_URLS.ROUTE)!;
    assert.equal(p.state, 'NACKED');
    assert.ok(rds.lastNack!.message.includes(w.message.slice(w.message.indexOf('Invalid'))), `forecast "${w.message}" vs NACK "${rds.lastNack!.message}"`);
    assert.equal(rds.sentRevision, bad.revision);
    assert.notEqual(rds.ackedVersion, rds.sentVersion);
    const during = await sendAndCount([client], 1000);
    assert.equal(during.errors, 0, during.lastError);
    assert.ok(Math.abs(shares(during)['v2']! - 80) <= 5, 'routing is unchanged');
    const fixed = await api<{ revision: number }>(cp.api, 'POST', '/v1/config', route(2));
    const ok = await synced(TYPE_URLS.ROUTE, fixed.revision);
    assert.match(ok.types.find((t) => t.typeUrl === TYPE_URLS.ROUTE)!.lastNack!.message, /num_retries/, 'the NACK stays readable after recovery');
  });

  for (const policy of ['least_request', 'random', 'peak_ewma']) {
    test(`accepts a ${policy} BackendPolicy: proxyless clients take the round-robin fallback in load_balancing_policy`, async () => {
      const r = await api<{ revision: number }>(cp.api, 'POST', '/v1/config', { apiVersion: 'skein.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'greeter' }, spec: { targetRef: { name: 'greeter' }, loadBalancer: { policy } } });
      const p = await synced(TYPE_URLS.CLUSTER, r.revision);
      assert.equal(p.types.find((t) => t.typeUrl === TYPE_URLS.CLUSTER)!.state, 'SYNCED', 'not NACKed');
      const c = await sendAndCount([client], 400);
      assert.equal(c.errors, 0, c.lastError);
      for (const b of ['v1-a', 'v1-b', 'v2-a', 'v2-static']) assert.ok((c.byBackend.get(b) ?? 0) > 0, `${b} got no calls: ${JSON.stringify([...c.byBackend])}`);
      const back = await api<{ revision: number }>(cp.api, 'POST', '/v1/config', { apiVersion: 'skein.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'greeter' }, spec: { targetRef: { name: 'greeter' }, loadBalancer: { policy: 'round_robin' } } });
      await synced(TYPE_URLS.CLUSTER, back.revision);
    });
  }

  test('drops an instance whose lease expires from EDS within seconds (the process is still up)', async () => {
    const doomed = await startGreeter({ backend: 'v2-doomed', version: 'v2' });
    backends.push(doomed);
    const hb = await new Heartbeat(cp.api, doomed, '1s', 200).start();
    await eventually(async () => ((await sendAndCount([client], 100)).byBackend.get('v2-doomed') ?? 0) > 0 || undefined, 'the new instance to get traffic');
    hb.stop();
    await eventually(async () => {
      const c = await sendAndCount([client], 300);
      return c.errors === 0 && !c.byBackend.has('v2-doomed') ? true : undefined;
    }, 'the expired instance to leave EDS');
    const { endpoints } = await api<{ endpoints: { node: string }[] }>(cp.api, 'GET', '/v1/endpoints');
    assert.ok(!endpoints.some((e) => e.node === 'v2-doomed'));
  });

  test('keeps serving while the control plane is down, and after a restart the client reconnects and gets the same config', async () => {
    const before = (await proxy(cp.api, NODE))!;
    const edsBefore = await api(cp.api, 'GET', '/v1/xds?type=endpoints');
    const versions = Object.fromEntries(before.types.map((t) => [t.typeUrl, t.ackedVersion]));
    // No instance re-registers during the restart: EDS must come back from the saved registry.
    for (const h of beats) h.stop();
    const insecureListen = cp.xdsInsecure!;
    const apiListen = new URL(cp.api).host;
    assert.equal(await cp.stop(), 0, 'clean exit on SIGTERM');
    const down = await sendAndCount([client], 300);
    assert.equal(down.errors, 0, `calls fail while the control plane is down: ${down.lastError}`);
    cp = await startControlPlaneProcess({ dataDir: dir, apiListen, logLevel: 'warn', extraArgs: ['--xds-insecure-listen', insecureListen] });
    const after = await eventually(async () => {
      const p = await proxy(cp.api, NODE);
      return p?.state === 'SYNCED' && p.types.length === 4 ? p : undefined;
    }, 'the client to reconnect and ACK everything', 30_000);
    const edsAfter = await api(cp.api, 'GET', '/v1/xds?type=endpoints');
    for (const t of after.types) assert.equal(t.ackedVersion, versions[t.typeUrl], `${t.typeUrl} version changed across the restart: ${JSON.stringify({ before, after, edsBefore, edsAfter })}`);
    for (const h of beats) { h.retarget(cp.api); await h.start(); } // saved lease ids still renew
    const c = await sendAndCount([client], 1000);
    assert.equal(c.errors, 0, c.lastError);
    assert.ok(Math.abs(shares(c)['v2']! - 80) <= 5, 'the split survived the restart');
  });

  test('applies a Fault abort added to a route (grpcStatus 14, then httpStatus 503, at 100%) as UNAVAILABLE and stays SYNCED; a LocalRateLimit is skipped, never NACKed', async () => {
    const FAULT_NODE = 'e2e-fault-client';
    const V = 'skein.dev/v1alpha1';
    const service = { apiVersion: V, kind: 'Service', metadata: { name: 'faulty' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50052 }], endpoints: [{ address: '127.0.0.1', port: backends[0]!.port }] } };
    const route = (filters: unknown[]) => ({ apiVersion: V, kind: 'GRPCRoute', metadata: { name: 'faulty' }, spec: { parentRefs: [{ name: 'faulty' }], rules: [{ name: 'all', backendRefs: [{ name: 'faulty' }], filters }] } });
    /** The fault client ACKed every type, LDS and RDS from `revision` on, and never NACKed anything. */
    const ackedAll = (revision: number) => eventually(async () => {
      const p = await proxy(cp.api, FAULT_NODE);
      const at = (type: string) => (p?.types.find((t) => t.typeUrl === type)?.sentRevision ?? 0) >= revision;
      return p?.state === 'SYNCED' && p.types.length === 4 && at(TYPE_URLS.LISTENER) && at(TYPE_URLS.ROUTE) ? p : undefined;
    }, `${FAULT_NODE} to ACK LDS and RDS of revision ${revision}`);
    const call = (c: GreeterClient) => new Promise<{ code: number; details: string; backend?: string }>((resolve) => {
      c.SayHello({ name: 'f' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, v) => resolve(e ? { code: e.code, details: e.details } : { code: 0, details: '', backend: v!.backend }));
    });
    const twenty = async (c: GreeterClient) => { const out = []; for (let i = 0; i < 20; i++) out.push(await call(c)); return out; };

    const apply = async (filters: unknown[]) => ackedAll((await api<{ revision: number }>(cp.api, 'POST', '/v1/config', [service, route(filters)])).revision);
    const ok = Array.from({ length: 20 }, () => ({ code: 0, details: '', backend: 'v1-a' }));
    const faulted = Array.from({ length: 20 }, () => ({ code: grpc.status.UNAVAILABLE, details: 'Fault injected' }));
    const limit = { type: 'LocalRateLimit', localRateLimit: { maxTokens: 1, fillInterval: '1h' } };

    const first = await api<{ revision: number }>(cp.api, 'POST', '/v1/config', [service, route([])]);
    const faulty = xdsGreeterClient('faulty', cp.xdsInsecure!, FAULT_NODE);
    try {
      faulty.getChannel().getConnectivityState(true); // a channel resolves only once it leaves IDLE
      let p = await ackedAll(first.revision);
      assert.deepEqual(await twenty(faulty), ok, 'no filters yet');

      // A Fault put on the existing route (the listener gains the fault filter too).
      p = await apply([{ type: 'Fault', fault: { abort: { grpcStatus: 14, percentage: 100 } } }]);
      assert.deepEqual(await twenty(faulty), faulted);

      // grpc-js-xds has no local rate limit: it skips the optional filter and its route config, so all 20 calls (over a 1-token bucket) pass.
      p = await apply([limit]);
      assert.deepEqual(await twenty(faulty), ok);

      // A Fault added next to the LocalRateLimit (an entry added to typed_per_filter_config); an http_status
      // abort reaches a gRPC caller as the mapped gRPC status (503 -> UNAVAILABLE).
      p = await apply([limit, { type: 'Fault', fault: { abort: { httpStatus: 503, percentage: 100 } } }]);
      assert.deepEqual(await twenty(faulty), faulted);
      assert.deepEqual(p.types.map((t) => [t.state, t.lastNack]), p.types.map(() => ['SYNCED', null]), 'never NACKed');
      assert.equal((await proxy(cp.api, NODE))?.state, 'SYNCED', 'the greeter client is unaffected');
    } finally {
      faulty.close();
    }
  });
});
