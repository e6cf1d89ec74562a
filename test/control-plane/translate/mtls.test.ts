/**
 * The client side of sidecar mTLS and the SDS secret, pinned to the contract with the sidecar
 * (notes: the xDS shapes for data-path mTLS): the clusters' transport_socket_matches per
 * spec.mtls, the server SAN regex, EDS metadata on endpoints with an identity, and ROOTCA.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMesh } from '../../../shared/src/config/mesh';
import { translate } from '../../../control-plane/src/translate/translate';
import type { EndpointView } from '../../../control-plane/src/registry/endpoint-registry';
import type { XdsObject } from '../../../control-plane/src/translate/xds-json';
import { SnapshotCache } from '../../../control-plane/src/discovery/snapshot-cache';
import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

const V = 'skein.dev/v1alpha1';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const ADS = { ads: {}, resource_api_version: 'V3' };
const TLS_MODE = { fields: { tlsMode: { stringValue: 'skein' } } };
const BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const trust = (trustDomain = 'skein.local') => ({ trust: { trustDomain, trustBundlePem: BUNDLE } });

const service = (name: string, spec: Doc = {}): Doc => ({
  apiVersion: V, kind: 'Service', metadata: { name },
  spec: { ports: [{ name: 'p', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }], ...spec },
});

/** The contract's transport_socket_matches, written out. */
function expectedMatches(o: { sanSuffix: string; alpn: string; sni: string }): XdsObject[] {
  return [{
    name: 'skein-mtls',
    match: TLS_MODE,
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS,
        common_tls_context: {
          tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { suffix: o.sanSuffix } }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS },
          },
          alpn_protocols: [o.alpn],
        },
        sni: o.sni,
      },
    },
  }];
}


interface MatchCase {
  name: string;
  spec: Doc;
  trustDomain?: string;
  /** undefined: the clusters carry no transport_socket_matches. */
  expect: { sanSuffix: string; alpn: string; sni: string } | undefined;
}

const MATCH_CASES: MatchCase[] = [
  { name: 'STRICT (the default), grpc: h2, the service name as service account', spec: {}, expect: { sanSuffix: '/sa/reviews', alpn: 'h2', sni: 'reviews.skein.local' } },
  { name: 'STRICT written out is the default', spec: { mtls: 'STRICT' }, expect: { sanSuffix: '/sa/reviews', alpn: 'h2', sni: 'reviews.skein.local' } },
  { name: 'PERMISSIVE: clients still send mTLS to sidecars', spec: { mtls: 'PERMISSIVE' }, expect: { sanSuffix: '/sa/reviews', alpn: 'h2', sni: 'reviews.skein.local' } },
  { name: 'DISABLE: no transport_socket_matches, clients send plaintext', spec: { mtls: 'DISABLE' }, expect: undefined },
  { name: 'an http service: ALPN http/1.1', spec: { protocol: 'http' }, expect: { sanSuffix: '/sa/reviews', alpn: 'http/1.1', sni: 'reviews.skein.local' } },
  { name: 'spec.serviceAccount drives the SAN (not the service name)', spec: { serviceAccount: 'reviews-sa' }, expect: { sanSuffix: '/sa/reviews-sa', alpn: 'h2', sni: 'reviews.skein.local' } },
  { name: 'the trust domain is in the SNI as is', spec: {}, trustDomain: 'prod.example.com', expect: { sanSuffix: '/sa/reviews', alpn: 'h2', sni: 'reviews.prod.example.com' } },
];

describe('clusters: transport_socket_matches per spec.mtls, on the service cluster and every subset cluster', () => {
  for (const c of MATCH_CASES) {
    test(c.name, () => {
      const out = translate(buildMesh([service('reviews', c.spec)]), [], trust(c.trustDomain));
      assert.deepEqual(out.clusters.map((x) => x['name']), ['reviews', 'reviews/v1', 'reviews/v2']);
      for (const cl of out.clusters as XdsObject[]) {
        if (c.expect === undefined) assert.ok(!('transport_socket_matches' in cl), `${String(cl['name'])} has transport_socket_matches`);
        else assert.deepEqual(cl['transport_socket_matches'], expectedMatches(c.expect), String(cl['name']));
        assert.ok(!('transport_socket' in cl), 'never a plain transport_socket: endpoints without a sidecar stay plaintext, and grpc-js-xds would NACK it');
      }
    });
  }

  test('each service gets its own settings', () => {
    const out = translate(buildMesh([service('reviews'), service('ratings', { mtls: 'DISABLE' }), service('web', { protocol: 'http', serviceAccount: 'frontend' })]), [], trust());
    const tsm = (name: string) => (out.clusters as XdsObject[]).find((x) => x['name'] === name)!['transport_socket_matches'] as any[] | undefined;
    assert.equal(tsm('ratings'), undefined);
    assert.equal(tsm('ratings/v2'), undefined);
    assert.equal(tsm('reviews/v2')![0].transport_socket.typed_config.sni, 'reviews.skein.local');
    assert.equal(tsm('web')![0].transport_socket.typed_config.sni, 'web.skein.local');
    assert.equal(tsm('web')![0].transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].matcher.suffix, '/sa/frontend');
  });

  test('encodes, and decodes back with the match criteria and the packed UpstreamTlsContext', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh([service('reviews')]), [], trust()), 1);
    const c = decodeAny(cache.get(TYPE_URLS.CLUSTER, 'reviews/v1')!.any);
    assert.deepEqual(c.transport_socket_matches[0].match, { fields: { tlsMode: { stringValue: 'skein', kind: 'stringValue' } } });
    const tls = decodeAny(c.transport_socket_matches[0].transport_socket.typed_config);
    assert.equal(tls.sni, 'reviews.skein.local');
    assert.equal(tls.common_tls_context.tls_params.tls_minimum_protocol_version, 'TLSv1_3');
    assert.equal(tls.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name, 'ROOTCA');
  });
});

describe('the server SAN matcher', () => {
  const suffixFor = (spec: Doc = {}): string => {
    const out = translate(buildMesh([service('reviews', spec)]), [], trust('a-very-long-trust-domain-name.example-organisation.internal'));
    return (out.clusters[0] as any).transport_socket_matches[0].transport_socket.typed_config.common_tls_context
      .combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].matcher.suffix;
  };
  const CASES: { spec?: Doc; id: string; matches: boolean }[] = [
    { id: 'spiffe://skein.local/ns/default/sa/reviews', matches: true },
    { id: 'spiffe://skein.local/ns/prod-1/sa/reviews', matches: true },
    { id: 'spiffe://skein.local/ns/default/sa/ratings', matches: false },
    { id: 'spiffe://skein.local/ns/default/sa/reviews2', matches: false },
    { id: 'spiffe://skein.local/ns/default/sa/xreviews', matches: false },
    { spec: { serviceAccount: 'reviews-sa' }, id: 'spiffe://skein.local/ns/default/sa/reviews-sa', matches: true },
    { spec: { serviceAccount: 'reviews-sa' }, id: 'spiffe://skein.local/ns/default/sa/reviews', matches: false },
  ];
  for (const c of CASES) {
    test(`${c.matches ? 'matches' : 'does not match'} ${c.id}${c.spec ? ` (${JSON.stringify(c.spec)})` : ''}, however long the trust domain`, () => {
      assert.equal(c.id.endsWith(suffixFor(c.spec)), c.matches);
    });
  }
});

describe('EDS: endpoints with an identity (a sidecar) carry the transport socket match metadata', () => {
  const ep = (address: string, more: Partial<EndpointView> = {}): EndpointView =>
    ({ service: 'reviews', address, port: 50051, labels: { version: 'v1' }, zone: '', weight: 1, health: 'HEALTHY', ...more });
  const META = { filter_metadata: { 'envoy.transport_socket_match': TLS_MODE } };
  const lbEndpoints = (mtls: string, live: EndpointView[], statics: Doc[] = []) => {
    const out = translate(buildMesh([service('reviews', { mtls, endpoints: statics })]), live, trust());
    return Object.fromEntries(out.endpoints.map((cla) => [cla.cluster_name, (cla.endpoints ?? []).flatMap((l) => l.lb_endpoints ?? [])]));
  };

  for (const mtls of ['STRICT', 'PERMISSIVE', 'DISABLE']) {
    test(`${mtls}: a registered sidecar endpoint has the metadata; an HTTP registration and a static endpoint have none`, () => {
      const byCluster = lbEndpoints(mtls, [ep('10.0.0.1', { identity: 'spiffe://skein.local/ns/default/sa/reviews' }), ep('10.0.0.2')], [{ address: '10.0.0.3', port: 50051, labels: { version: 'v1' } }]);
      for (const name of ['reviews', 'reviews/v1']) {
        const got = Object.fromEntries(byCluster[name]!.map((e: any) => [e.endpoint.address.socket_address.address, e.metadata]));
        assert.deepEqual(got, { '10.0.0.1': META, '10.0.0.2': undefined, '10.0.0.3': undefined }, name);
      }
    });
  }

  test('the metadata encodes as a Struct under envoy.transport_socket_match', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh([service('reviews')]), [ep('10.0.0.1', { identity: 'spiffe://skein.local/ns/default/sa/reviews' })], trust()), 1);
    const cla = decodeAny(cache.get(TYPE_URLS.ENDPOINT, 'reviews')!.any);
    assert.deepEqual(cla.endpoints[0].lb_endpoints[0].metadata, { filter_metadata: { 'envoy.transport_socket_match': { fields: { tlsMode: { stringValue: 'skein', kind: 'stringValue' } } } } });
  });

  test('an endpoint gaining an identity changes its load assignments, and nothing else', () => {
    const a = new SnapshotCache();
    a.set(translate(buildMesh([service('reviews'), service('ratings')]), [ep('10.0.0.1')], trust()), 1);
    const change = a.set(translate(buildMesh([service('reviews'), service('ratings')]), [ep('10.0.0.1', { identity: 'spiffe://skein.local/ns/default/sa/reviews' })], trust()), 2);
    assert.deepEqual([...change.changed.keys()], [TYPE_URLS.ENDPOINT]);
    assert.deepEqual([...change.changed.get(TYPE_URLS.ENDPOINT)!].sort(), ['reviews', 'reviews/v1']);
  });
});

describe('SDS', () => {
  test('one Secret, ROOTCA: the trust bundle PEM as trusted_ca inline_bytes; never the workload certificate (default)', () => {
    const out = translate(buildMesh([service('reviews')]), [], trust());
    assert.deepEqual(out.secrets, [{ name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: Buffer.from(BUNDLE).toString('base64') } } }]);
    const cache = new SnapshotCache();
    cache.set(out, 1);
    assert.deepEqual([...cache.all(TYPE_URLS.SECRET).keys()], ['ROOTCA']);
    const s = decodeAny(cache.get(TYPE_URLS.SECRET, 'ROOTCA')!.any);
    assert.equal(Buffer.from(s.validation_context.trusted_ca.inline_bytes).toString('utf8'), BUNDLE);
  });

  test('ROOTCA exists with no services too, and changes when the bundle does', () => {
    const a = new SnapshotCache();
    a.set(translate(buildMesh([]), [], trust()), 1);
    assert.ok(a.get(TYPE_URLS.SECRET, 'ROOTCA'));
    const change = a.set(translate(buildMesh([]), [], { trust: { trustDomain: 'skein.local', trustBundlePem: `${BUNDLE}${BUNDLE}` } }), 2);
    assert.deepEqual([...change.changed.get(TYPE_URLS.SECRET)!], ['ROOTCA']);
  });
});
