/**
 * Incremental (delta) ADS against a real control plane, with a raw gRPC client on loopback:
 * the conformance cases of Envoy's xDS protocol document ("Incremental xDS"): subscribe and
 * unsubscribe, wildcard, removed_resources, ACK/NACK, initial_resource_versions on reconnect,
 * only changed resources on a change, and the same resources and versions as state of the world.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { bigService, service, split, startAdsPlane } from '../../support/ads-plane';
import type { AdsPlane } from '../../support/ads-plane';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { contentVersion } from '../../../shared/src/xds/resource-kind';
import { eventually, names, RawAdsClient } from '../../support/ads-client';
import { deltaNames, RawDeltaClient, removed, versions } from '../../support/delta-client';
import { decodeAny } from '../../../shared/src/xds/protos';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;

function lbEndpoints(r: { resource: { type_url: string; value: Buffer } }): number {
  return decodeAny<{ endpoints?: { lb_endpoints?: unknown[] }[] }>(r.resource).endpoints?.[0]?.lb_endpoints?.length ?? 0;
}

describe('ADS incremental (delta)', () => {
  let plane: AdsPlane;
  let cp: AdsPlane['cp'];
  const clients: { close(): void }[] = [];
  const delta = (node: string) => { const c = new RawDeltaClient(`127.0.0.1:${cp.xdsInsecurePort}`, node); clients.push(c); return c; };
  const sotw = (node: string) => { const c = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, node); clients.push(c); return c; };
  const apply = (...docs: unknown[]) => plane.apply(...docs);
  const statusOf = (node: string, type: string) => plane.statusOf(node, type);
  const until = (fn: () => boolean, what: string) => eventually(() => (fn() ? true : undefined), what);

  before(async () => {
    plane = await startAdsPlane('skein-delta-');
    cp = plane.cp;
  });
  after(async () => {
    for (const c of clients) c.close();
    await plane.close();
  });

  test('a first LDS/CDS request with no names is a wildcard; a SotW client sees the same resources with the same versions', async () => {
    const d = delta('wild-delta');
    const s = sotw('wild-sotw');
    for (const type of [LDS, CDS]) {
      d.subscribe(type);
      s.send({ ...(type === LDS ? { node: { id: 'wild-sotw' } } : {}), type_url: type, resource_names: [] });
      const dr = await d.next(type);
      const sr = await s.next(type);
      assert.deepEqual(deltaNames(dr), names(sr));
      assert.ok(deltaNames(dr).length > 0);
      // Each resource's version is the content hash of the same bytes the SotW client received.
      const sotwVersions = Object.fromEntries(sr.resources.map((a) => [decodeAny<{ name: string }>(a).name, contentVersion(a.value)]));
      assert.deepEqual(versions(dr), sotwVersions);
      assert.deepEqual(removed(dr), []);
      assert.equal(dr.system_version_info, sr.version_info, 'the delta system version is the SotW version of the same set');
      d.ack(dr);
      s.ack(sr);
    }
    await until(() => statusOf('wild-delta', CDS)?.state === 'SYNCED' && statusOf('wild-sotw', CDS)?.state === 'SYNCED', 'both SYNCED');
    for (const type of [LDS, CDS]) {
      assert.equal(statusOf('wild-delta', type)?.ackedVersion, statusOf('wild-sotw', type)?.ackedVersion, 'proxy-status shows one version for both');
      assert.deepEqual(statusOf('wild-delta', type)?.subscribed, ['*']);
    }
  });

  test('a legacy wildcard is kept when names are added; "*" is for LDS/CDS only; unsubscribing a name the wildcard may cover answers for it', async () => {
    const d = delta('star');
    d.subscribe(CDS);
    d.ack(await d.next(CDS));
    // Naming resources keeps the wildcard; a name subscribed again is sent again (the client may have forgotten it).
    d.subscribe(CDS, ['reviews/v1', 'nope']);
    const named = await d.next(CDS);
    assert.deepEqual(deltaNames(named), ['reviews/v1']);
    assert.deepEqual(removed(named), ['nope']);
    d.ack(named);
    await until(() => statusOf('star', CDS)?.subscribed.join() === '*,reviews/v1,nope', 'the subscription to show');
    await apply(service('star-svc'));
    const added = await d.next(CDS);
    assert.deepEqual(deltaNames(added), ['star-svc', 'star-svc/v1', 'star-svc/v2'], 'a new resource is sent alone');
    d.ack(added);
    // Unsubscribed under the wildcard: reviews/v1 is still in it (sent), nope is not (removed).
    d.unsubscribe(CDS, ['reviews/v1', 'nope']);
    const answer = await d.next(CDS);
    assert.deepEqual(deltaNames(answer), ['reviews/v1']);
    assert.deepEqual(removed(answer), ['nope']);
    d.ack(answer);
    await cp.store.delete(['Service/star-svc'], { author: 'test' });
    const gone = await d.next(CDS);
    assert.deepEqual(deltaNames(gone), []);
    assert.deepEqual(removed(gone), ['star-svc', 'star-svc/v1', 'star-svc/v2']);
    d.ack(gone);
    // '*' means nothing for EDS: only the named assignment is sent.
    d.subscribe(EDS, ['*', 'reviews/v2']);
    assert.deepEqual(deltaNames(await d.next(EDS)), ['reviews/v2']);
    assert.deepEqual(statusOf('star', EDS)?.subscribed, ['reviews/v2']);
  });

  test('subscribe and unsubscribe: only the newly subscribed names are sent; an unsubscribed one is no longer pushed', async () => {
    const d = delta('subs');
    d.subscribe(EDS, ['reviews/v1']);
    const a = await d.next(EDS);
    assert.deepEqual(deltaNames(a), ['reviews/v1']);
    d.ack(a);
    d.subscribe(EDS, ['reviews/v2']);
    const b = await d.next(EDS);
    assert.deepEqual(deltaNames(b), ['reviews/v2'], 'what the client holds is not sent again');
    d.ack(b);
    d.subscribe(EDS, ['reviews/v1']);
    const again = await d.next(EDS);
    assert.deepEqual(deltaNames(again), ['reviews/v1'], 'a name subscribed again is sent again');
    d.ack(again);
    d.unsubscribe(EDS, ['reviews/v1']);
    await until(() => statusOf('subs', EDS)?.subscribed.join() === 'reviews/v2', 'the unsubscribe to be applied');
    const l1 = cp.registry.register({ service: 'reviews', address: '127.0.0.21', port: 9000, labels: { version: 'v1' } });
    // Sentinel: change reviews/v2 too; the next response must be it alone, not reviews/v1.
    const l2 = cp.registry.register({ service: 'reviews', address: '127.0.0.22', port: 9000, labels: { version: 'v2' } });
    const c = await d.next(EDS);
    assert.deepEqual(deltaNames(c), ['reviews/v2']);
    assert.equal(lbEndpoints(c.resources[0]!), 1);
    d.ack(c);
    cp.registry.deregister(l1.id);
    cp.registry.deregister(l2.id);
    const back = await d.next(EDS);
    assert.deepEqual(deltaNames(back), ['reviews/v2']);
    d.ack(back);
  });

  test('a subscribed name that does not exist is reported in removed_resources, once, and sent when it appears', async () => {
    const d = delta('absent');
    d.subscribe(EDS, ['later/v1', 'reviews/v1']);
    const r = await d.next(EDS);
    assert.deepEqual(deltaNames(r), ['reviews/v1']);
    assert.deepEqual(removed(r), ['later/v1']);
    d.ack(r);
    await apply(service('later'));
    const appeared = await d.next(EDS);
    assert.deepEqual(deltaNames(appeared), ['later/v1']);
    assert.deepEqual(removed(appeared), []);
    d.ack(appeared);
    await cp.store.delete(['Service/later'], { author: 'test' });
    const deleted = await d.next(EDS);
    assert.deepEqual(deltaNames(deleted), []);
    assert.deepEqual(removed(deleted), ['later/v1']);
    d.ack(deleted);
  });

  test('a resource deleted from config is sent in removed_resources (CDS wildcard), with nothing else', async () => {
    await apply(service('doomed'));
    const d = delta('removal');
    d.subscribe(CDS);
    const all = await d.next(CDS);
    assert.ok(deltaNames(all).includes('doomed/v1'));
    d.ack(all);
    await cp.store.delete(['Service/doomed'], { author: 'test' });
    const r = await d.next(CDS);
    assert.deepEqual(removed(r), ['doomed', 'doomed/v1', 'doomed/v2']);
    assert.deepEqual(deltaNames(r), []);
    d.ack(r);
    await until(() => statusOf('removal', CDS)?.state === 'SYNCED', 'SYNCED after the removal');
  });

  test('a NACK keeps the previous good version, is reported in proxy-status and the rollout, and the rejected version is not re-sent', async () => {
    const d = delta('nacker');
    d.subscribe(RDS, ['reviews', 'ratings']);
    const first = await d.next(RDS);
    assert.deepEqual(deltaNames(first), ['ratings', 'reviews']);
    d.ack(first);
    await until(() => statusOf('nacker', RDS)?.state === 'SYNCED', 'SYNCED');
    const good = statusOf('nacker', RDS)!.ackedVersion;
    const change = await apply(split(50, 50));
    const second = await d.next(RDS);
    assert.deepEqual(deltaNames(second), ['reviews'], 'a route change sends only the changed RouteConfiguration');
    assert.notEqual(versions(second)['reviews'], versions(first)['reviews']);
    d.nack(second, 'weighted_clusters: I do not like 50/50');
    await until(() => statusOf('nacker', RDS)?.state === 'NACKED', 'NACKED');
    const st = statusOf('nacker', RDS)!;
    assert.equal(st.lastNack?.message, 'weighted_clusters: I do not like 50/50');
    assert.equal(st.lastNack?.version, second.system_version_info);
    assert.equal(st.ackedVersion, good, 'the client keeps its last good versions');
    const report = await cp.discovery.waitRollout(change.revision, 20_000);
    const mine = report.proxies.find((p) => p.nodeId === 'nacker');
    assert.equal(mine?.state, 'NACKED');
    assert.equal(mine?.types.find((t) => t.type === 'RDS')?.error, 'weighted_clusters: I do not like 50/50');
    // Sentinel: responses are ordered, so a re-sent RDS would arrive before this EDS response.
    d.subscribe(EDS, ['reviews/v1']);
    assert.equal((await d.next()).type_url, EDS, 'the rejected version was not re-sent');
    assert.equal(d.pending().length, 0);
    await apply(split(70, 30));
    const third = await d.next(RDS);
    assert.deepEqual(deltaNames(third), ['reviews']);
    d.ack(third);
    await until(() => statusOf('nacker', RDS)?.state === 'SYNCED', 'SYNCED after a good version');
    assert.equal(statusOf('nacker', RDS)?.lastNack?.message, 'weighted_clusters: I do not like 50/50');
    await apply(split(90, 10));
  });

  test('a reconnect with initial_resource_versions is sent only what changed or went away meanwhile', async () => {
    const d = delta('reconnect');
    d.subscribe(CDS);
    const first = await d.next(CDS);
    d.ack(first);
    const held = versions(first);
    d.close();
    await apply(service('newcomer'));
    const again = delta('reconnect');
    again.subscribe(CDS, [], { initial_resource_versions: { ...held, 'retired': 'abc' } });
    const r = await again.next(CDS);
    assert.deepEqual(deltaNames(r), ['newcomer', 'newcomer/v1', 'newcomer/v2'], 'nothing already held at the same version');
    assert.deepEqual(removed(r), ['retired']);
    const s = sotw('reconnect-sotw');
    s.subscribe(CDS);
    assert.equal(r.system_version_info, (await s.next(CDS)).version_info);
    again.ack(r);
    // Holding everything already, the first answer is empty (so the client can finish initializing).
    const probe = delta('reconnect-probe');
    probe.subscribe(EDS, ['reviews/v1']);
    const v = versions(await probe.next(EDS))['reviews/v1']!;
    const holder = delta('reconnect-holder');
    holder.subscribe(EDS, ['reviews/v1'], { initial_resource_versions: { 'reviews/v1': v } });
    const empty = await holder.next(EDS);
    assert.deepEqual(deltaNames(empty), []);
    assert.deepEqual(removed(empty), []);
    holder.ack(empty);
    await until(() => statusOf('reconnect-holder', EDS)?.state === 'SYNCED', 'the holder SYNCED without being sent anything');
    await cp.store.delete(['Service/newcomer'], { author: 'test' });
  });

  test('EDS churn in one service sends only that ClusterLoadAssignment', async () => {
    const d = delta('churn');
    d.subscribe(EDS, ['reviews/v1', 'reviews/v2', 'ratings/v1', 'ratings/v2']);
    d.ack(await d.next(EDS));
    const leases = [];
    for (let i = 1; i <= 3; i++) {
      leases.push(cp.registry.register({ service: 'ratings', address: `127.0.0.${30 + i}`, port: 9000, labels: { version: 'v1' } }));
      const r = await eventually(async () => {
        const x = await d.next(EDS);
        d.ack(x);
        return lbEndpoints(x.resources[0]!) === i ? x : undefined;
      }, `ratings/v1 with ${i} endpoints`);
      assert.deepEqual(deltaNames(r), ['ratings/v1']);
    }
    for (const x of d.received.slice(1)) assert.deepEqual(deltaNames(x), ['ratings/v1'], 'no other assignment went out');
    for (const l of leases) cp.registry.deregister(l.id);
  });

  test('a delta client that stops reading never delays others, and its backlog coalesces', async () => {
    const slow = delta('slow');
    const fast = delta('fast');
    await apply(bigService('big', 1, 1000));
    slow.subscribe(EDS, ['big']);
    fast.subscribe(EDS, ['big']);
    slow.ack(await slow.next(EDS));
    fast.ack(await fast.next(EDS));
    slow.call.pause();
    const rounds = 30;
    for (let i = 1; i <= rounds; i++) {
      await apply(bigService('big', i + 1, 1000 - i));
      const r = await fast.next(EDS);
      assert.equal(lbEndpoints(r.resources[0]!), 1000 - i);
      fast.ack(r);
    }
    slow.call.resume();
    await eventually(async () => {
      const r = await slow.next(EDS, 10_000);
      slow.ack(r);
      return r.resources.length === 1 && lbEndpoints(r.resources[0]!) === 1000 - rounds ? r : undefined;
    }, 'the slow client to reach the latest version');
    const n = slow.received.length;
    assert.ok(n < rounds + 1, `the slow client's backlog was coalesced (${n} responses for ${rounds + 1} versions)`);
    await cp.store.delete(['Service/big'], { author: 'test' });
  });

  test('ends a stream whose first request has no node, or that breaks the limits, with INVALID_ARGUMENT', async () => {
    const noNode = delta('no-node');
    noNode.send({ type_url: LDS });
    const s1 = await noNode.ended();
    assert.equal(s1.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s1.details, /node/);
    const tooMany = delta('too-many');
    tooMany.subscribe(EDS, Array.from({ length: 10_001 }, (_, i) => `n${i}`));
    const s2 = await tooMany.ended();
    assert.equal(s2.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s2.details, /resource_names_subscribe/);
  });
});
