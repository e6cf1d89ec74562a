/**
 * The control plane serves the mesh's trust bundle over SDS (secret ROOTCA), per name like RDS
 * and EDS, and never a workload's own certificate ('default'): against a real `skein
 * control-plane` process, with a raw ADS client on its plaintext xDS port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { isFullStateType, PUSH_ORDER } from '../../shared/src/xds/resource-kind';
import { decoded, eventually, names, RawAdsClient } from '../support/ads-client';
import { call, startPlane, stopPlane } from '../support/skein';
import type { Plane } from '../support/skein';

const V = 'skein.dev/v1alpha1';

describe('SDS: ROOTCA is the trust bundle of GET /v1/ca; default is never served', () => {
  let plane: Plane;
  const clients: RawAdsClient[] = [];
  const connect = (node: string) => { const c = new RawAdsClient(plane.proc.xdsInsecure!, node); clients.push(c); return c; };
  const proxy = async (node: string) => ((await call(plane.api, 'GET', '/v1/proxies')).body.proxies as { nodeId: string; state: string; types: { typeUrl: string; subscribed: string[]; state: string }[] }[]).find((p) => p.nodeId === node);

  before(async () => {
    plane = await startPlane({ extraArgs: ['--xds-insecure-listen', '127.0.0.1:0', '--trust-domain', 'mesh.example.org'] });
    const r = await call(plane.api, 'POST', '/v1/config', { body: [
      { apiVersion: V, kind: 'Service', metadata: { name: 'reviews' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } },
      { apiVersion: V, kind: 'Service', metadata: { name: 'legacy' }, spec: { ports: [{ name: 'grpc', port: 50051 }], mtls: 'DISABLE' } },
    ] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  after(async () => {
    for (const c of clients) c.close();
    await stopPlane(plane);
  });

  test('a subscription to ROOTCA and default gets exactly ROOTCA, whose bytes are the trust bundle; the client shows SYNCED after its ACK', async () => {
    const c = connect('sds-client');
    c.subscribe(TYPE_URLS.SECRET, ['ROOTCA', 'default']);
    const r = await c.next(TYPE_URLS.SECRET);
    assert.deepEqual(names(r), ['ROOTCA']);
    const [secret] = decoded<{ name: string; validation_context: { trusted_ca: { inline_bytes: Buffer } } }>(r);
    const ca = (await call(plane.api, 'GET', '/v1/ca')).body as { trustDomain: string; trustBundle: string };
    assert.equal(ca.trustDomain, 'mesh.example.org');
    assert.match(ca.trustBundle, /^-----BEGIN CERTIFICATE-----/);
    assert.equal(Buffer.from(secret!.validation_context.trusted_ca.inline_bytes).toString('utf8'), ca.trustBundle);
    c.ack(r, ['ROOTCA', 'default']);
    const p = await eventually(async () => { const x = await proxy('sds-client'); return x?.state === 'SYNCED' ? x : undefined; }, 'the SDS client SYNCED');
    assert.deepEqual(p.types.map((t) => [t.typeUrl, t.subscribed]), [[TYPE_URLS.SECRET, ['ROOTCA', 'default']]]);
  });

  test('a subscription to default alone gets no response (a per-name type with none of the names); the stream goes on', async () => {
    const c = connect('default-only');
    c.subscribe(TYPE_URLS.SECRET, ['default']);
    // Responses on a stream are in order: had the server answered SDS, it would come before this CDS answer.
    c.send({ type_url: TYPE_URLS.CLUSTER, resource_names: [] });
    await c.next(TYPE_URLS.CLUSTER);
    assert.deepEqual(c.received.filter((r) => r.type_url === TYPE_URLS.SECRET), []);
  });

  test('SDS is pushed first: a cluster never names a secret the client has not been offered', () => {
    assert.equal(PUSH_ORDER[0], TYPE_URLS.SECRET);
    assert.equal(isFullStateType(TYPE_URLS.SECRET), false, 'per name, like RDS and EDS');
  });

  test('over the wire, the clusters of a STRICT service carry transport_socket_matches with this trust domain; a DISABLE service\'s do not', async () => {
    const c = connect('cds');
    c.subscribe(TYPE_URLS.CLUSTER);
    const clusters = decoded<{ name: string; transport_socket_matches?: { name: string }[] }>(await c.next(TYPE_URLS.CLUSTER));
    assert.deepEqual(clusters.map((x) => [x.name, x.transport_socket_matches?.map((m) => m.name)]), [['legacy', undefined], ['reviews', ['skein-mtls']]]);
    const dump = (await call(plane.api, 'GET', '/v1/xds?type=clusters')).body as { clusters: { name: string; resource: any }[] };
    assert.equal(dump.clusters.find((x) => x.name === 'reviews')!.resource.transport_socket_matches[0].transport_socket.typed_config.sni, 'reviews.mesh.example.org');
  });

  test('GET /v1/xds?type=secrets shows ROOTCA (the bundle is public; there is nothing else)', async () => {
    const dump = (await call(plane.api, 'GET', '/v1/xds?type=secrets')).body as { secrets: { name: string }[] };
    assert.deepEqual(dump.secrets.map((s) => s.name), ['ROOTCA']);
  });
});
