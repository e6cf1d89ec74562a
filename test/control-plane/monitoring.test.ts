/**
 * The control plane's monitoring listener (--monitoring-listen): plain HTTP, read-only, GET
 * /metrics with the xDS metrics the discovery server knows (proxies by state, pushes and NACKs
 * per type, versions) and process metrics, as Prometheus text or OpenMetrics; the extension point
 * (ControlPlane.metrics.add) shows another module's collector.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlane } from '../../control-plane/src/control-plane';
import { silentLogger } from '../../shared/src/log';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { eventually, RawAdsClient } from '../support/ads-client';
import { RawDeltaClient } from '../support/delta-client';

const V = 'skein.dev/v1alpha1';

describe('monitoring listener', () => {
  let cp: ControlPlane;
  let dir: string;
  let base = '';
  const clients: { close(): void }[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-monitoring-'));
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', monitoringListen: '127.0.0.1:0', log: silentLogger() });
    base = `http://127.0.0.1:${cp.monitoringPort}`;
    await cp.store.apply([{ apiVersion: V, kind: 'Service', metadata: { name: 'reviews' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } }], { author: 'test' });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('GET /metrics: connected proxies by state, pushes and NACKs per type, versions, revision, process metrics', async () => {
    const c = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, 'nacker');
    clients.push(c);
    c.subscribe(TYPE_URLS.CLUSTER);
    const cds = await c.next(TYPE_URLS.CLUSTER);
    c.nack(cds, '', 'no thanks');
    await eventually(() => (cp.discovery.proxies()[0]?.state === 'NACKED' ? true : undefined), 'the proxy to be NACKED');
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    assert.match(text, /skein_xds_connected_proxies\{state="NACKED"\} 1\n/);
    assert.match(text, /skein_xds_connected_proxies\{state="SYNCED"\} 0\n/);
    assert.match(text, new RegExp(`skein_xds_pushes_total\\{type_url="${TYPE_URLS.CLUSTER}"\\} 1\\n`));
    assert.match(text, new RegExp(`skein_xds_nacks_total\\{type_url="${TYPE_URLS.CLUSTER}"\\} 1\\n`));
    assert.ok(text.includes(`skein_xds_config_version_info{type_url="${TYPE_URLS.CLUSTER}",version="${cds.version_info}"} 1\n`), text);
    assert.match(text, /skein_config_revision \d+\n/);
    assert.match(text, /process_cpu_seconds_total \d/);
  });

  test('OpenMetrics by Accept; another module\'s collector shows up; only GET/HEAD, only /metrics', async () => {
    cp.metrics.add({ name: 'skein_test_things', help: 'a collector another module adds', type: 'gauge', *collect() { yield { labels: { kind: 'x' }, value: 7 }; } });
    const r = await fetch(`${base}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    assert.equal(r.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    const text = await r.text();
    assert.match(text, /# TYPE skein_xds_pushes counter\n/);
    assert.match(text, /skein_test_things\{kind="x"\} 7\n/);
    assert.ok(text.endsWith('# EOF\n'));
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/config`)).status, 404);
  });

  test('push and convergence histograms per type, over SotW and delta streams; the proxies behind, by node', async () => {
    const target = `127.0.0.1:${cp.xdsInsecurePort}`;
    const sotw = new RawAdsClient(target, 'sotw-acker');
    const delta = new RawDeltaClient(target, 'delta-acker');
    const lagger = new RawAdsClient(target, 'lagger');
    clients.push(sotw, delta, lagger);
    sotw.subscribe(TYPE_URLS.CLUSTER);
    delta.subscribe(TYPE_URLS.CLUSTER);
    lagger.subscribe(TYPE_URLS.CLUSTER);
    sotw.ack(await sotw.next(TYPE_URLS.CLUSTER));
    delta.ack(await delta.next(TYPE_URLS.CLUSTER));
    lagger.ack(await lagger.next(TYPE_URLS.CLUSTER));
    await eventually(() => (['sotw-acker', 'delta-acker', 'lagger'].every((n) => cp.discovery.proxies().find((p) => p.nodeId === n)?.state === 'SYNCED') ? true : undefined), 'the three proxies to be SYNCED');
    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    const count = (text: string, family: string, type: string): number => Number(new RegExp(`${family}_count\\{type="${type}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    const before = count(await scrape(), 'skein_xds_convergence_seconds', 'CDS');
    assert.equal(before, 0, 'a first subscription is not a convergence');

    await cp.store.apply([{ apiVersion: V, kind: 'Service', metadata: { name: 'ratings' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } }], { author: 'test' });
    sotw.ack(await sotw.next(TYPE_URLS.CLUSTER));
    delta.ack(await delta.next(TYPE_URLS.CLUSTER));
    await lagger.next(TYPE_URLS.CLUSTER); // received, never ACKed
    const text = await eventually(async () => { const t = await scrape(); return count(t, 'skein_xds_convergence_seconds', 'CDS') === 2 ? t : undefined; }, 'two CDS convergences (the SotW and the delta client ACKed the change)');
    assert.match(text, /# TYPE skein_xds_convergence_seconds histogram\n/);
    assert.match(text, /skein_xds_convergence_seconds_bucket\{type="CDS",le="\+Inf"\} 2\n/);
    assert.ok(count(text, 'skein_xds_push_seconds', 'CDS') >= 6, 'three first responses and three after the change');
    assert.match(text, /skein_xds_push_seconds_bucket\{type="CDS",le="1"\} \d+\n/);
    assert.match(text, /skein_xds_proxy_lag_seconds\{proxy="lagger",type="CDS"\} [\d.e-]+\n/);
    assert.doesNotMatch(text, /skein_xds_proxy_lag_seconds\{proxy="(sotw|delta)-acker"/);
    const lag = cp.discovery.slowest(10).find((l) => l.stream.nodeId === 'lagger');
    assert.equal(lag?.type, TYPE_URLS.CLUSTER);
  });
});
