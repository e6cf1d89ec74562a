import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { bigService, service, split, startAdsPlane } from '../../support/ads-plane';
import type { AdsPlane } from '../../support/ads-plane';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { decoded, eventually, names, RawAdsClient } from '../../support/ads-client';

const { LISTENER: LDS, ROUTE: RDS, CLUSTER: CDS, ENDPOINT: EDS } = TYPE_URLS;


describe('ADS state of the world', () => {
  let plane: AdsPlane;
  let cp: AdsPlane['cp'];
  const clients: RawAdsClient[] = [];
  const connect = (node: string) => { const c = new RawAdsClient(`127.0.0.1:${cp.xdsInsecurePort}`, node); clients.push(c); return c; };
  const apply = (...docs: unknown[]) => plane.apply(...docs);
  const statusOf = (node: string, type: string) => plane.statusOf(node, type);

  before(async () => {
    plane = await startAdsPlane('skein-ads-');
    cp = plane.cp;
  });
  after(async () => {
    for (const c of clients) c.close();
    await plane.close();
  });

  test('answers a wildcard LDS and CDS subscription with every resource, with content-hash versions', async () => {
    const c = connect('wild');
    c.subscribe(LDS);
    const lds = await c.next(LDS);
    assert.deepEqual(names(lds), ['ratings', 'ratings:50051', 'reviews', 'reviews:50051', 'skein.inbound.ratings', 'skein.inbound.reviews', 'skein.outbound']);
    assert.match(lds.version_info, /^[0-9a-f]{16}$/);
    c.send({ type_url: CDS, resource_names: [] });
    const cds = await c.next(CDS);
    assert.deepEqual(names(cds), ['ratings', 'ratings/v1', 'ratings/v2', 'reviews', 'reviews/v1', 'reviews/v2']);
    // The same content gives the same version on another stream (and after a restart).
    const d = connect('wild-2');
    d.subscribe(LDS);
    assert.equal((await d.next(LDS)).version_info, lds.version_info);
  });

  test('tracks ACKs: STALE until the client ACKs, then SYNCED', async () => {
    const c = connect('acker');
    c.subscribe(RDS, ['reviews']);
    const rds = await c.next(RDS);
    assert.deepEqual(names(rds), ['reviews']);
    assert.equal(statusOf('acker', RDS)?.state, 'STALE');
    c.ack(rds, ['reviews']);
    await eventually(() => (statusOf('acker', RDS)?.state === 'SYNCED' ? true : undefined), 'SYNCED');
    assert.equal(statusOf('acker', RDS)?.ackedVersion, rds.version_info);
    const proxy = cp.discovery.proxies().find((p) => p.nodeId === 'acker')!;
    assert.equal(proxy.userAgent, 'raw-ads-test/1.0');
    assert.equal(proxy.state, 'SYNCED');
  });

  test('records a NACK with its error, never re-sends the rejected version, and sends the next good one', async () => {
    const c = connect('nacker');
    c.subscribe(RDS, ['reviews']);
    const first = await c.next(RDS);
    c.ack(first, ['reviews']);
    await apply(split(50, 50));
    const second = await c.next(RDS);
    assert.notEqual(second.version_info, first.version_info);
    c.nack(second, first.version_info, 'weighted_clusters: I do not like 50/50', ['reviews']);
    await eventually(() => (statusOf('nacker', RDS)?.state === 'NACKED' ? true : undefined), 'NACKED');
    const st = statusOf('nacker', RDS)!;
    assert.equal(st.lastNack?.message, 'weighted_clusters: I do not like 50/50');
    assert.equal(st.lastNack?.version, second.version_info);
    assert.equal(st.ackedVersion, first.version_info, 'the client keeps its last good version');
    // Sentinel: subscribe to EDS on the same stream. Responses are ordered, so if the server had
    // re-sent the rejected RDS it would arrive before this EDS response.
    c.send({ type_url: EDS, resource_names: ['reviews/v1'] });
    const eds = await c.next();
    assert.equal(eds.type_url, EDS, 'the rejected RDS version was not re-sent');
    assert.equal(c.pending().length, 0);
    // A new config version is pushed, and an ACK clears the NACKED state but keeps the history.
    await apply(split(70, 30));
    const third = await c.next(RDS);
    c.ack(third, ['reviews']);
    await eventually(() => (statusOf('nacker', RDS)?.state === 'SYNCED' ? true : undefined), 'SYNCED after a good version');
    assert.equal(statusOf('nacker', RDS)?.lastNack?.message, 'weighted_clusters: I do not like 50/50');
    await apply(split(90, 10));
  });

  test('ignores a request with a stale nonce', async () => {
    const c = connect('stale');
    c.subscribe(CDS);
    const a = await c.next(CDS);
    c.ack(a);
    await apply(split(60, 40), service('extra'));
    const b = await c.next(CDS);
    // A request echoing the OLD nonce (as if sent before b arrived) must not be answered.
    c.send({ type_url: CDS, version_info: a.version_info, response_nonce: a.nonce, resource_names: [] });
    c.send({ type_url: EDS, resource_names: ['extra'] });
    const sentinel = await c.next();
    assert.equal(sentinel.type_url, EDS, 'no response to the stale-nonce request');
    assert.equal(statusOf('stale', CDS)?.ackedVersion, a.version_info, 'a stale request is not an ACK');
    c.ack(b);
    await cp.store.delete(['Service/extra'], { author: 'test' });
    await apply(split(90, 10));
  });

  test('serves RDS and EDS per requested name, and answers nothing for names that do not exist', async () => {
    const c = connect('per-name');
    c.subscribe(EDS, ['nope']);
    c.send({ type_url: RDS, resource_names: ['reviews'] });
    const first = await c.next();
    assert.equal(first.type_url, RDS, 'no EDS response for a name that does not exist');
    c.send({ type_url: EDS, resource_names: ['nope', 'reviews/v2'] });
    const eds = await c.next(EDS);
    assert.deepEqual(names(eds), ['reviews/v2']);
    c.ack(eds, ['nope', 'reviews/v2', 'reviews/v1']);
    const both = await c.next(EDS);
    assert.deepEqual(names(both), ['reviews/v1', 'reviews/v2']);
  });

  test('answers a named LDS request for a missing listener with an empty response (full state: absent means deleted)', async () => {
    const c = connect('missing-lds');
    c.subscribe(LDS, ['no-such-service']);
    const lds = await c.next(LDS);
    assert.deepEqual(lds.resources ?? [], []);
  });

  test('pushes a change only to the streams it affects', async () => {
    const a = connect('affected-a');
    const b = connect('affected-b');
    a.subscribe(EDS, ['reviews/v1']);
    b.subscribe(EDS, ['ratings/v1']);
    a.ack(await a.next(EDS), ['reviews/v1']);
    b.ack(await b.next(EDS), ['ratings/v1']);
    const lease = cp.registry.register({ service: 'ratings', address: '127.0.0.9', port: 9000, labels: { version: 'v1' } });
    const pushed = await b.next(EDS);
    assert.deepEqual(decoded<{ endpoints: { lb_endpoints: unknown[] }[] }>(pushed)[0]!.endpoints[0]!.lb_endpoints.length, 1);
    // Sentinel for a: change what a watches; its next message must be that, not the ratings change.
    const lease2 = cp.registry.register({ service: 'reviews', address: '127.0.0.8', port: 9000, labels: { version: 'v1' } });
    const forA = await a.next();
    assert.deepEqual(names(forA), ['reviews/v1']);
    assert.equal(a.received.filter((r) => r.type_url === EDS).length, 2);
    cp.registry.deregister(lease.id);
    cp.registry.deregister(lease2.id);
  });

  test('never lets a client that stops reading delay pushes to others, and coalesces its backlog', async () => {
    const slow = connect('slow');
    const fast = connect('fast');
    slow.subscribe(EDS, ['big']);
    fast.subscribe(EDS, ['big']);
    await apply(bigService('big', 1, 1000));
    const s0 = await slow.next(EDS);
    slow.ack(s0, ['big']);
    fast.ack(await fast.next(EDS), ['big']);
    slow.call.pause(); // stop reading: the HTTP/2 window fills and the server's writes back up
    const rounds = 60;
    for (let i = 1; i <= rounds; i++) {
      await apply(bigService('big', i + 1, 1000 - i));
      const r = await fast.next(EDS); // the fast client gets every update while the slow one is stuck
      assert.equal(decoded<{ endpoints: { lb_endpoints: unknown[] }[] }>(r)[0]!.endpoints[0]!.lb_endpoints.length, 1000 - i);
      fast.ack(r, ['big']);
    }
    slow.call.resume();
    const last = await eventually(async () => {
      const r = await slow.next(EDS, 10_000);
      const n = decoded<{ endpoints: { lb_endpoints: unknown[] }[] }>(r)[0]!.endpoints[0]!.lb_endpoints.length;
      return n === 1000 - rounds ? r : undefined;
    }, 'the slow client to reach the latest version');
    assert.ok(last);
    const slowResponses = slow.received.filter((r) => r.type_url === EDS).length;
    assert.ok(slowResponses < rounds + 1, `the slow client's backlog was coalesced (${slowResponses} responses for ${rounds + 1} versions)`);
    await cp.store.delete(['Service/big'], { author: 'test' });
  });

  test('resyncs a reconnecting client from scratch', async () => {
    const c = connect('reconnect');
    c.subscribe(CDS);
    const first = await c.next(CDS);
    c.ack(first);
    c.close();
    const again = connect('reconnect');
    // Even though it says it already has `first`, a new stream always gets a full response.
    again.subscribe(CDS, [], { version_info: first.version_info });
    const resent = await again.next(CDS);
    assert.equal(resent.version_info, first.version_info);
    assert.deepEqual(names(resent), names(first));
    await eventually(() => (cp.discovery.proxies().filter((p) => p.nodeId === 'reconnect').length === 1 ? true : undefined), 'the old stream to be forgotten');
  });

  test('ends a stream whose first request has no node, or that breaks the limits, with INVALID_ARGUMENT', async () => {
    const noNode = connect('no-node');
    noNode.send({ type_url: LDS, resource_names: [] });
    const s1 = await noNode.ended();
    assert.equal(s1.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s1.details, /node/);
    const tooMany = connect('too-many');
    tooMany.subscribe(EDS, Array.from({ length: 10_001 }, (_, i) => `n${i}`));
    const s2 = await tooMany.ended();
    assert.equal(s2.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s2.details, /resource_names/);
    // Others are unaffected.
    const ok = connect('still-ok');
    ok.subscribe(LDS);
    assert.ok((await ok.next(LDS)).resources.length > 0);
  });
});
