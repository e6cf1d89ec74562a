/**
 * The inbound Listener as the sidecar decodes it (xds/inbound-listener.ts): its mode from the
 * chains, and the RBAC filters of the HCM, which must be the same in every chain; a bad RBAC
 * filter NACKs the Listener naming the field.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeAny, TYPE_URLS } from '../../../shared/src/xds/protos';
import { listenerType } from '../../../sidecar/src/pipeline';
import type { ListenerConfig } from '../../../sidecar/src/xds/listener-type';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Msg = Record<string, any>;

const ROUTER = { name: 'envoy.filters.http.router', typed_config: encodeAny(TYPE_URLS.ROUTER, {}) };
const rbac = (rules: Msg) => ({ name: 'envoy.filters.http.rbac', typed_config: encodeAny(TYPE_URLS.RBAC, { rules }) });
const DENY_ALL = rbac({ action: 'ALLOW' });
/** The HCM the control plane sends (translate/inbound-listener.ts), with `over` fields replaced. */
const HCM_FIELDS: Msg = {
  stat_prefix: 'inbound', forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true },
  route_config: { name: 'skein.inbound', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'skein.inbound' } }] }] },
};
const hcm = (filters: Msg[], over: Msg = {}) => [{ name: 'envoy.filters.network.http_connection_manager', typed_config: encodeAny(TYPE_URLS.HCM, { ...HCM_FIELDS, http_filters: filters, ...over }) }];
const plaintext = (filters: Msg[]) => ({ name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: hcm(filters) });

function decode(chains: Msg[]): ListenerConfig | string {
  const r = listenerType.decode(encodeAny(TYPE_URLS.LISTENER, { name: 'skein.inbound.greeter', address: { socket_address: { address: '0.0.0.0', port_value: 15006 } }, filter_chains: chains }));
  return 'error' in r ? r.error : r.value;
}

describe('the inbound listener\'s http filters', () => {
  test('no filter but the router: the inbound chain has none', () => {
    const l = decode([plaintext([ROUTER])]) as ListenerConfig;
    assert.deepEqual([l.inbound?.mode, l.inbound?.httpFilters], ['DISABLE', []]);
  });

  test('RBAC filters before the router are decoded, in order', () => {
    const l = decode([plaintext([rbac({ action: 'DENY' }), DENY_ALL, ROUTER])]) as ListenerConfig;
    assert.deepEqual(l.inbound!.httpFilters.map((f) => [f.typeUrl, (f.config as Msg)['rules']?.action]), [[TYPE_URLS.RBAC, 'DENY'], [TYPE_URLS.RBAC, 'ALLOW']]);
  });

  test('a bad RBAC filter NACKs the listener, naming the field', () => {
    const err = decode([plaintext([rbac({ action: 'LOG', policies: { p: { principals: [{ remote_ip: {} }], permissions: [{ any: true }] } } }), ROUTER])]);
    assert.equal(typeof err, 'string');
    const at = 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules';
    assert.match(err as string, new RegExp(`${at.replace(/[[\].]/g, '\\$&')}\\.action: only ALLOW and DENY`));
    assert.match(err as string, /rules\.policies\["p"\]\.principals\[0\]\.remote_ip: is not supported by the skein sidecar/);
  });

  test('the router must stay last', () => {
    assert.match(decode([plaintext([DENY_ALL])]) as string, /http_filters: the last http filter must be the router/);
  });

  test('chains with different filters are rejected: the sidecar serves every chain with one filter chain', () => {
    const mtls = { ...plaintext([ROUTER]), name: 'mtls', filter_chain_match: { transport_protocol: 'tls' },
      transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: encodeAny(TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, { require_client_certificate: { value: true },
        common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }], validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } }, alpn_protocols: ['h2', 'http/1.1'] } }) } };
    assert.match(decode([{ ...mtls, filters: hcm([DENY_ALL, ROUTER]) }, plaintext([ROUTER])]) as string, /filter_chains\[1\]\.filters\[0\]\.typed_config\.http_filters: must be the same in every filter chain/);
    const same = decode([{ ...mtls, filters: hcm([DENY_ALL, ROUTER]) }, plaintext([DENY_ALL, ROUTER])]);
    assert.equal(typeof same, 'object', String(same));
    assert.deepEqual([(same as ListenerConfig).inbound?.mode, (same as ListenerConfig).inbound?.httpFilters.length], ['PERMISSIVE', 1]);
  });
});

describe('the inbound HCM must say what the sidecar does (nothing decoded and then ignored)', () => {
  const at = 'filter_chains[0].filters[0].typed_config';
  const CASES: [string, Msg, RegExp][] = [
    ['a route to another cluster', { route_config: { virtual_hosts: [{ name: 'x', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'elsewhere' } }] }] } }, /route_config: every route must go to cluster skein\.inbound/],
    ['no routes at all', { route_config: { name: 'empty' } }, /route_config: every route must go to cluster skein\.inbound/],
    ['XFCC left at SANITIZE', { forward_client_cert_details: 'SANITIZE' }, /forward_client_cert_details: must be SANITIZE_SET/],
    ['XFCC forwarded as is', { forward_client_cert_details: 'FORWARD_ONLY' }, /forward_client_cert_details: must be SANITIZE_SET.*got FORWARD_ONLY/],
    ['XFCC with the subject too', { set_current_client_cert_details: { uri: true, subject: { value: true } } }, /set_current_client_cert_details: must set exactly uri.*got \{subject, uri\}|got \{uri, subject\}/],
    ['an HTTP/1.1-only codec', { codec_type: 'HTTP1' }, /codec_type: must be AUTO/],
  ];
  for (const [name, over, message] of CASES) {
    test(`${name} is NACKed, naming the field`, () => {
      const err = decode([{ ...plaintext([ROUTER]), filters: hcm([ROUTER], over) }]);
      assert.equal(typeof err, 'string', 'rejected');
      assert.ok((err as string).includes(at), err as string);
      assert.match(err as string, message);
    });
  }

  test('an mTLS chain must offer h2 and http/1.1 by ALPN (what the port does)', () => {
    const tlsCtx = (alpn: string[]) => ({ name: 'envoy.transport_sockets.tls', typed_config: encodeAny(TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, { require_client_certificate: { value: true },
      common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }], validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } }, alpn_protocols: alpn } }) });
    const chain = (alpn: string[]) => ({ name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, transport_socket: tlsCtx(alpn), filters: hcm([ROUTER]) });
    assert.match(decode([chain(['h2'])]) as string, /filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.alpn_protocols: must be \["h2","http\/1\.1"\]/);
    assert.equal((decode([chain(['http/1.1', 'h2'])]) as ListenerConfig).inbound?.mode, 'STRICT');
  });

  test('the secrets must come over ADS: ROOTCA from another config source is NACKed', () => {
    const ts = { name: 'envoy.transport_sockets.tls', typed_config: encodeAny(TYPE_URLS.DOWNSTREAM_TLS_CONTEXT, { require_client_certificate: { value: true },
      common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }], validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: {} }, alpn_protocols: ['h2', 'http/1.1'] } }) };
    const err = decode([{ name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, transport_socket: ts, filters: hcm([ROUTER]) }]);
    assert.match(err as string, /common_tls_context\.validation_context_sds_secret_config\.sds_config: must be ads/);
  });
});
