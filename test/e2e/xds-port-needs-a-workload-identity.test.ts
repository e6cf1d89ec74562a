/**
 * The control plane's xDS port is TLS from the mesh CA, and what a caller may do there depends on
 * the workload certificate it presents: against a real control plane process, with real grpc-js
 * clients and certificates bought with join tokens.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { joinTokenFile, SKEIN_MAIN, startControlPlaneProcess } from '../../harness/src/control-plane-process';
import { startSidecarProcess } from '../../harness/src/sidecar-process';
import { ENDPOINTS_SERVICE, ROUTE_STATS_SERVICE, skeinService } from '../../shared/src/grpc/skein-services';
import type { LeaseRef, RegisterRequest, WireLease, WireReportSummary, WireRouteStatsReport } from '../../shared/src/grpc/skein-services';
import { LatencyHistogram } from '../../sidecar/src/stats/latency-histogram';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { decoded, eventually, RawAdsClient } from '../support/ads-client';
import { deltaNames, RawDeltaClient } from '../support/delta-client';
import { call, startPlane, stopPlane, tempDir } from '../support/skein';
import type { Plane } from '../support/skein';
import { controlPlaneTls, CP_TLS_OPTIONS, workloadCert } from '../support/workload-cert';
import type { TestCert } from '../support/workload-cert';

type Unary<Req> = (req: Req, cb: (e: grpc.ServiceError | null, r?: WireLease) => void) => void;
type EndpointsClient = grpc.Client & { Register: Unary<RegisterRequest>; Renew: Unary<LeaseRef>; Deregister: Unary<LeaseRef> };

describe('the xDS port serves ADS and endpoint registration only to workload identities, each for its own service', () => {
  let plane: Plane;
  const clients: { close(): void }[] = [];
  let reviews: TestCert;

  const endpoints = (cert?: TestCert) => {
    const Ctor = skeinService(ENDPOINTS_SERVICE);
    const c = new Ctor(plane.proc.xds, controlPlaneTls(plane.proc, cert), CP_TLS_OPTIONS) as unknown as EndpointsClient;
    clients.push(c);
    return c;
  };
  const rpc = <Req>(c: EndpointsClient, m: Unary<Req>, req: Req) => new Promise<WireLease>((resolve, reject) => m.call(c, req, (e, r) => (e ? reject(e) : resolve(r!))));
  const refused = (p: Promise<unknown>, code: grpc.status, message: RegExp) => assert.rejects(p, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, e.details);
    assert.match(e.details, message);
    return true;
  });
  const registration = (service: string, port: number): RegisterRequest => ({ service, address: '127.0.0.1', port, labels: { version: 'v1' }, ttl: { seconds: '30' }, node: 'test' });

  before(async () => {
    plane = await startPlane({ extraArgs: ['--log-level', 'info'] });
    await call(plane.api, 'POST', '/v1/config', {
      body: [
        { apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name: 'reviews' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } },
        { apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name: 'ratings' }, spec: { ports: [{ name: 'grpc', port: 50051 }], serviceAccount: 'ratings-sa' } },
      ],
    });
    reviews = await workloadCert(plane.proc, 'reviews');
  });
  after(async () => {
    for (const c of clients) c.close();
    await stopPlane(plane);
  });

  test('the port is TLS with the control plane\'s SPIFFE ID, chained to the trust bundle it wrote', () => {
    const bundle = new X509Certificate(fs.readFileSync(plane.proc.trustBundleFile));
    assert.ok(bundle.ca, 'the trust bundle is the root');
    assert.equal((fs.statSync(plane.proc.trustBundleFile).mode & 0o777).toString(8), '644');
  });

  test('ADS without a client certificate ends UNAUTHENTICATED before any resource is sent', async () => {
    const c = new RawAdsClient(plane.proc.xds, 'anonymous', { credentials: controlPlaneTls(plane.proc), options: CP_TLS_OPTIONS });
    clients.push(c);
    c.subscribe(TYPE_URLS.CLUSTER);
    const st = await c.ended();
    assert.equal(st.code, grpc.status.UNAUTHENTICATED, st.details);
    assert.match(st.details, /needs a workload certificate/);
    assert.equal(c.received.length, 0);
    const proxies = (await call(plane.api, 'GET', '/v1/proxies')).body.proxies as { nodeId: string }[];
    assert.ok(!proxies.some((p) => p.nodeId === 'anonymous'));
  });

  test('ADS with a workload certificate is served, and /v1/proxies shows the identity it authenticated with', async () => {
    const c = new RawAdsClient(plane.proc.xds, 'reviews-1', { credentials: controlPlaneTls(plane.proc, reviews), options: CP_TLS_OPTIONS });
    clients.push(c);
    c.subscribe(TYPE_URLS.CLUSTER);
    const r = await c.next();
    assert.equal(r.type_url, TYPE_URLS.CLUSTER);
    const proxies = (await call(plane.api, 'GET', '/v1/proxies')).body.proxies as { nodeId: string; identity: string }[];
    assert.equal(proxies.find((p) => p.nodeId === 'reviews-1')?.identity, 'spiffe://skein.local/ns/default/sa/reviews');
  });

  test('delta ADS is held to the same rule: UNAUTHENTICATED without a certificate, served with one and shown with its identity', async () => {
    const anonymous = new RawDeltaClient(plane.proc.xds, 'anonymous-delta', { credentials: controlPlaneTls(plane.proc), options: CP_TLS_OPTIONS });
    clients.push(anonymous);
    anonymous.subscribe(TYPE_URLS.CLUSTER);
    const st = await anonymous.ended();
    assert.equal(st.code, grpc.status.UNAUTHENTICATED, st.details);
    assert.match(st.details, /needs a workload certificate/);
    assert.equal(anonymous.received.length, 0);
    const c = new RawDeltaClient(plane.proc.xds, 'reviews-delta', { credentials: controlPlaneTls(plane.proc, reviews), options: CP_TLS_OPTIONS });
    clients.push(c);
    c.subscribe(TYPE_URLS.CLUSTER);
    assert.deepEqual(deltaNames(await c.next(TYPE_URLS.CLUSTER)), ['ratings', 'reviews']);
    const proxies = (await call(plane.api, 'GET', '/v1/proxies')).body.proxies as { nodeId: string; identity: string }[];
    assert.equal(proxies.find((p) => p.nodeId === 'reviews-delta')?.identity, 'spiffe://skein.local/ns/default/sa/reviews');
    assert.ok(!proxies.some((p) => p.nodeId === 'anonymous-delta'));
  });

  test('a plaintext client cannot reach the TLS port at all', async () => {
    const c = new RawAdsClient(plane.proc.xds, 'plaintext');
    clients.push(c);
    c.subscribe(TYPE_URLS.CLUSTER);
    assert.equal((await c.ended()).code, grpc.status.UNAVAILABLE);
  });

  test('reviews registers, renews and deregisters its own endpoint; the lease shows in /v1/endpoints meanwhile', async () => {
    const c = endpoints(reviews);
    const lease = await rpc(c, c.Register, registration('reviews', 7001));
    assert.equal(lease.service, 'reviews');
    assert.equal(lease.health, 'HEALTHY');
    const listed = (await call(plane.api, 'GET', '/v1/endpoints')).body.endpoints as { id: string }[];
    assert.ok(listed.some((l) => l.id === lease.id));
    assert.equal((await rpc(c, c.Renew, { id: lease.id })).id, lease.id);
    await rpc(c, c.Deregister, { id: lease.id });
    await refused(rpc(c, c.Renew, { id: lease.id }), grpc.status.NOT_FOUND, /register again/);
  });

  test('a registration over gRPC records the workload\'s SPIFFE ID: GET /v1/endpoints shows it, and EDS marks the endpoint for mTLS', async () => {
    const c = endpoints(reviews);
    const lease = await rpc(c, c.Register, registration('reviews', 7006));
    const listed = (await call(plane.api, 'GET', '/v1/endpoints')).body.endpoints as { id: string; identity?: string }[];
    assert.equal(listed.find((l) => l.id === lease.id)?.identity, 'spiffe://skein.local/ns/default/sa/reviews');
    const ads = new RawAdsClient(plane.proc.xds, 'reviews-eds', { credentials: controlPlaneTls(plane.proc, reviews), options: CP_TLS_OPTIONS });
    clients.push(ads);
    ads.subscribe(TYPE_URLS.ENDPOINT, ['reviews']);
    const port7006 = await eventually(async () => {
      const [cla] = decoded<{ endpoints?: { lb_endpoints: { endpoint: { address: { socket_address: { port_value: number } } }; metadata?: unknown }[] }[] }>(await ads.next(TYPE_URLS.ENDPOINT));
      return cla?.endpoints?.flatMap((l) => l.lb_endpoints).find((e) => e.endpoint.address.socket_address.port_value === 7006);
    }, 'the registered endpoint in EDS');
    assert.deepEqual(port7006.metadata, { filter_metadata: { 'envoy.transport_socket_match': { fields: { tlsMode: { stringValue: 'skein', kind: 'stringValue' } } } } });
    await rpc(c, c.Deregister, { id: lease.id });
  });

  test('reviews cannot register an endpoint of ratings: PERMISSION_DENIED naming who may, and nothing is registered', async () => {
    const c = endpoints(reviews);
    await refused(rpc(c, c.Register, registration('ratings', 7002)), grpc.status.PERMISSION_DENIED,
      /spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews may not register endpoints of service ratings: only service account ratings-sa may/);
    const listed = (await call(plane.api, 'GET', '/v1/endpoints')).body.endpoints as { service: string }[];
    assert.ok(!listed.some((l) => l.service === 'ratings'));
  });

  test('spec.serviceAccount says who registers a service: ratings-sa may register ratings, a workload named ratings may not', async () => {
    const sa = endpoints(await workloadCert(plane.proc, 'ratings', 'ratings-sa'));
    assert.equal((await rpc(sa, sa.Register, registration('ratings', 7003))).service, 'ratings');
    const named = endpoints(await workloadCert(plane.proc, 'ratings'));
    await refused(rpc(named, named.Register, registration('ratings', 7004)), grpc.status.PERMISSION_DENIED, /only service account ratings-sa may/);
  });

  test('one workload cannot renew or deregister another service\'s lease', async () => {
    const owner = endpoints(reviews);
    const lease = await rpc(owner, owner.Register, registration('reviews', 7005));
    const other = endpoints(await workloadCert(plane.proc, 'details'));
    await refused(rpc(other, other.Deregister, { id: lease.id }), grpc.status.PERMISSION_DENIED, /may not register endpoints of service reviews/);
    await refused(rpc(other, other.Renew, { id: lease.id }), grpc.status.PERMISSION_DENIED, /may not register endpoints of service reviews/);
    const listed = (await call(plane.api, 'GET', '/v1/endpoints')).body.endpoints as { id: string }[];
    assert.ok(listed.some((l) => l.id === lease.id), 'the lease is still there');
  });

  test('registration without a certificate is UNAUTHENTICATED; over HTTP it needs the admin token', async () => {
    const c = endpoints();
    await refused(rpc(c, c.Register, registration('reviews', 7006)), grpc.status.UNAUTHENTICATED, /needs a workload certificate/);
    const anon = await call(plane.api, 'POST', '/v1/endpoints', { body: { service: 'reviews', address: '127.0.0.1', port: 7006 }, anonymous: true });
    assert.equal(anon.status, 401);
    const listed = (await call(plane.api, 'GET', '/v1/endpoints')).body.endpoints as { port: number }[];
    assert.ok(!listed.some((l) => l.port === 7006));
  });

  test('route stats reports need a workload certificate: without one the stream is UNAUTHENTICATED and nothing is kept; with one, the reporter is listed by its identity', async () => {
    type ReportClient = grpc.Client & { Report(md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: WireReportSummary) => void): grpc.ClientWritableStream<WireRouteStatsReport> };
    const h = new LatencyHistogram(2);
    h.record(1500);
    const report = (node: string): WireRouteStatsReport => ({ node, interval_start_ms: '0', interval_end_ms: '5000', stats: [{ route: 'default', cluster: 'reviews', requests: '1', successes: '1', latency_histogram: h.encode(), latency_sum_us: '1500', latency_max_us: '1500' }] });
    const send = (cert: TestCert | undefined, node: string) => new Promise<WireReportSummary>((resolve, reject) => {
      const Ctor = skeinService(ROUTE_STATS_SERVICE);
      const c = new Ctor(plane.proc.xds, controlPlaneTls(plane.proc, cert), CP_TLS_OPTIONS) as unknown as ReportClient;
      clients.push(c);
      const stream = c.Report(new grpc.Metadata(), (e, r) => (e ? reject(e) : resolve(r!)));
      stream.on('error', () => undefined);
      stream.write(report(node));
      stream.end();
    });
    await refused(send(undefined, 'anonymous'), grpc.status.UNAUTHENTICATED, /need a workload certificate/);
    assert.equal((await send(reviews, 'reviews-1')).reports, '1');
    const view = (await call(plane.api, 'GET', '/v1/stats/routes?window=1m', { anonymous: true })).body as { proxies: { node: string; identity: string }[]; routes: { requests: number }[] };
    assert.deepEqual(view.proxies.map((p) => [p.node, p.identity]), [['reviews-1', 'spiffe://skein.local/ns/default/sa/reviews']]);
    assert.deepEqual(view.routes.map((r) => r.requests), [1]);
  });
});

describe('the plaintext xDS listener (--xds-insecure-listen)', () => {
  test('is refused on a non-loopback address unless --xds-insecure-allow-remote, naming the flag', async () => {
    const dir = tempDir('insecure');
    try {
      await assert.rejects(startControlPlaneProcess({ dataDir: dir, extraArgs: ['--xds-insecure-listen', '0.0.0.0:0'] }), (e: Error) => {
        assert.match(e.message, /--xds-insecure-listen: 0\.0\.0\.0:0 is not a loopback address.*--xds-insecure-allow-remote/);
        return true;
      });
      await assert.rejects(startControlPlaneProcess({ dataDir: dir, extraArgs: ['--xds-insecure-allow-remote'] }), /--xds-insecure-allow-remote needs --xds-insecure-listen/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('serves ADS with no certificate, says so in its ready line and log, and /v1/proxies shows no identity', async () => {
    const plane = await startPlane({ extraArgs: ['--xds-insecure-listen', '127.0.0.1:0'] });
    const c = new RawAdsClient(plane.proc.xdsInsecure!, 'proxyless');
    try {
      assert.match(plane.proc.xdsInsecure!, /^127\.0\.0\.1:\d+$/);
      c.subscribe(TYPE_URLS.CLUSTER);
      await c.next();
      const proxies = (await call(plane.api, 'GET', '/v1/proxies')).body.proxies as { nodeId: string; identity: string }[];
      assert.equal(proxies.find((p) => p.nodeId === 'proxyless')?.identity, '');
      assert.match(plane.proc.logs(), /plaintext xDS listener open/);
    } finally {
      c.close();
      await stopPlane(plane);
    }
  });
});

describe('a sidecar process proves who it is before it gets any config', () => {
  let plane: Plane;
  before(async () => { plane = await startPlane(); });
  after(async () => { await stopPlane(plane); });

  const start = (o: Partial<Parameters<typeof startSidecarProcess>[0]>) => startSidecarProcess({ xds: plane.proc.xds, api: plane.proc.api, nodeId: 'identity-test', killAfterMs: 5000, ...o });

  test('with a join token it gets a certificate for its service account, reports its lifetime, and is served xDS with that identity', async () => {
    const sc = await start({ serviceAccount: 'frontend' });
    try {
      const stats = (await (await fetch(`http://${sc.admin}/stats?format=json`)).json()) as { gauges: Record<string, number> };
      assert.equal(stats.gauges['identity.cert_lifetime_seconds'], 24 * 3600 + 60);
      assert.ok(stats.gauges['identity.cert_expires_in_seconds']! > 23 * 3600);
      const identity = await eventually(async () => ((await call(plane.api, 'GET', '/v1/proxies')).body.proxies as { nodeId: string; identity: string }[]).find((p) => p.nodeId === 'identity-test')?.identity, 'the sidecar\'s ADS stream');
      assert.equal(identity, 'spiffe://skein.local/ns/default/sa/frontend');
    } finally {
      await sc.stop();
    }
  });

  const refusals: [string, () => Promise<Partial<Parameters<typeof startSidecarProcess>[0]>>, RegExp][] = [
    ['a token already used', async () => {
      const file = await joinTokenFile(plane.api, 'sidecar');
      const first = await start({ tokenFile: file, nodeId: 'first-use' });
      await first.stop();
      return { tokenFile: file };
    }, /could not get a certificate for spiffe:\/\/skein\.local\/ns\/default\/sa\/sidecar .*join token .*already used/],
    ['a token for another service account', async () => ({ tokenFile: await joinTokenFile(plane.api, 'reviews') }), /could not get a certificate .*this caller may only get spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews/],
    ['a missing token file', async () => ({ tokenFile: '/nonexistent/skein.token' }), /--token-file: cannot read \/nonexistent\/skein\.token: ENOENT/],
    ['--xds-insecure with --service', async () => ({ insecure: true, service: 'reviews', app: '127.0.0.1:1' }), /--xds-insecure cannot go with --service/],
  ];
  for (const [what, opts, message] of refusals) {
    test(`${what}: the sidecar exits before listening, naming why`, async () => {
      await assert.rejects(start(await opts()), (e: Error) => { assert.match(e.message, message); return true; });
    });
  }

  test('with neither --token-file nor --xds-insecure it exits at once, saying how to get a token', () => {
    const r = spawnSync(process.execPath, [SKEIN_MAIN, 'sidecar', '--xds', plane.proc.xds, '--outbound-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, SKEIN_TOKEN_FILE: '' } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /--token-file is required: the sidecar proves who it is with a join token \(skein token create --service NAME > FILE\)/);
  });

  test('a control plane with another CA is not believed: the sidecar refuses it and exits', async () => {
    const other = await startPlane();
    try {
      await assert.rejects(start({ xds: other.proc.xds, tokenFile: await joinTokenFile(plane.api, 'sidecar') }), (e: Error) => {
        assert.match(e.message, /could not get a certificate for .*No connection established.*self-signed certificate in certificate chain/);
        return true;
      });
    } finally {
      await stopPlane(other);
    }
  });
});
