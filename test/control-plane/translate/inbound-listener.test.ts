/**
 * The inbound listener skein.inbound.<service>, pinned to the contract with the sidecar: its
 * filter chains per spec.mtls (the sidecar reads its mode from which chains exist), and every
 * field of each chain (for other xDS clients).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMesh } from '../../../shared/src/config/mesh';
import { translate } from '../../../control-plane/src/translate/translate';
import type { XdsObject } from '../../../control-plane/src/translate/xds-json';
import { SnapshotCache } from '../../../control-plane/src/discovery/snapshot-cache';
import { decodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { TEST_TRANSLATE } from '../../support/mesh-trust';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

const ADS = { ads: {}, resource_api_version: 'V3' };
const HCM = {
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: 'inbound',
    route_config: { name: 'skein.inbound', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'skein.inbound' } }] }] },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    forward_client_cert_details: 'SANITIZE_SET',
    // uri is a plain bool in Envoy's SetCurrentClientCertDetails (only subject is a BoolValue).
    set_current_client_cert_details: { uri: true },
    // The mesh's trace sampling (Telemetry "mesh"; none applied: the 1% default).
    tracing: { random_sampling: { value: 1 } },
  },
};
const MTLS = {
  name: 'mtls',
  filter_chain_match: { transport_protocol: 'tls' },
  transport_socket: {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: { value: true },
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS },
        alpn_protocols: ['h2', 'http/1.1'],
      },
    },
  },
  filters: [HCM],
};
const PLAINTEXT = { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [HCM] };

const service = (name: string, spec: Doc = {}): Doc =>
  ({ apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'p', port: 8080 }], ...spec } });
const inbound = (docs: Doc[], name: string): XdsObject => {
  const found = translate(buildMesh(docs), [], TEST_TRANSLATE).listeners.filter((l) => l.name === name);
  assert.equal(found.length, 1, `one listener ${name}`);
  return found[0] as XdsObject;
};

describe('one inbound listener per Service, its filter chains by spec.mtls', () => {
  const CASES: { name: string; spec: Doc; chains: XdsObject[] }[] = [
    { name: 'STRICT (the default): mtls only', spec: {}, chains: [MTLS] },
    { name: 'STRICT written out', spec: { mtls: 'STRICT' }, chains: [MTLS] },
    { name: 'PERMISSIVE: mtls, then plaintext', spec: { mtls: 'PERMISSIVE' }, chains: [MTLS, PLAINTEXT] },
    { name: 'DISABLE: plaintext only', spec: { mtls: 'DISABLE' }, chains: [PLAINTEXT] },
    { name: 'an http service gets the same chains (ALPN offers both)', spec: { protocol: 'http', mtls: 'PERMISSIVE' }, chains: [MTLS, PLAINTEXT] },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      assert.deepEqual(inbound([service('reviews', c.spec)], 'skein.inbound.reviews'), {
        name: 'skein.inbound.reviews',
        address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
        filter_chains: c.chains,
      });
    });
  }

  test('routes and their filters (fault, rate limit) stay on the client side: the inbound HCM is the router alone', () => {
    const route = { apiVersion: 'skein.dev/v1alpha1', kind: 'HTTPRoute', metadata: { name: 'r' }, spec: { parentRefs: [{ name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews' }], filters: [{ type: 'Fault', fault: { abort: { httpStatus: 503 } } }] }] } };
    assert.deepEqual(inbound([service('reviews', { protocol: 'http' }), route], 'skein.inbound.reviews')['filter_chains'], [MTLS]);
  });

  test('each service has its own, by its own mode', () => {
    const docs = [service('a'), service('b', { mtls: 'DISABLE' }), service('c', { mtls: 'PERMISSIVE' })];
    const names = (l: XdsObject) => (l['filter_chains'] as XdsObject[]).map((ch) => ch['name']);
    assert.deepEqual([names(inbound(docs, 'skein.inbound.a')), names(inbound(docs, 'skein.inbound.b')), names(inbound(docs, 'skein.inbound.c'))], [['mtls'], ['plaintext'], ['mtls', 'plaintext']]);
  });

  test('encodes; the chains decode with their match, the DownstreamTlsContext and the HCM\'s client cert settings', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh([service('reviews', { mtls: 'PERMISSIVE' })]), [], TEST_TRANSLATE), 1);
    const l = decodeAny(cache.get(TYPE_URLS.LISTENER, 'skein.inbound.reviews')!.any);
    assert.deepEqual(l.filter_chains.map((c: any) => [c.name, c.filter_chain_match.transport_protocol]), [['mtls', 'tls'], ['plaintext', 'raw_buffer']]);
    const tls = decodeAny(l.filter_chains[0].transport_socket.typed_config);
    assert.deepEqual(tls.require_client_certificate, { value: true });
    assert.equal(tls.common_tls_context.validation_context_sds_secret_config.name, 'ROOTCA');
    const hcm = decodeAny(l.filter_chains[1].filters[0].typed_config);
    assert.equal(hcm.forward_client_cert_details, 'SANITIZE_SET');
    assert.deepEqual(hcm.set_current_client_cert_details, { uri: true });
    assert.equal(hcm.route_config.virtual_hosts[0].routes[0].route.cluster, 'skein.inbound');
  });
});
