/**
 * Endpoint changes re-translate only the load assignments of the services they touch
 * (control-plane.ts rebuildNow, SnapshotCache.prepareUpdate), and the result is exactly what a
 * full translation of the same config and endpoints encodes: same names, same versions, for
 * every type. A config change, or a change of endpoints mixed with one, still translates all.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlane } from '../../control-plane/src/control-plane';
import { SnapshotCache } from '../../control-plane/src/discovery/snapshot-cache';
import { silentLogger } from '../../shared/src/log';
import { decodeAny, TYPE_URLS } from '../../shared/src/xds/protos';
import { eventually } from '../support/ads-client';
import { service } from '../support/ads-plane';
import { PUSH_ORDER } from '../../shared/src/xds/resource-kind';

const EDS = TYPE_URLS.ENDPOINT;
type Cla = { endpoints?: { lb_endpoints?: { endpoint?: { address?: { socket_address?: { port_value?: number } } } }[] }[] };

describe('incremental endpoint translation', () => {
  let cp: ControlPlane;
  let dir: string;

  /** The ports in a load assignment of the installed snapshot. */
  const ports = (cluster: string): number[] =>
    (decodeAny<Cla>(cp.cache.get(EDS, cluster)!.any).endpoints ?? []).flatMap((l) => (l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.port_value ?? 0)).sort((a, b) => a - b);

  /** Every type's (name, version) pairs of the installed snapshot equal a full translation's, encoded afresh. */
  const assertSameAsFullTranslation = (): void => {
    const full = new SnapshotCache();
    full.set(cp.resources(), 1);
    for (const type of PUSH_ORDER) {
      const versions = (c: SnapshotCache) => [...c.all(type).values()].map((r) => `${r.name}@${r.version}`).sort();
      assert.deepEqual(versions(cp.cache), versions(full), `${type}: as a full translation`);
    }
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-incremental-eds-'));
    cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger() });
    await cp.store.apply([service('reviews'), service('ratings')], { author: 'test' });
    await cp.syncSnapshot();
  });
  after(async () => {
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an endpoint change re-encodes only its service\'s load assignments, as a full translation would', async () => {
    cp.registry.register({ service: 'ratings', address: '10.2.0.1', port: 7000, labels: { version: 'v1' }, ttl: '300s' });
    cp.registry.register({ service: 'reviews', address: '10.1.0.1', port: 8000, labels: { version: 'v1' }, ttl: '300s' });
    await eventually(() => (ports('reviews').length === 1 && ports('ratings').length === 1 ? true : undefined), 'both services\' endpoints in the snapshot');
    const ratings = ['ratings', 'ratings/v1', 'ratings/v2'].map((n) => cp.cache.get(EDS, n));
    const clusters = cp.cache.all(TYPE_URLS.CLUSTER);

    const lease = cp.registry.register({ service: 'reviews', address: '10.1.0.2', port: 8001, labels: { version: 'v2' }, ttl: '300s' });
    await eventually(() => (ports('reviews').length === 2 ? true : undefined), 'the new reviews endpoint');
    assert.deepEqual(ports('reviews/v2'), [8001]);
    assert.deepEqual(ports('reviews/v1'), [8000]);
    ratings.forEach((r, i) => assert.equal(cp.cache.get(EDS, ['ratings', 'ratings/v1', 'ratings/v2'][i]!), r, 'ratings\' load assignments are kept as they were, not re-encoded'));
    assert.equal(cp.cache.all(TYPE_URLS.CLUSTER), clusters, 'clusters are kept as they were');
    assertSameAsFullTranslation();

    cp.registry.deregister(lease.id);
    await eventually(() => (ports('reviews').length === 1 ? true : undefined), 'the endpoint gone');
    assertSameAsFullTranslation();
  });

  test('endpoints of a service the config does not declare change nothing', async () => {
    const before = cp.cache.all(EDS);
    cp.registry.register({ service: 'ghost', address: '10.9.0.1', port: 9000, ttl: '300s' });
    cp.registry.register({ service: 'ratings', address: '10.2.0.2', port: 7001, labels: { version: 'v2' }, ttl: '300s' });
    await eventually(() => (ports('ratings').length === 2 ? true : undefined), 'the ratings endpoint');
    assert.equal(cp.cache.get(EDS, 'ghost'), undefined);
    assert.equal(cp.cache.get(EDS, 'reviews'), before.get('reviews'), 'reviews untouched');
    assertSameAsFullTranslation();
  });

  test('a config change after endpoint changes translates everything, endpoints included', async () => {
    cp.registry.register({ service: 'reviews', address: '10.1.0.3', port: 8002, labels: { version: 'v1' }, ttl: '300s' });
    await cp.store.apply([service('reviews'), service('ratings'), service('details')], { author: 'test' });
    await cp.syncSnapshot();
    await eventually(() => (ports('reviews').length === 2 && cp.cache.get(EDS, 'details') !== undefined ? true : undefined), 'the new service and the endpoint');
    assertSameAsFullTranslation();
    // Endpoints of the new service, incrementally, on the new config.
    cp.registry.register({ service: 'details', address: '10.3.0.1', port: 9100, ttl: '300s' });
    await eventually(() => (ports('details').length === 1 ? true : undefined), 'the details endpoint');
    assertSameAsFullTranslation();
  });
});
