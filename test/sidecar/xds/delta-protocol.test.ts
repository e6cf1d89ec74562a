/**
 * The sidecar's delta ADS client (sidecar/src/xds/delta-protocol.ts, driven by XdsClient) against
 * a real control plane in this process, over gRPC on loopback: the cases of Envoy's xds_protocol
 * "Incremental xDS" from the client side. What the server sent is read off the client's
 * onResponse observer; what the server thinks the client holds, off its proxy status. And the
 * fallback to state of the world against a real gRPC server that serves only that.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { ControlPlane } from '../../../control-plane/src/control-plane';
import { FakeClock } from '../../../shared/src/clock';
import { silentLogger } from '../../../shared/src/log';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { listenerType, routeType } from '../../../sidecar/src/pipeline';
import { clusterType, decoderMap } from '../../../sidecar/src/xds/decoders';
import type { ClusterConfig, EndpointsConfig, ResourceDecoder } from '../../../sidecar/src/xds/decoders';
import { XdsClient } from '../../../sidecar/src/xds/xds-client';
import type { XdsNack, XdsResponseSeen } from '../../../sidecar/src/xds/xds-client';
import { eventually } from '../../support/ads-client';
import { outboundListener, routeConfig, ScriptedAds, staticCluster } from '../../support/scripted-ads';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;
const V = 'skein.dev/v1alpha1';
const service = (name: string, spec: Doc = {}): Doc => ({
  apiVersion: V, kind: 'Service', metadata: { name },
  spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }], ...spec },
});
const sorted = (it: Iterable<string>) => [...it].sort();

describe('delta xDS client against a real control plane', () => {
  let cp: ControlPlane;
  let dir: string;
  const clients: XdsClient[] = [];
  const rejectClusters = new Set<string>();
  const apply = (...docs: Doc[]) => cp.store.apply(docs, { author: 't' });
  const proxy = (node: string) => cp.discovery.proxies().find((p) => p.nodeId === node);
  const names = (type: string) => sorted(cp.cache.all(type).keys());

  /** A delta client that follows CDS with its EDS names, as the sidecar does, recording what it is sent. */
  function start(node: string): { client: XdsClient; seen: XdsResponseSeen[]; nacks: XdsNack[]; updates: string[] } {
    const types = decoderMap(listenerType, routeType);
    const cds: ResourceDecoder<ClusterConfig> = {
      kind: clusterType.kind,
      decode(any) {
        const r = clusterType.decode(any);
        return rejectClusters.has(r.name) ? { name: r.name, error: 'rejected by the test' } : r;
      },
    };
    types.set(CDS, cds as ResourceDecoder<unknown>);
    const client = new XdsClient({ server: `127.0.0.1:${cp.xdsInsecurePort}`, node: { id: node, cluster: 'test' }, types, clock: new FakeClock(), log: silentLogger() });
    clients.push(client);
    const seen: XdsResponseSeen[] = [];
    const nacks: XdsNack[] = [];
    const updates: string[] = [];
    client.onResponse((r) => seen.push(r));
    client.onNack((n) => nacks.push(n));
    client.onUpdate((type, resources) => {
      updates.push(type);
      if (type === CDS) client.subscribe(EDS, [...new Set([...resources.values()].map((c) => (c as ClusterConfig).edsServiceName))]);
    });
    return { client, seen, nacks, updates };
  }
  const synced = (node: string) => () => (proxy(node)?.state === 'SYNCED' ? proxy(node) : undefined);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-delta-client-'));
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger() });
    await apply(service('reviews', { endpoints: [{ address: '10.1.0.1', port: 50051, labels: { version: 'v1' } }] }), service('ratings'));
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('wildcard LDS and CDS get every resource; a new service arrives alone, its EDS names subscribed; a deleted one comes as removed_resources', async () => {
    const { client, seen, updates } = start('delta-wildcard');
    client.subscribe(LDS, '*');
    client.subscribe(CDS, '*');
    client.subscribe(RDS, ['skein.outbound']);
    await eventually(synced('delta-wildcard'), 'SYNCED');
    assert.equal(client.current?.protocol, 'delta');
    assert.deepEqual(sorted(client.resources(LDS).keys()), names(LDS), 'every listener (the api_listeners too)');
    assert.deepEqual(sorted(client.resources(CDS).keys()), names(CDS));
    assert.deepEqual(sorted(client.resources(EDS).keys()), sorted(client.resources(CDS).keys()), 'EDS followed CDS');
    assert.deepEqual(client.resources<EndpointsConfig>(EDS).get('reviews/v1')?.hosts.map((h) => h.address), ['10.1.0.1']);
    for (const t of proxy('delta-wildcard')!.types) {
      assert.equal(t.ackedVersion, client.state().find((s) => s.typeUrl === t.typeUrl)?.version, `${t.typeUrl}: the server has the client's version`);
    }

    const mark = seen.length;
    await apply(service('details'));
    await eventually(() => (client.resources<EndpointsConfig>(EDS).has('details/v1') ? true : undefined), 'the new endpoints');
    await eventually(synced('delta-wildcard'), 'SYNCED');
    const cdsSent = seen.slice(mark).filter((r) => r.typeUrl === CDS);
    assert.deepEqual(cdsSent.map((r) => [r.resources, r.removed]), [[2, 0]], 'one CDS response: details and details/v1 only');
    const edsSent = seen.slice(mark).filter((r) => r.typeUrl === EDS);
    assert.equal(edsSent.reduce((n, r) => n + r.resources, 0), 2, 'EDS: only the two names newly subscribed');

    const mark2 = seen.length;
    const edsUpdates = updates.filter((t) => t === EDS).length;
    await cp.store.delete(['Service/details'], { author: 't' });
    await eventually(() => (client.resources(CDS).has('details') ? undefined : true), 'details removed');
    assert.deepEqual(seen.slice(mark2).filter((r) => r.typeUrl === CDS).map((r) => [r.resources, r.removed]), [[0, 2]], 'removed_resources, nothing re-sent');
    assert.deepEqual(sorted(client.resources(CDS).keys()), names(CDS));
    // Unsubscribed from EDS with the clusters gone: dropped at once, and listeners told.
    await eventually(() => (client.resources(EDS).has('details/v1') ? undefined : true), 'the endpoints dropped');
    assert.deepEqual(sorted(client.resources(EDS).keys()), sorted(client.resources(CDS).keys()));
    await eventually(() => (updates.filter((t) => t === EDS).length > edsUpdates ? true : undefined), 'an EDS update for the dropped names');
    await eventually(synced('delta-wildcard'), 'SYNCED');

    // The server forgot them too: subscribed again, they are sent again.
    const mark3 = seen.length;
    await apply(service('details'));
    await eventually(() => (client.resources(EDS).has('details/v1') ? true : undefined), 'details back');
    assert.equal(seen.slice(mark3).filter((r) => r.typeUrl === EDS).reduce((n, r) => n + r.resources, 0), 2);
    await cp.store.delete(['Service/details'], { author: 't' });
    await eventually(() => (client.resources(EDS).has('details/v1') ? undefined : true), 'details gone again');
  });

  test('named LDS: only the names asked for; a name added is sent, a name dropped is forgotten; a name that does not exist is reported removed', async () => {
    const { client, seen } = start('delta-named');
    client.subscribe(LDS, ['skein.outbound']);
    await eventually(() => (client.resources(LDS).size === 1 ? true : undefined), 'the outbound listener');
    const other = names(LDS).find((n) => n !== 'skein.outbound')!;
    const mark = seen.length;
    client.subscribe(LDS, ['skein.outbound', other, 'no-such-listener']);
    await eventually(() => (client.resources(LDS).has(other) ? true : undefined), `${other} sent`);
    await eventually(synced('delta-named'), 'SYNCED');
    const after = seen.slice(mark).filter((r) => r.typeUrl === LDS);
    assert.equal(after.reduce((n, r) => n + r.resources, 0), 1, 'only the added name was sent');
    assert.equal(after.reduce((n, r) => n + r.removed, 0), 1, 'the missing name reported removed');
    assert.deepEqual(sorted(client.resources(LDS).keys()), sorted(['skein.outbound', other]));
    client.subscribe(LDS, ['skein.outbound']);
    assert.deepEqual([...client.resources(LDS).keys()], ['skein.outbound'], 'dropped at once');
    await eventually(synced('delta-named'), 'SYNCED after the unsubscribe');
  });

  test('NACK: the whole response is rejected with error_detail and the previous good resources stay; the rejected one is not re-sent, a later change is', async () => {
    const { client, nacks } = start('delta-nack');
    client.subscribe(CDS, '*');
    await eventually(synced('delta-nack'), 'SYNCED');
    const before = client.state().find((s) => s.typeUrl === CDS)!;
    rejectClusters.add('bad');
    try {
      await apply(service('bad'));
      await eventually(() => (proxy('delta-nack')?.types.find((t) => t.typeUrl === CDS)?.state === 'NACKED' ? true : undefined), 'CDS NACKED');
      const st = proxy('delta-nack')!.types.find((t) => t.typeUrl === CDS)!;
      assert.equal(st.lastNack!.message, 'bad: rejected by the test');
      assert.equal(st.ackedVersion, before.version, 'the server knows the client kept its version');
      assert.equal(nacks.length, 1);
      const now = client.state().find((s) => s.typeUrl === CDS)!;
      assert.deepEqual(now.resources, before.resources, 'the previous good clusters, bad/v1 (valid, same response) not taken either');
      assert.equal(now.version, before.version);
      assert.equal(now.lastError?.message, 'bad: rejected by the test');

      // A change to another resource is sent and accepted; 'bad' is not sent again.
      await apply(service('good'));
      await eventually(() => (client.resources(CDS).has('good') ? true : undefined), 'good accepted');
      assert.equal(nacks.length, 1);
      assert.equal(client.resources(CDS).has('bad'), false);
      assert.equal(client.state().find((s) => s.typeUrl === CDS)!.lastError, null);
      // A change to the rejected resource is sent again (and, fixed, accepted).
      rejectClusters.delete('bad');
      await apply(service('bad', { protocol: 'http' }));
      await eventually(() => (client.resources(CDS).has('bad') ? true : undefined), 'bad, changed, accepted');
      await eventually(synced('delta-nack'), 'SYNCED');
    } finally {
      rejectClusters.delete('bad');
      await cp.store.delete(['Service/bad', 'Service/good'], { author: 't' });
    }
    await eventually(() => (client.resources(CDS).has('bad') ? undefined : true), 'bad removed');
  });
});

describe('delta xDS client against a control plane that serves only state of the world', () => {
  test('falls back to SotW at once (no backoff), logs it once, and gets the config', async () => {
    const ads = await ScriptedAds.start();
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => { lines.push(s); } });
    const client = new XdsClient({ server: ads.target, node: { id: 'fallback', cluster: 'test' }, types: decoderMap(listenerType, routeType), clock: new FakeClock(), log });
    try {
      ads.set(LDS, [outboundListener('rc')]);
      ads.set(CDS, [staticCluster('c1', [{ address: '127.0.0.1', port: 1 }])]);
      ads.set(RDS, [routeConfig('rc', 'c1', { cluster: 'c1' })]);
      client.subscribe(LDS, ['skein.outbound']);
      client.subscribe(CDS, '*');
      client.subscribe(RDS, ['rc']);
      // The FakeClock never advances: only an immediate reopen gets here.
      await eventually(() => (client.resources(RDS).has('rc') && client.resources(CDS).has('c1') ? true : undefined), 'config over SotW');
      assert.equal(client.current?.protocol, 'sotw');
      assert.equal(client.connected, true);
      ads.set(CDS, [staticCluster('c1', [{ address: '127.0.0.1', port: 1 }]), staticCluster('c2', [{ address: '127.0.0.1', port: 2 }])]);
      await eventually(() => (client.resources(CDS).has('c2') ? true : undefined), 'a SotW push');
      const fallbacks = lines.filter((l) => l.includes('does not serve delta xDS'));
      assert.equal(fallbacks.length, 1, lines.join('\n'));
      assert.match(fallbacks[0]!, new RegExp(`"server":"${ads.target}"`));
      assert.equal(ads.nacks.length, 0);
    } finally {
      client.close();
      ads.close();
    }
  });
});
