/**
 * The sidecar in this process, fed by a scripted ADS server (test/support/scripted-ads.ts) with
 * hand-written Envoy resources, in front of REAL upstreams on loopback: settings the skein
 * control plane does not write (STATIC clusters), and the drain of requests it holds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../shared/src/clock';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { Sidecar } from '../../sidecar/src/sidecar';
import { silentLogger } from '../../shared/src/log';
import { h1Request, startHttpEcho } from '../support/sidecar-apps';
import { eventually } from '../support/ads-client';
import { outboundListener, routeConfig, ScriptedAds, startFedSidecar, staticCluster } from '../support/scripted-ads';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS } = TYPE_URLS;

describe('STATIC clusters (type STATIC with an inline load_assignment)', () => {
  let ads: ScriptedAds;
  let app: Awaited<ReturnType<typeof startHttpEcho>>;
  let sc: Sidecar;

  before(async () => {
    ads = await ScriptedAds.start();
    app = await startHttpEcho('static-app');
    ads.set(LDS, [outboundListener('rc')]);
    ads.set(RDS, [routeConfig('rc', 'static-svc', { cluster: 'static-svc' })]);
    ads.set(CDS, [staticCluster('static-svc', [{ address: '127.0.0.1', port: app.port }])]);
    sc = await startFedSidecar(ads);
  });
  after(async () => {
    await sc?.drain();
    ads?.close();
    await app?.close();
  });

  test('serves requests from the hosts in the Cluster itself, and asks EDS for nothing', async () => {
    const out = sc.addresses()['outbound']!;
    for (let i = 0; i < 3; i++) {
      const r = await h1Request(out, { host: 'static-svc', path: `/n/${i}` });
      assert.equal(r.status, 200, `${r.headers['x-skein-reason'] ?? ''} ${r.body.toString()}`);
      assert.equal(r.headers['x-app'], 'static-app');
      assert.equal(JSON.parse(r.body.toString()).url, `/n/${i}`);
    }
    const dump = await (await fetch(`http://${sc.addresses()['admin']}/config_dump`)).json() as { typeUrl: string; subscribed: unknown }[];
    const eds = dump.find((t) => t.typeUrl === TYPE_URLS.ENDPOINT);
    assert.deepEqual(eds?.subscribed ?? [], [], 'no EDS subscription for a STATIC cluster');
  });

  test('a pushed change of the inline hosts moves traffic to the new host', async () => {
    const other = await startHttpEcho('static-app-2');
    try {
      ads.set(CDS, [staticCluster('static-svc', [{ address: '127.0.0.1', port: other.port }])]);
      const out = sc.addresses()['outbound']!;
      let r = await h1Request(out, { host: 'static-svc' });
      for (let i = 0; i < 100 && r.headers['x-app'] !== 'static-app-2'; i++) {
        await new Promise((res) => setTimeout(res, 20));
        r = await h1Request(out, { host: 'static-svc' });
      }
      assert.equal(r.headers['x-app'], 'static-app-2');
    } finally {
      ads.set(CDS, [staticCluster('static-svc', [{ address: '127.0.0.1', port: app.port }])]);
      await other.close();
    }
  });
});

describe('http filters: routes and listener must agree', () => {
  test('a RouteConfiguration turning on a filter the listener does not list is NACKed (naming route and filter); listing it lets the next one in', async () => {
    const ads = await ScriptedAds.start();
    const app = await startHttpEcho('filtered-app');
    const abort = { 'envoy.filters.http.fault': { '@type': TYPE_URLS.FAULT, abort: { http_status: 503, percentage: { numerator: 100 } } } };
    ads.set(LDS, [outboundListener('rc')]);
    ads.set(RDS, [routeConfig('rc', 'filtered', { cluster: 'filtered' }, { typed_per_filter_config: abort })]);
    ads.set(CDS, [staticCluster('filtered', [{ address: '127.0.0.1', port: app.port }])]);
    const sc = await Sidecar.start({
      xdsServer: ads.target, nodeId: 'filters-test', version: 'v1',
      outboundListen: '127.0.0.1:0', inboundListen: '127.0.0.1:0', advertiseAddress: '127.0.0.1', adminListen: '127.0.0.1:0',
      leaseTtlMs: 10_000, drainTimeoutMs: 2000, clock: new FakeClock(), log: silentLogger(),
    });
    try {
      const nack = await eventually(() => ads.nacks.find((n) => n.typeUrl === RDS), 'the RouteConfiguration to be NACKed', 5000);
      assert.equal(nack.message, 'route configuration rc: filtered/filtered-all turns on envoy.filters.http.fault (typed_per_filter_config), which listener skein.outbound does not list in its http_filters');
      assert.match(sc.ready().reason ?? '', /waiting for route configuration rc/);
      ads.set(LDS, [outboundListener('rc', [{ name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URLS.FAULT } }])]);
      ads.set(RDS, [routeConfig('rc', 'filtered', { cluster: 'filtered' }, { typed_per_filter_config: abort })]);
      await eventually(() => (sc.ready().ok ? true : undefined), 'the sidecar to be ready', 5000);
      const r = await h1Request(sc.addresses()['outbound']!, { host: 'filtered', path: '/x' });
      assert.deepEqual([r.status, r.headers['x-skein-reason']], [503, 'fault_abort'], 'the filter runs now');
    } finally {
      await sc.drain();
      ads.close();
      await app.close();
    }
  });
});

describe('drain', () => {
  test('a request held in a fault delay when the drain starts is served, not cut; listener.outbound.downstream_rq_active counts it', async () => {
    const ads = await ScriptedAds.start();
    const app = await startHttpEcho('held-app');
    const clock = new FakeClock();
    const fault = { 'envoy.filters.http.fault': { '@type': TYPE_URLS.FAULT, delay: { fixed_delay: { seconds: 1 }, percentage: { numerator: 100 } } } };
    // The listener lists the fault filter the route turns on (else the RouteConfiguration is NACKed).
    ads.set(LDS, [outboundListener('rc', [{ name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE_URLS.FAULT } }])]);
    ads.set(RDS, [routeConfig('rc', 'held', { cluster: 'held' }, { typed_per_filter_config: fault })]);
    ads.set(CDS, [staticCluster('held', [{ address: '127.0.0.1', port: app.port }])]);
    const sc = await startFedSidecar(ads, { clock, drainTimeoutMs: 5000 });
    const active = (): number | undefined => sc.stats.snapshot('listener.outbound.downstream_rq_active').gauges['listener.outbound.downstream_rq_active'];
    let drained: Promise<void> | undefined;
    try {
      assert.equal(active(), 0);
      let answered = false;
      const res = h1Request(sc.addresses()['outbound']!, { host: 'held', path: '/held' }).finally(() => { answered = true; });
      await eventually(() => (active() === 1 ? true : undefined), 'the request to be held by its fault delay', 5000);
      drained = sc.drain();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(answered, false, 'still held: the fault delay runs on the FakeClock');
      clock.advance(1000); // the delay ends, well before the 5 s drain deadline
      const r = await res;
      assert.equal(r.status, 200, `${r.headers['x-skein-reason'] ?? ''}`);
      assert.equal(JSON.parse(r.body.toString()).url, '/held');
      await drained;
      assert.equal(active(), 0);
    } finally {
      if (drained === undefined) await sc.drain(); else await drained;
      ads.close();
      await app.close();
    }
  });
});
