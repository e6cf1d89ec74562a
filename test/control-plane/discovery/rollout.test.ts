/**
 * Rollout feedback: every change answers with what the connected proxies did with it (ACKED,
 * NACKED with the client's error, PENDING, or GONE), `?wait` blocks until they have answered,
 * and proxy-status says which revision each proxy is on. Real control plane, real gRPC ADS
 * streams (a raw client that ACKs or NACKs exactly as each test says), real HTTP API.
 */
import { registerApiTrust } from '../../../harness/src/control-plane-process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlane } from '../../../control-plane/src/control-plane';
import type { ChangeAnswer } from '../../../control-plane/src/api/api-server';
import type { RolloutReport } from '../../../control-plane/src/discovery/rollout';
import type { ProxyStatus } from '../../../control-plane/src/discovery/proxy-status';
import { silentLogger } from '../../../shared/src/log';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { eventually, RawAdsClient } from '../../support/ads-client';
import { call, ratingsService, reviewsRoute, reviewsService } from '../../support/skein';

const { ROUTE: RDS, CLUSTER: CDS } = TYPE_URLS;

describe('rollout feedback', () => {
  let cp: ControlPlane;
  let dir: string;
  let base: string;
  const clients: RawAdsClient[] = [];
  let seq = 0;
  const api = async <T>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const headers = { authorization: `Bearer ${fs.readFileSync(cp.identity.admin.file, 'utf8').trim()}` };
    const r = await call(base, method, urlPath, body === undefined ? { headers } : { body, headers });
    return { status: r.status, body: r.body as T };
  };
  const until = (fn: () => boolean, what: string) => eventually(() => (fn() ? true : undefined), what);

  /** A client subscribed to RDS `names`, which has ACKed its first response. */
  async function synced(names: string[], node = `proxy-${++seq}`): Promise<RawAdsClient> {
    const c = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, node);
    clients.push(c);
    c.subscribe(RDS, names);
    c.ack(await c.next(RDS), names);
    await until(() => cp.discovery.proxies().find((p) => p.nodeId === node)?.state === 'SYNCED', `${node} SYNCED`);
    return c;
  }
  const canary = (v1: number, v2: number, query = '') => api<ChangeAnswer>('POST', `/v1/canary${query}`, { route: 'reviews', weights: { v1, v2 } });
  const proxy = async (node: string) => (await api<{ proxies: ProxyStatus[] }>('GET', '/v1/proxies')).body.proxies.find((p) => p.nodeId === node)!;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-rollout-'));
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger() });
    base = `https://127.0.0.1:${cp.apiPort}`;
    registerApiTrust(base, cp.identity.ca.trustBundlePem());
    await cp.store.apply([reviewsService(), ratingsService(), reviewsRoute(90, 10)], { author: 'test' });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a change answers with every proxy it reached, PENDING until each answers; then ACKED, or NACKED with its error', async () => {
    const acker = await synced(['reviews']);
    const nacker = await synced(['reviews']);
    const bystander = await synced(['ratings']); // the change does not touch what it subscribes to
    const change = await canary(50, 50);
    assert.equal(change.status, 200);
    const r = change.body.rollout!;
    assert.equal(r.revision, change.body.revision);
    assert.equal(r.state, 'PENDING');
    assert.deepEqual(r.counts, { affected: 2, acked: 0, nacked: 0, pending: 2, gone: 0 });
    assert.deepEqual(r.proxies.map((p) => p.nodeId).sort(), [acker.nodeId, nacker.nodeId].sort());
    assert.ok(!r.proxies.some((p) => p.nodeId === bystander.nodeId));

    const first = await acker.next(RDS);
    acker.ack(first, ['reviews']);
    const rejected = await nacker.next(RDS);
    nacker.nack(rejected, '', 'weights do not add up', ['reviews']);
    const after = await api<RolloutReport>('GET', `/v1/rollouts/${r.revision}?wait=20s`);
    assert.equal(after.status, 200);
    assert.equal(after.body.state, 'NACKED');
    assert.equal(after.body.complete, true);
    assert.deepEqual(after.body.counts, { affected: 2, acked: 1, nacked: 1, pending: 0, gone: 0 });
    const nacked = after.body.proxies.find((p) => p.nodeId === nacker.nodeId)!;
    assert.equal(nacked.state, 'NACKED');
    assert.equal(nacked.userAgent, 'raw-ads-test/1.0');
    assert.deepEqual(nacked.types, [{ type: 'RDS', state: 'NACKED', error: 'weights do not add up' }]);
    assert.equal(after.body.proxies.find((p) => p.nodeId === acker.nodeId)!.state, 'ACKED');
    // Later answers never rewrite a settled outcome: the rollout of that revision stays NACKED.
    const fixed = await canary(60, 40);
    nacker.ack(await nacker.next(RDS), ['reviews']);
    acker.ack(await acker.next(RDS), ['reviews']);
    const fixedReport = await api<RolloutReport>('GET', `/v1/rollouts/${fixed.body.revision}?wait=20s`);
    assert.equal(fixedReport.body.state, 'ACKED');
    assert.equal((await api<RolloutReport>('GET', `/v1/rollouts/${r.revision}`)).body.state, 'NACKED');
    for (const c of [acker, nacker, bystander]) c.close();
  });

  test('?wait answers once every affected proxy has ACKed', async () => {
    const c = await synced(['reviews']);
    const pending = canary(70, 30, '?wait=30s');
    c.ack(await c.next(RDS), ['reviews']);
    const res = await pending;
    assert.equal(res.status, 200);
    const r = res.body.rollout!;
    assert.equal(r.state, 'ACKED');
    assert.equal(r.timedOut, false);
    assert.equal(r.complete, true);
    assert.deepEqual(r.counts, { affected: 1, acked: 1, nacked: 0, pending: 0, gone: 0 });
    assert.equal(typeof r.waitedMs, 'number');
    c.close();
  });

  test('a wait that runs out names the proxies still pending', async () => {
    const silent = await synced(['reviews']);
    const res = await canary(80, 20, '?wait=300ms');
    const r = res.body.rollout!;
    assert.equal(r.state, 'PENDING');
    assert.equal(r.timedOut, true);
    assert.equal(r.complete, false);
    assert.deepEqual(r.proxies.map((p) => [p.nodeId, p.state, p.types.map((t) => t.type)]), [[silent.nodeId, 'PENDING', ['RDS']]]);
    assert.match(r.summary, /1 pending/);
    silent.close();
  });

  test('a proxy that disconnects during a wait is reported as gone, not pending forever', async () => {
    const leaving = await synced(['reviews']);
    const pending = canary(20, 80, '?wait=60s');
    await leaving.next(RDS);
    leaving.close();
    const r = (await pending).body.rollout!;
    assert.equal(r.state, 'GONE');
    assert.equal(r.complete, true);
    assert.deepEqual(r.counts, { affected: 1, acked: 0, nacked: 0, pending: 0, gone: 1 });
    assert.match(r.summary, /disconnected before answering/);
  });

  test('a wait on a change that affects no connected proxy returns at once and says so', async () => {
    const other = await synced(['ratings']);
    // A 10-minute wait: if it waited at all, the test's own 2-minute limit would fail it.
    const res = await canary(30, 70, '?wait=10m');
    const r = res.body.rollout!;
    assert.equal(r.state, 'NONE');
    assert.equal(r.complete, true);
    assert.equal(r.counts.affected, 0);
    assert.match(r.summary, /reached no proxy: no connected proxy subscribes to what it changed/);
    // A change that stores nothing pushes nothing either.
    const same = await canary(30, 70, '?wait=10m');
    assert.equal(same.body.changed, false);
    assert.equal(same.body.rollout!.state, 'NONE');
    other.close();
  });

  test('counts every type a change touches: a new subset reaches CDS and RDS subscribers', async () => {
    const c = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, 'multi-type');
    clients.push(c);
    c.subscribe(CDS);
    c.ack(await c.next(CDS));
    c.send({ type_url: RDS, resource_names: ['reviews'] });
    c.ack(await c.next(RDS), ['reviews']);
    await until(() => cp.discovery.proxies().find((p) => p.nodeId === 'multi-type')?.state === 'SYNCED', 'multi-type SYNCED');
    const svc = reviewsService() as { spec: { subsets: unknown[] } };
    svc.spec.subsets.push({ name: 'v3', labels: { version: 'v3' } });
    const route = reviewsRoute(50, 25) as { spec: { rules: { backendRefs: unknown[] }[] } };
    route.spec.rules[0]!.backendRefs.push({ name: 'reviews', subset: 'v3', weight: 25 });
    const res = await api<ChangeAnswer>('POST', '/v1/config', [svc, route]);
    const r = res.body.rollout!;
    assert.deepEqual(r.proxies.map((p) => p.types.map((t) => t.type).sort()), [['CDS', 'RDS']]);
    c.ack(await c.next(CDS));
    const after = await api<RolloutReport>('GET', `/v1/rollouts/${r.revision}?wait=300ms`);
    assert.equal(after.body.state, 'PENDING', 'RDS is still unanswered');
    assert.deepEqual(after.body.proxies[0]!.types.map((t) => [t.type, t.state]).sort(), [['CDS', 'ACKED'], ['RDS', 'PENDING']]);
    c.ack(await c.next(RDS), ['reviews']);
    assert.equal((await api<RolloutReport>('GET', `/v1/rollouts/${r.revision}?wait=20s`)).body.state, 'ACKED');
    c.close();
  });

  test('proxy-status shows the revision each proxy is on: the current one when SYNCED, the last ACKed one while a NACK stands', async () => {
    const good = await synced(['reviews'], 'on-current');
    const bad = await synced(['reviews'], 'stuck');
    const onRevision = (await proxy('stuck')).ackedRevision;
    assert.equal(onRevision, cp.cache.revision);
    const change = await canary(10, 90);
    good.ack(await good.next(RDS), ['reviews']);
    bad.nack(await bad.next(RDS), '', 'no thanks', ['reviews']);
    await api('GET', `/v1/rollouts/${change.body.revision}?wait=20s`);
    const stuck = await proxy('stuck');
    assert.equal(stuck.state, 'NACKED');
    assert.equal(stuck.currentRevision, change.body.revision);
    assert.equal(stuck.ackedRevision, onRevision, 'still on the revision it last ACKed');
    assert.equal(stuck.types.find((t) => t.typeUrl === RDS)!.ackedRevision, onRevision);
    const current = await proxy('on-current');
    assert.equal(current.ackedRevision, change.body.revision);
    // A later change that does not touch what it subscribes to keeps a SYNCED proxy current.
    const unrelated = await api<ChangeAnswer>('POST', '/v1/config', [{ ...ratingsService(), metadata: { name: 'ratings', labels: { team: 'x' } } }]);
    assert.equal(unrelated.status, 201);
    assert.equal((await proxy('on-current')).ackedRevision, unrelated.body.revision);
    assert.equal((await proxy('stuck')).ackedRevision, onRevision);
    good.close();
    bad.close();
  });

  test('rejects a malformed or excessive wait, naming the parameter, and stores nothing', async () => {
    const before = cp.store.current().revision;
    for (const [query, message] of [['?wait=soon', /query\.wait: invalid duration "soon"/], ['?wait=11m', /query\.wait: must be at most 10m/], ['?wait=1s&dryRun=true', /query\.wait: cannot be combined with dryRun/]] as const) {
      const res = await canary(55, 45, query);
      assert.equal(res.status, 422, query);
      assert.match((res.body as unknown as { error: { message: string } }).error.message, message);
    }
    assert.equal(cp.store.current().revision, before);
    const missing = await api<{ error: { code: string; message: string } }>('GET', `/v1/rollouts/${before + 50}`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /not served yet/);
  });
});
