/**
 * GET /v1/check (`skein check`): an in-process control plane on a FakeClock, so time moves only
 * when a test says; real gRPC (certificates bought over the TLS port, a raw ADS client that
 * NACKs over the plaintext port) and the real HTTP API, read with no credential.
 */
import { registerApiTrust } from '../../harness/src/control-plane-process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ControlPlane } from '../../control-plane/src/control-plane';
import type { CheckReport } from '../../control-plane/src/check/checks';
import type { Finding } from '../../control-plane/src/check/finding';
import { FakeClock } from '../../shared/src/clock';
import { silentLogger } from '../../shared/src/log';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { controlPlaneTls, requestCertificate } from '../../shared/src/grpc/certificate-client';
import type { IssuedIdentity } from '../../shared/src/identity/rotating-identity';
import { eventually, RawAdsClient } from '../support/ads-client';
import { call, ratingsService, reviewsRoute, reviewsService, tempDir } from '../support/skein';
import { writeRootCaFiles } from '../support/test-ca';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

async function check(cp: ControlPlane): Promise<CheckReport> {
  const base = `https://127.0.0.1:${cp.apiPort}`;
  registerApiTrust(base, cp.identity.ca.trustBundlePem());
  const r = await call(base, 'GET', '/v1/check', { anonymous: true });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as CheckReport;
}
const of = (r: CheckReport, check: string, subject?: string): Finding[] => r.findings.filter((f) => f.check === check && (subject === undefined || f.subject === subject));

describe('GET /v1/check', () => {
  let cp: ControlPlane;
  let dir: string;
  const clock = new FakeClock(Date.now()); // TLS checks certificates against the real time
  const clients: RawAdsClient[] = [];

  before(async () => {
    dir = tempDir('check');
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger(), clock });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A certificate for service account `sa` over the TLS port: with a join token, or renewing with `current`. */
  function certificate(sa: string, opts: { ttlMs?: number; current?: IssuedIdentity } = {}): Promise<IssuedIdentity> {
    const trustBundle = fs.readFileSync(cp.trustBundleFile);
    const token = opts.current === undefined ? cp.identity.tokens.create({ service: sa }).token : undefined;
    return requestCertificate({
      server: `127.0.0.1:${cp.xdsPort}`, spiffeId: `spiffe://skein.local/ns/default/sa/${sa}`, credentials: controlPlaneTls(trustBundle, 'skein.local', opts.current),
      ...(token === undefined ? {} : { token }), ...(opts.ttlMs === undefined ? {} : { ttlMs: opts.ttlMs }), how: 'test',
    });
  }

  test('a fresh control plane reports its plaintext xDS listener, a warning naming the address as loopback, and nothing else', async () => {
    const r = await check(cp);
    assert.equal(r.checkedAt, new Date(clock.now()).toISOString(), 'judged at the control plane\'s clock');
    assert.deepEqual(r.findings.map((f) => [f.severity, f.check, f.subject]), [['warning', 'plaintext-xds', `127.0.0.1:${cp.xdsInsecurePort}`]]);
    assert.match(r.findings[0]!.what, /open on 127\.0\.0\.1:\d+, a loopback address/);
    assert.equal(r.errors, 0);
    assert.equal(r.warnings, 1);
  });

  test('a workload certificate past 80% of its lifetime is a warning until renewed; expired, an error; a day after expiry, dropped', async () => {
    const start = clock.now();
    const short = await certificate('reviews', { ttlMs: HOUR }); // notBefore backdated 1m: a 61m lifetime, 80% of it 48m48s after issue
    const long = await certificate('ratings'); // 24h
    assert.deepEqual(of(await check(cp), 'workload-certificate'), []);

    clock.advance(47 * MINUTE);
    assert.deepEqual(of(await check(cp), 'workload-certificate'), [], '13m of 61m left');
    clock.advance(3 * MINUTE);
    let found = of(await check(cp), 'workload-certificate');
    assert.deepEqual(found.map((f) => [f.severity, f.subject]), [['warning', short.spiffeId]]);
    assert.match(found[0]!.what, new RegExp(`serial ${short.serial}\\) expires at ${new Date(short.notAfter).toISOString()}, in 10m \\(16% of its lifetime left\\), and has not been renewed`));
    assert.match(found[0]!.fix, /xDS port/);

    // TLS checks validity against the real clock: certificates issued before the fake clock
    // moved are valid in both, and the serving certificate is not renewed before about 12h.
    await certificate('reviews', { current: short });
    assert.deepEqual(of(await check(cp), 'workload-certificate'), [], 'the renewal is the latest for the identity');

    clock.advance(long.notAfter - clock.now() + MINUTE);
    found = of(await check(cp), 'workload-certificate', long.spiffeId);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.severity, 'error');
    assert.match(found[0]!.what, new RegExp(`expired at ${new Date(long.notAfter).toISOString()}, 1m ago, and was not renewed`));

    clock.advance(DAY);
    assert.deepEqual(of(await check(cp), 'workload-certificate', long.spiffeId), [], 'gone a day after it expired');
    assert.ok(clock.now() - start > 2 * DAY - HOUR);
  });

  test('a PERMISSIVE and a DISABLE service are a warning each, with the fix; a STRICT one is not reported', async () => {
    const permissive = { ...reviewsService(), spec: { ...(reviewsService().spec as object), mtls: 'PERMISSIVE' } };
    const disabled = { ...ratingsService(), spec: { ...(ratingsService().spec as object), mtls: 'DISABLE' } };
    const strict = { ...ratingsService(), metadata: { name: 'details' } };
    await cp.store.apply([permissive, disabled, strict, reviewsRoute()] as never, { author: 'test' });
    const r = await check(cp);
    const found = of(r, 'plaintext-service');
    assert.deepEqual(found.map((f) => [f.severity, f.subject]), [['warning', 'Service/ratings'], ['warning', 'Service/reviews']]);
    assert.match(found[1]!.what, /spec\.mtls PERMISSIVE/);
    assert.match(found[0]!.what, /spec\.mtls DISABLE/);
    assert.match(found[1]!.fix, /set spec\.mtls: STRICT on Service\/reviews once all of its callers have sidecars/);
  });

  test('authorization policies: one naming a missing Service and one naming an identity no workload has are warnings; one that denies every caller is an error', async () => {
    const policy = (name: string, target: string, spec: Record<string, unknown>) => ({ apiVersion: 'skein.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name }, spec: { targetRef: { kind: 'Service', name: target }, ...spec } });
    await cp.store.apply([
      reviewsService(), ratingsService(), reviewsRoute(),
      policy('dangling', 'payments', { defaultAction: 'ALLOW', rules: [] }),
      policy('typo', 'reviews', { rules: [{ action: 'ALLOW', from: ['spiffe://skein.local/ns/default/sa/frontned', 'spiffe://skein.local/ns/default/sa/ratings', 'spiffe://other.domain/ns/default/sa/x'] }] }),
      policy('wall', 'ratings', { defaultAction: 'DENY', rules: [{ action: 'DENY', from: ['spiffe://skein.local/ns/default/sa/reviews'] }] }),
    ] as never, { author: 'test', mode: 'replace' } as never);
    const found = of(await check(cp), 'authorization-policy');
    assert.deepEqual(found.map((f) => [f.severity, f.subject]).sort(), [
      ['error', 'Service/ratings'],
      ['warning', 'AuthorizationPolicy/dangling'],
      ['warning', 'AuthorizationPolicy/typo'],
      ['warning', 'AuthorizationPolicy/typo'],
    ].sort());
    assert.match(found.find((f) => f.subject === 'AuthorizationPolicy/dangling')!.what, /targets Service\/payments, which does not exist/);
    const typos = found.filter((f) => f.subject === 'AuthorizationPolicy/typo').map((f) => f.what).join('\n');
    assert.match(typos, /sa\/frontned: no Service uses service account frontned/);
    assert.match(typos, /spiffe:\/\/other\.domain\/ns\/default\/sa\/x: it is not in this mesh's trust domain skein\.local/);
    assert.doesNotMatch(typos, /sa\/ratings:/, 'a service account a Service uses is a known identity');
    assert.match(found.find((f) => f.severity === 'error')!.what, /deny every caller of Service\/ratings: defaultAction is DENY and no rule allows anyone/);
    await cp.store.apply([reviewsService(), ratingsService(), reviewsRoute()] as never, { author: 'test', mode: 'replace' } as never);
    assert.deepEqual(of(await check(cp), 'authorization-policy'), [], 'gone with the policies');
  });

  test('a proxy that NACKs is an error only once it has been NACKED for over a minute, counted from its NACK; one that ACKs is never reported', async () => {
    const synced = async (node: string) => {
      const c = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, node);
      clients.push(c);
      c.subscribe(TYPE_URLS.ROUTE, ['reviews']);
      c.ack(await c.next(TYPE_URLS.ROUTE), ['reviews']);
      await eventually(() => (cp.discovery.proxies().find((p) => p.nodeId === node)?.state === 'SYNCED' ? true : undefined), `${node} SYNCED`);
      return c;
    };
    const status = (node: string) => cp.discovery.proxies().find((p) => p.nodeId === node);
    const good = await synced('acker-1');
    const bad = await synced('picky-1');
    const revision = (await cp.store.apply([reviewsRoute(50, 50)] as never, { author: 'test' })).revision;
    good.ack(await good.next(TYPE_URLS.ROUTE), ['reviews']);
    const rejected = await bad.next(TYPE_URLS.ROUTE);
    // Sent now; the NACK comes 30s later: NACKED counts from the NACK, not from the send.
    clock.advance(30_000);
    const nackedAt = new Date(clock.now()).toISOString();
    bad.nack(rejected, '', 'weights do not add up', ['reviews']);
    await eventually(() => (status('picky-1')?.state === 'NACKED' ? true : undefined), 'picky-1 NACKED');
    // grpc-js repeats its NACK with its next request for the type (here: a new name): NACKED since the first.
    clock.advance(20_000);
    bad.nack(rejected, '', 'weights do not add up', ['reviews', 'nope']);
    await eventually(() => (status('picky-1')?.types[0]?.subscribed.includes('nope') ? true : undefined), 'the repeated NACK handled');
    assert.equal(status('picky-1')!.types[0]!.lastNack!.at, nackedAt);
    assert.equal(status('picky-1')!.state, 'NACKED');
    assert.equal(status('acker-1')!.state, 'SYNCED');
    clock.advance(39_000); // 59s after the NACK, 89s after the send
    assert.deepEqual(of(await check(cp), 'proxy-sync'), [], 'not before a minute');

    clock.advance(2_000); // 61s
    const r = await check(cp);
    const found = of(r, 'proxy-sync');
    assert.deepEqual(found.map((f) => [f.severity, f.subject]), [['error', 'picky-1']]);
    assert.equal(found[0]!.what, `proxy picky-1 (raw-ads-test/1.0, plaintext) is on revision ${revision - 1} of ${revision}: RDS NACKED since ${nackedAt} (1m): revision ${revision} rejected with "weights do not add up"`);
    assert.match(found[0]!.fix, new RegExp(`skein proxy-status picky-1.*skein rollback ${revision - 1}`));
    assert.ok(r.findings.indexOf(found[0]!) < r.findings.findIndex((f) => f.severity === 'warning'), 'errors are listed first');
    good.close();
    bad.close();
    await eventually(() => (cp.discovery.proxies().length === 0 ? true : undefined), 'streams gone');
    assert.deepEqual(of(await check(cp), 'proxy-sync'), [], 'a proxy that left is not reported');
  });

});

describe('GET /v1/check: the CA', () => {
  test('a plugged CA expiring in 10 days is an error, and says that leaves are cut short when --workload-cert-ttl is longer', async () => {
    const dir = tempDir('check-ca');
    const clock = new FakeClock(Date.now());
    const { certFile, keyFile } = await writeRootCaFiles(dir, 10 * DAY, clock.now());
    const cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger(), clock, caCertFile: certFile, caKeyFile: keyFile, workloadCertTtlMs: 15 * DAY });
    try {
      const r = await check(cp);
      assert.deepEqual(r.findings.map((f) => [f.severity, f.check]), [['error', 'ca-expiry']]);
      assert.equal(r.errors, 1);
      const f = r.findings[0]!;
      assert.match(f.what, /^the mesh CA \(plugged, "CN=short-lived test root"\) expires at \S+, in (10d|9d23h); that is sooner than --workload-cert-ttl \(15d\), so every workload certificate issued now is cut short/);
      assert.match(f.fix, /--ca-cert\/--ca-key/);
      assert.match(f.fix, /root rotation.*is coming/);
    } finally {
      await cp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a CA with more than 30 days and more than --workload-cert-ttl left is not reported; within 30 days it is', async () => {
    const dir = tempDir('check-ca');
    const clock = new FakeClock(Date.now());
    const { certFile, keyFile } = await writeRootCaFiles(dir, 31 * DAY, clock.now());
    const cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger(), clock, caCertFile: certFile, caKeyFile: keyFile });
    try {
      assert.deepEqual((await check(cp)).findings, []);
      clock.advance(DAY + MINUTE);
      const r = await check(cp);
      assert.deepEqual(r.findings.map((f) => [f.severity, f.check]), [['error', 'ca-expiry']]);
      assert.doesNotMatch(r.findings[0]!.what, /cut short/);
    } finally {
      await cp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
