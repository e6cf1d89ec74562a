/**
 * Scoped config (Service spec.dependsOn) over real ADS streams, SotW and delta: a proxy of a
 * service that declares its dependencies is sent only their clusters, endpoints and outbound
 * virtual hosts; a change to another service is not pushed to it, a change to a dependency is;
 * a delta client subscribing by name to a cluster outside its scope is served (on demand).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { service, split, startAdsPlane } from '../../support/ads-plane';
import type { AdsPlane } from '../../support/ads-plane';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { decoded, eventually, names, RawAdsClient } from '../../support/ads-client';
import { deltaNames, RawDeltaClient } from '../../support/delta-client';
import { testNode } from '../../support/raw-stream-client';
import { decodeAny } from '../../../shared/src/xds/protos';

const { ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;
const OUTBOUND = 'skein.outbound';
const AB = ['a', 'a/v1', 'a/v2', 'b', 'b/v1', 'b/v2'];

describe('scoped config (Service spec.dependsOn)', () => {
  let plane: AdsPlane;
  const clients: { close(): void }[] = [];
  const target = () => `127.0.0.1:${plane.cp.xdsInsecurePort}`;
  /** A node that runs for `service` (node.cluster; the skein sidecar also sends metadata.service). */
  const nodeOf = (id: string, svc: string) => ({ ...testNode(id), cluster: svc });
  /**
   * As the skein sidecar sends it: node metadata `service` (a google.protobuf.Struct, whose
   * fields proto-loader names in camelCase: stringValue) and node.cluster that names no service.
   */
  const sidecarNodeOf = (id: string, svc: string) => ({ ...testNode(id), cluster: 'sidecar', metadata: { fields: { service: { stringValue: svc } } } });
  const synced = (node: string) => eventually(() => (plane.cp.discovery.proxies().find((p) => p.nodeId === node)?.state === 'SYNCED' ? true : undefined), `${node} to be SYNCED`);
  const rolloutNodes = async (revision: number) => {
    await plane.cp.syncSnapshot();
    return plane.cp.discovery.rollout(revision).proxies.map((p) => p.nodeId).sort();
  };
  const subsets = (...versions: string[]) => ({ subsets: versions.map((v) => ({ name: v, labels: { version: v } })) });

  before(async () => {
    plane = await startAdsPlane('skein-scoped-');
    await plane.apply(service('a'), service('b'), service('c'), service('web', { dependsOn: ['a', 'b'] }));
  });
  after(async () => {
    for (const c of clients) c.close();
    await plane.close();
  });

  test('SotW: a proxy of web (dependsOn a, b) gets only a and b; a change to c reaches only the unscoped proxy, a change to a reaches both', async () => {
    const s = new RawAdsClient(target(), 'web-sotw');
    const u = new RawAdsClient(target(), 'any-sotw');
    clients.push(s, u);
    s.subscribe(CDS, [], { node: sidecarNodeOf('web-sotw', 'web') });
    u.subscribe(CDS, [], { node: nodeOf('any-sotw', 'nosuchservice') });
    const cds = await s.next(CDS);
    assert.deepEqual(names(cds), AB);
    const ucds = await u.next(CDS);
    assert.ok(names(ucds).includes('c/v1') && names(ucds).includes('reviews'), 'a proxy of no declaring service gets every service');
    s.ack(cds);
    u.ack(ucds);
    s.send({ type_url: EDS, resource_names: names(cds) });
    const eds = await s.next(EDS);
    assert.deepEqual(names(eds), AB);
    s.ack(eds, names(cds));
    for (const c of [s, u]) c.send({ type_url: RDS, resource_names: [OUTBOUND] });
    const rds = await s.next(RDS);
    assert.deepEqual(decoded<{ virtual_hosts: { name: string }[] }>(rds)[0]!.virtual_hosts.map((v) => v.name), ['a', 'b']);
    s.ack(rds, [OUTBOUND]);
    const urds = await u.next(RDS);
    assert.ok(decoded<{ virtual_hosts: { name: string }[] }>(urds)[0]!.virtual_hosts.some((v) => v.name === 'c'));
    u.ack(urds, [OUTBOUND]);
    await synced('web-sotw');
    await synced('any-sotw');
    // What a dry run's NACK forecast asks: does this proxy receive the resource?
    const scoped = [...plane.cp.discovery.connected()].find((x) => x.nodeId === 'web-sotw')!;
    assert.equal(scoped.subscribes(CDS, 'a/v1'), true);
    assert.equal(scoped.subscribes(CDS, 'c/v1'), false, 'c is outside its scope');

    const toC = await plane.apply(split(70, 30, 'c'));
    assert.deepEqual((await rolloutNodes(toC.revision)).filter((n) => n.endsWith('-sotw')), ['any-sotw'], 'a change to c is not pushed to the proxy of web');
    u.ack(await u.next(RDS), [OUTBOUND]);
    const toA = await plane.apply(split(60, 40, 'a'));
    assert.deepEqual((await rolloutNodes(toA.revision)).filter((n) => n.endsWith('-sotw')), ['any-sotw', 'web-sotw']);
    // The scoped proxy's next response is the change to a: nothing came for c before it.
    const next = await s.next();
    assert.equal(next.type_url, RDS);
    const vhA = decoded<{ virtual_hosts: { name: string; routes: { route?: { weighted_clusters?: unknown } }[] }[] }>(next)[0]!.virtual_hosts;
    assert.deepEqual(vhA.map((v) => v.name), ['a', 'b']);
    assert.ok(vhA[0]!.routes.some((r) => r.route?.weighted_clusters !== undefined), 'the split of a');
    assert.deepEqual(s.pending(), []);
    s.ack(next, [OUTBOUND]);
    u.ack(await u.next(RDS), [OUTBOUND]);

    // Narrowing the scope is a change for the proxy of web: b's clusters go.
    await plane.apply(service('web', { dependsOn: ['a'] }));
    const narrowed = await s.next(CDS);
    assert.deepEqual(names(narrowed), ['a', 'a/v1', 'a/v2']);
    s.ack(narrowed);
    await plane.apply(service('web', { dependsOn: ['a', 'b'] }));
    s.ack(await s.next(CDS));
  });

  test('delta: the wildcard is scoped; a cluster and endpoints outside the scope are served when subscribed by name (on demand), and follow their changes', async () => {
    const d = new RawDeltaClient(target(), 'web-delta');
    clients.push(d);
    d.subscribe(CDS, [], { node: nodeOf('web-delta', 'web') });
    const cds = await d.next(CDS);
    assert.deepEqual(deltaNames(cds), AB);
    d.ack(cds);
    d.subscribe(EDS, AB);
    const eds = await d.next(EDS);
    assert.deepEqual(deltaNames(eds), AB);
    d.ack(eds);
    d.subscribe(RDS, [OUTBOUND]);
    const rds = await d.next(RDS);
    assert.deepEqual(decodeAny<{ virtual_hosts: { name: string }[] }>(rds.resources[0]!.resource).virtual_hosts.map((v) => v.name), ['a', 'b']);
    d.ack(rds);
    await synced('web-delta');

    const toC = await plane.apply(service('c', subsets('v1', 'v2', 'v3')));
    assert.ok(!(await rolloutNodes(toC.revision)).includes('web-delta'), 'a change to c is not pushed to the delta proxy of web');

    // On demand: c by name, outside the scope.
    d.subscribe(CDS, ['c']);
    const onDemand = await d.next(CDS);
    assert.deepEqual(deltaNames(onDemand), ['c']);
    d.ack(onDemand);
    d.subscribe(EDS, ['c']);
    const cEds = await d.next(EDS);
    assert.deepEqual(deltaNames(cEds), ['c']);
    d.ack(cEds);
    await synced('web-delta');
    // Now subscribed, a change to c reaches it.
    const again = await plane.apply(service('c', { ...subsets('v1', 'v2', 'v3'), endpoints: [{ address: '10.0.0.9', port: 50051, labels: { version: 'v1' } }] }));
    assert.ok((await rolloutNodes(again.revision)).includes('web-delta'));
    const cChange = await d.next(EDS);
    assert.deepEqual(deltaNames(cChange), ['c'], 'c/v1 changed too, but is neither in the scope nor subscribed');
    d.ack(cChange);

    const toA = await plane.apply(service('a', subsets('v1', 'v2', 'v3')));
    assert.ok((await rolloutNodes(toA.revision)).includes('web-delta'));
    const aChange = await d.next(CDS);
    assert.deepEqual(deltaNames(aChange), ['a/v3']);
    d.ack(aChange);
  });
});
