/**
 * AuthorizationPolicy -> the RBAC http filters of the inbound listener skein.inbound.<service>,
 * table-driven: Istio's layout (DENY filter, then ALLOW filter for defaultAction DENY), one RBAC
 * policy per rule named <policy>/rules[<i>], principals and permissions per docs/config.md.
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

const V = 'skein.dev/v1alpha1';
const RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const FRONTEND = 'spiffe://skein.local/ns/default/sa/frontend';

const service = (name: string, spec: Doc = {}): Doc => ({ apiVersion: V, kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'p', port: 8080 }], ...spec } });
const policy = (name: string, spec: Doc): Doc => ({ apiVersion: V, kind: 'AuthorizationPolicy', metadata: { name }, spec: { targetRef: { name: 'greeter' }, ...spec } });
const rbac = (action: string, policies: Record<string, XdsObject>) => ({ name: 'envoy.filters.http.rbac', typed_config: { '@type': RBAC, rules: { action, policies } } });
const exact = (id: string) => ({ authenticated: { principal_name: { exact: id } } });
const ANY = [{ any: true }];

/** The http_filters of every chain of skein.inbound.greeter (asserting they are the same in each). */
function httpFilters(docs: Doc[], mtls = 'STRICT'): XdsObject[] {
  const l = translate(buildMesh([service('greeter', { mtls }), ...docs]), [], TEST_TRANSLATE).listeners.find((x) => x.name === 'skein.inbound.greeter') as XdsObject;
  const per = (l['filter_chains'] as any[]).map((c) => c.filters[0].typed_config.http_filters);
  for (const f of per) assert.deepEqual(f, per[0]);
  return per[0];
}

interface Case { name: string; docs: Doc[]; filters: XdsObject[] }

const CASES: Case[] = [
  { name: 'no policy: the router alone', docs: [], filters: [ROUTER] },
  { name: 'defaultAction DENY and no rules: an empty ALLOW filter (denies every request)', docs: [policy('p', {})], filters: [rbac('ALLOW', {}), ROUTER] },
  { name: 'defaultAction ALLOW and no rules: nothing to enforce, the router alone', docs: [policy('p', { defaultAction: 'ALLOW' })], filters: [ROUTER] },
  {
    name: 'an ALLOW rule by exact identity, no `to`: every request of that caller',
    docs: [policy('p', { rules: [{ action: 'ALLOW', from: [FRONTEND] }] })],
    filters: [rbac('ALLOW', { 'p/rules[0]': { principals: [exact(FRONTEND)], permissions: ANY } }), ROUTER],
  },
  {
    name: "a prefix glob and '*' (any authenticated caller, not any: true)",
    docs: [policy('p', { rules: [{ action: 'ALLOW', from: ['spiffe://skein.local/ns/prod/*', '*'] }] })],
    filters: [rbac('ALLOW', { 'p/rules[0]': { principals: [{ authenticated: { principal_name: { prefix: 'spiffe://skein.local/ns/prod/' } } }, { authenticated: {} }], permissions: ANY } }), ROUTER],
  },
  {
    name: 'DENY rules go in a DENY filter before the ALLOW filter, whatever their order in the policy',
    docs: [policy('p', { rules: [{ action: 'ALLOW', from: ['*'] }, { action: 'DENY', from: [FRONTEND], to: { methods: ['DELETE'] } }] })],
    filters: [
      rbac('DENY', { 'p/rules[1]': { principals: [exact(FRONTEND)], permissions: [{ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'DELETE' } } }] } }] } }),
      rbac('ALLOW', { 'p/rules[0]': { principals: [{ authenticated: {} }], permissions: ANY } }),
      ROUTER,
    ],
  },
  {
    name: 'defaultAction ALLOW: the DENY filter only (ALLOW rules change nothing)',
    docs: [policy('p', { defaultAction: 'ALLOW', rules: [{ action: 'ALLOW', from: ['*'] }, { action: 'DENY', from: ['*'], to: { paths: ['/admin'] } }] })],
    filters: [rbac('DENY', { 'p/rules[1]': { principals: [{ authenticated: {} }], permissions: [{ and_rules: { rules: [{ url_path: { path: { prefix: '/admin' } } }] } }] } }), ROUTER],
  },
  {
    name: 'paths and methods: an and_rules of the two lists, each an or_rules when it has several items',
    docs: [policy('p', { rules: [{ action: 'ALLOW', from: [FRONTEND], to: { paths: ['/api/', '/v2/'], methods: ['GET'] } }] })],
    filters: [rbac('ALLOW', { 'p/rules[0]': { principals: [exact(FRONTEND)], permissions: [{ and_rules: { rules: [
      { or_rules: { rules: [{ url_path: { path: { prefix: '/api/' } } }, { url_path: { path: { prefix: '/v2/' } } }] } },
      { header: { name: ':method', string_match: { exact: 'GET' } } },
    ] } }] } }), ROUTER],
  },
  {
    name: 'gRPC: a method is its exact path, a whole service its path prefix',
    docs: [policy('p', { rules: [{ action: 'ALLOW', from: [FRONTEND], to: { grpc: [{ service: 'skein.demo.v1.Greeter', method: 'SayHello' }, { service: 'grpc.health.v1.Health' }] } }] })],
    filters: [rbac('ALLOW', { 'p/rules[0]': { principals: [exact(FRONTEND)], permissions: [{ and_rules: { rules: [{ or_rules: { rules: [
      { url_path: { path: { exact: '/skein.demo.v1.Greeter/SayHello' } } },
      { url_path: { path: { prefix: '/grpc.health.v1.Health/' } } },
    ] } }] } }] } }), ROUTER],
  },
  {
    name: 'several policies for one service combine, each rule named <policy>/rules[<i>]; other services\' policies stay out',
    docs: [
      policy('b', { rules: [{ action: 'ALLOW', from: [FRONTEND] }, { action: 'DENY', from: ['*'], to: { methods: ['PUT'] } }] }),
      policy('a', { rules: [{ action: 'DENY', from: ['spiffe://skein.local/ns/test/*'] }] }),
      policy('other', { targetRef: { name: 'reviews' }, defaultAction: 'ALLOW', rules: [{ action: 'DENY', from: ['*'] }] }),
    ],
    filters: [
      rbac('DENY', {
        'a/rules[0]': { principals: [{ authenticated: { principal_name: { prefix: 'spiffe://skein.local/ns/test/' } } }], permissions: ANY },
        'b/rules[1]': { principals: [{ authenticated: {} }], permissions: [{ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'PUT' } } }] } }] },
      }),
      rbac('ALLOW', { 'b/rules[0]': { principals: [exact(FRONTEND)], permissions: ANY } }),
      ROUTER,
    ],
  },
];

describe('AuthorizationPolicy becomes RBAC filters in the inbound listener, before the router', () => {
  for (const c of CASES) test(c.name, () => assert.deepEqual(httpFilters(c.docs), c.filters));

  test('every chain carries them: PERMISSIVE has the same filters in its mtls and plaintext chains', () => {
    const f = httpFilters([policy('p', { rules: [{ action: 'ALLOW', from: [FRONTEND] }] })], 'PERMISSIVE');
    assert.equal(f.length, 2);
  });

  test('a policy for a service that does not exist produces nothing, and the service\'s listener appears with it once it exists', () => {
    const docs = [service('reviews'), policy('p', { rules: [{ action: 'ALLOW', from: [FRONTEND] }] })];
    assert.deepEqual(translate(buildMesh(docs), [], TEST_TRANSLATE).listeners.filter((l) => l.name === 'skein.inbound.greeter'), []);
    assert.equal(httpFilters(docs.slice(1)).length, 2);
  });

  test('encodes; the filter decodes as envoy.extensions.filters.http.rbac.v3.RBAC', () => {
    const cache = new SnapshotCache();
    cache.set(translate(buildMesh([service('greeter'), policy('p', { rules: [{ action: 'DENY', from: ['spiffe://skein.local/ns/test/*'], to: { grpc: [{ service: 'skein.demo.v1.Greeter', method: 'SayHello' }] } }] })]), [], TEST_TRANSLATE), 1);
    const l = decodeAny(cache.get(TYPE_URLS.LISTENER, 'skein.inbound.greeter')!.any);
    const hcm = decodeAny(l.filter_chains[0].filters[0].typed_config);
    assert.deepEqual(hcm.http_filters.map((f: any) => f.typed_config.type_url), [TYPE_URLS.RBAC, TYPE_URLS.RBAC, TYPE_URLS.ROUTER]);
    const deny = decodeAny(hcm.http_filters[0].typed_config);
    assert.equal(deny.rules.action, 'DENY');
    const p = deny.rules.policies['p/rules[0]'];
    assert.equal(p.principals[0].authenticated.principal_name.prefix, 'spiffe://skein.local/ns/test/');
    assert.equal(p.permissions[0].and_rules.rules[0].url_path.path.exact, '/skein.demo.v1.Greeter/SayHello');
    // The empty ALLOW filter: rules present (an absent `rules` would enforce nothing), no policies.
    assert.deepEqual(decodeAny(hcm.http_filters[1].typed_config), { rules: { action: 'ALLOW' } });
  });
});
