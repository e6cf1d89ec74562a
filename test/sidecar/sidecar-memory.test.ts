/**
 * What a cluster or route costs while idle, and what its removal gives back: histograms and
 * windows allocate on first use; the stats of a removed object stay listed for the retention
 * (injected clock), then are dropped and their histograms destroyed; an in-process sidecar fed
 * over ADS lets go of removed clusters' and routes' stats and timers. The process-level figures
 * (RSS over add / rollback rounds) are in test/e2e/sidecar-memory-follows-config.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../shared/src/clock';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { LatencyHistogram, RollingWindow, Stats } from '../../sidecar/src/stats/stats';
import { ClusterStats, RouteStats } from '../../sidecar/src/stats/stat-bundles';
import { OutlierDetector } from '../../sidecar/src/resilience/outlier-detector';
import { DEFAULT_OUTLIER_CONFIG } from '../../sidecar/src/resilience/outlier-config';
import { Host } from '../../sidecar/src/upstream/host';
import { silentLogger } from '../../shared/src/log';
import { eventually } from '../support/ads-client';
import { h1Request, startHttpEcho } from '../support/sidecar-apps';
import { outboundListener, ScriptedAds, startFedSidecar, staticCluster } from '../support/scripted-ads';

const START = Date.UTC(2026, 0, 1);

describe('lazy histograms and windows', () => {
  test('a LatencyHistogram allocates its counts on the first sample and lets them go on destroy()', () => {
    const h = new LatencyHistogram();
    assert.equal(h.allocated, false);
    assert.deepEqual(h.percentiles(), { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 });
    h.merge(new LatencyHistogram());
    h.reset();
    assert.equal(h.countAtValue(1000), 0);
    assert.equal(h.allocated, false, 'reading, merging an empty one and resetting allocate nothing');
    h.record(1000);
    assert.equal(h.allocated, true);
    assert.equal(h.countAtValue(1000), 1);
    h.destroy();
    assert.equal(h.allocated, false);
    assert.equal(h.percentiles().count, 0);
    h.record(2000);
    assert.equal(h.percentiles().p50, 2, 'usable again after destroy()');
  });

  test('a RollingWindow allocates its ring on the first record; summaries of an idle one allocate nothing', () => {
    const clock = new FakeClock(START);
    const w = new RollingWindow(clock);
    assert.equal(w.summary().count, 0);
    assert.equal(w.allocated, false);
    w.record(true, 1000);
    assert.equal(w.allocated, true);
    assert.equal(w.summary().count, 1);
    w.destroy();
    assert.equal(w.allocated, false);
    assert.equal(w.summary().count, 0);
  });

  test('the bundles of an idle cluster and route allocate no histogram', () => {
    const stats = new Stats({ clock: new FakeClock(START) });
    const c = new ClusterStats(stats, 'idle');
    const r = new RouteStats(stats, 'idle-route');
    for (const x of [c, r]) assert.deepEqual([x.rqTime.allocated, x.window.allocated], [false, false]);
    assert.equal(r.backend('idle').allocated, false);
    assert.ok(stats.text().includes('cluster.idle.upstream_rq_total: 0'), 'still listed');
  });
});

describe('stats retention', () => {
  function setup(retentionMs = 60_000) {
    const clock = new FakeClock(START);
    const stats = new Stats({ clock, retentionMs });
    const live = new Set<string>(['cluster.a', 'cluster.b']);
    stats.setLiveness((scope) => live.has(scope));
    return { clock, stats, live, names: () => Object.keys(stats.snapshot().counters) };
  }

  test('a removed object\'s stats stay listed for the retention, then go, histograms destroyed', () => {
    const t = setup();
    const a = new ClusterStats(t.stats, 'a');
    new ClusterStats(t.stats, 'b');
    a.record(200, 1500);
    assert.equal(a.rqTime.allocated, true);
    t.live.delete('cluster.a');
    t.stats.reconcile();
    t.clock.advance(59_999);
    assert.ok(t.names().includes('cluster.a.upstream_rq_total'), 'listed during the retention');
    assert.equal(t.stats.retainedCount, 1);
    t.clock.advance(1);
    assert.ok(!t.names().some((n) => n.startsWith('cluster.a.')), 'dropped when it ends');
    assert.ok(t.names().includes('cluster.b.upstream_rq_total'), 'the live cluster keeps its stats');
    assert.equal(a.rqTime.allocated, false, 'its histogram destroyed');
    assert.equal(a.window.allocated, false, 'its window too');
    assert.equal(a.released, true);
    assert.deepEqual([t.stats.scopeCount, t.stats.retainedCount], [1, 0]);
    assert.equal(t.clock.pending(), 0, 'no timer left');
  });

  test('an object back within the retention keeps its counts; after it, it starts from zero', () => {
    const t = setup();
    const a = new ClusterStats(t.stats, 'a');
    a.rqTotal.inc(5);
    t.live.delete('cluster.a');
    t.stats.reconcile();
    t.clock.advance(30_000);
    t.live.add('cluster.a');
    t.stats.reconcile();
    t.clock.advance(60_000);
    assert.equal(new ClusterStats(t.stats, 'a').rqTotal, a.rqTotal, 'same counter');
    assert.equal(t.stats.snapshot().counters['cluster.a.upstream_rq_total'], 5);
    t.live.delete('cluster.a');
    t.stats.reconcile();
    t.clock.advance(60_000);
    t.live.add('cluster.a');
    t.stats.reconcile();
    assert.equal(new ClusterStats(t.stats, 'a').rqTotal.value, 0);
  });

  test('a scope made for an object already gone (a request in flight on it) is retired too', () => {
    const t = setup();
    new RouteStats(t.stats, 'gone');
    assert.equal(t.stats.retainedCount, 1);
    t.clock.advance(60_000);
    assert.ok(!t.names().some((n) => n.startsWith('route.gone.')));
  });

  test('retention 0 drops at the reconcile; full-name lookups find scoped stats', () => {
    const t = setup(0);
    const a = new ClusterStats(t.stats, 'a');
    assert.equal(t.stats.counter('cluster.a.upstream_rq_total'), a.rqTotal);
    t.live.delete('cluster.a');
    t.stats.reconcile();
    assert.ok(!t.names().some((n) => n.startsWith('cluster.a.')));
  });

  test('bad retention is refused', () => {
    assert.throws(() => new Stats({ retentionMs: -1 }), /stats retention must be >= 0 ms/);
  });
});

describe('outlier detection timer', () => {
  test('runs only while the cluster has hosts', () => {
    const clock = new FakeClock(START);
    const det = new OutlierDetector({ cluster: 'c', config: DEFAULT_OUTLIER_CONFIG, clock, log: silentLogger(), stats: new Stats({ clock }), onChange: () => undefined });
    assert.equal(clock.pending(), 0, 'no hosts: no timer');
    det.setHosts([new Host('10.0.0.1', 80, 1, '', 'HEALTHY')]);
    assert.equal(clock.pending(), 1);
    det.setHosts([]);
    assert.equal(clock.pending(), 0);
    det.close();
  });
});

describe('an in-process sidecar fed over ADS', () => {
  test('drops a removed cluster\'s and route\'s stats after --stats-retention on its clock, and keeps only the outbound listener and route config', async () => {
    const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS } = TYPE_URLS;
    const ads = await ScriptedAds.start();
    const clock = new FakeClock(START);
    const vhost = (n: string) => ({ name: n, domains: [n], routes: [{ name: `${n}-all`, match: { prefix: '/' }, route: { cluster: n } }] });
    const rc = (names: string[]) => ({ name: 'rc', virtual_hosts: names.map(vhost) });
    const app = await startHttpEcho('memory-app');
    const clusters = (names: string[]) => names.map((n) => staticCluster(n, [{ address: '127.0.0.1', port: app.port }]));
    // A second listener and route config, as the control plane serves per service for proxyless clients.
    const apiListener = { ...outboundListener('other-rc'), name: 'other' };
    ads.set(LDS, [outboundListener('rc'), apiListener]);
    ads.set(RDS, [rc(['keep', 'gone']), { name: 'other-rc', virtual_hosts: [vhost('x')] }]);
    ads.set(CDS, clusters(['keep', 'gone']));
    const sc = await startFedSidecar(ads, { clock, statsRetentionMs: 10_000 });
    try {
      const dump = sc.stats;
      const routes = (): string[] => Object.keys(dump.snapshot().counters).filter((k) => k.startsWith('route.')).map((k) => k.split('.')[1]!);
      // One request per route makes its (lazily built) route stats.
      const out = sc.addresses()['outbound']!;
      for (const host of ['keep', 'gone']) assert.equal((await h1Request(out, { host })).status, 200);
      assert.deepEqual([...new Set(routes())].sort(), ['gone-all', 'keep-all']);
      const state = (await (await fetch(`http://${sc.addresses()['admin']}/config_dump`)).json()) as { typeUrl: string; resources: Record<string, unknown> }[];
      assert.deepEqual(Object.keys(state.find((t) => t.typeUrl === LDS)!.resources), ['skein.outbound'], 'only the outbound listener is kept');
      assert.deepEqual(Object.keys(state.find((t) => t.typeUrl === RDS)!.resources), ['rc'], 'only its route configuration');

      ads.set(RDS, [rc(['keep'])]);
      ads.set(CDS, clusters(['keep']));
      await eventually(() => (sc.outbound.snapshot.clusters.size === 1 && !sc.outbound.snapshot.routes?.routeNames().has('gone-all') ? true : undefined), 'the removal to apply');
      assert.ok(Object.keys(dump.snapshot().counters).some((k) => k.startsWith('cluster.gone.')), 'listed during the retention');
      assert.ok(routes().includes('gone-all'));
      clock.advance(10_000);
      assert.ok(!Object.keys(dump.snapshot().counters).some((k) => k.startsWith('cluster.gone.')), 'cluster stats dropped');
      assert.deepEqual([...new Set(routes())], ['keep-all'], 'route stats dropped');
      const mem = (await (await fetch(`http://${sc.addresses()['admin']}/memory`)).json()) as Record<string, number>;
      assert.equal(mem['clusters'], 1);
      assert.equal(mem['statScopesRetained'], 0);
      assert.ok(mem['rssBytes']! > 0 && mem['heapUsedBytes']! > 0);
    } finally {
      await sc.drain();
      ads.close();
      await app.close();
    }
  });
});
