/**
 * The dry run's NACK forecast, on real translations and a real snapshot cache: which resources
 * count (added or changed ones only), which proxies (those that would receive them) and which
 * clients (by user agent). test/e2e/grpc-xds-proxyless-clients.test.ts proves a forecast against the real
 * grpc-js-xds client's NACK.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMesh } from '../../../shared/src/config/mesh';
import { translate } from '../../../control-plane/src/translate/translate';
import { SnapshotCache } from '../../../control-plane/src/discovery/snapshot-cache';
import { forecastNacks } from '../../../control-plane/src/discovery/nack-forecast';
import type { CandidateResources } from '../../../control-plane/src/discovery/nack-forecast';
import { PUSH_ORDER } from '../../../shared/src/xds/resource-kind';
import type { ForecastTarget } from '../../../control-plane/src/discovery/nack-forecast';
import { predictRejections } from '../../../control-plane/src/discovery/client-compat';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { TEST_TRANSLATE } from '../../support/mesh-trust';

type Doc = Record<string, unknown>;
const V = 'skein.dev/v1alpha1';
const service: Doc = { apiVersion: V, kind: 'Service', metadata: { name: 'reviews' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } };
const route = (retries: number): Doc => ({
  apiVersion: V, kind: 'GRPCRoute', metadata: { name: 'reviews' },
  spec: { parentRefs: [{ name: 'reviews' }], rules: [{ name: 'all', backendRefs: [{ name: 'reviews' }], retry: { retries, retryOn: ['unavailable'] } }] },
});
const resources = (docs: Doc[]) => translate(buildMesh(docs as never), [], TEST_TRANSLATE);
/** A candidate config as the forecast gets it: encoded, with content versions. */
function candidate(docs: Doc[]): CandidateResources {
  const probe = new SnapshotCache();
  probe.set(resources(docs), 0);
  return new Map(PUSH_ORDER.map((t) => [t, probe.all(t)]));
}
const GRPC_JS = 'gRPC Node Pure JS/1.14.1';

/** A connected proxy as the forecast sees it: a node, a user agent and its subscriptions. */
function proxy(nodeId: string, userAgent: string, wildcard: boolean, names: string[] = []): ForecastTarget {
  return { nodeId, userAgent: () => userAgent, subscribes: (type, name) => (type === TYPE_URLS.ROUTE ? wildcard || names.includes(name) : true) };
}

describe('NACK forecast', () => {
  const routeName = (docs: Doc[]) => resources(docs).routes.map((r) => r['name'] as string).find((n) => n.startsWith('reviews'))!;

  test('a changed route with retries: 0 is forecast for grpc-js clients that receive it, with their error', () => {
    const cache = new SnapshotCache();
    cache.set(resources([service, route(2)]), 1);
    const name = routeName([service, route(0)]);
    const w = forecastNacks(cache, candidate([service, route(0)]), [proxy('grpc-a', GRPC_JS, false, [name]), proxy('side', 'skein-sidecar/0.1.0', true), proxy('grpc-b', GRPC_JS, false, ['other'])]);
    assert.deepEqual(w.map((x) => [x.nodeId, x.typeUrl, x.resource]), [['grpc-a', TYPE_URLS.ROUTE, name]]);
    assert.match(w[0]!.message, /Invalid policy\.num_retries\.value: 0/);
  });

  test('a resource that does not change is not forecast again (its NACK, if any, is already known)', () => {
    const cache = new SnapshotCache();
    cache.set(resources([service, route(0)]), 1);
    assert.deepEqual(forecastNacks(cache, candidate([service, route(0)]), [proxy('grpc-a', GRPC_JS, true)]), []);
  });

  test('nothing is forecast when no proxy is connected, or for retries >= 1', () => {
    const cache = new SnapshotCache();
    cache.set(resources([service]), 1);
    assert.deepEqual(forecastNacks(cache, candidate([service, route(0)]), []), []);
    assert.deepEqual(forecastNacks(cache, candidate([service, route(1)]), [proxy('grpc-a', GRPC_JS, true)]), []);
  });

  const rules: { name: string; ua: string; rc: Doc; errors: number }[] = [
    { name: 'route-level num_retries 0', ua: GRPC_JS, rc: { virtual_hosts: [{ name: 'v', routes: [{ name: 'r', route: { retry_policy: { num_retries: { value: 0 } } } }] }] }, errors: 1 },
    { name: 'virtual-host-level num_retries 0', ua: GRPC_JS, rc: { virtual_hosts: [{ name: 'v', retry_policy: { num_retries: { value: 0 } }, routes: [] }] }, errors: 1 },
    { name: 'num_retries unset means 1', ua: GRPC_JS, rc: { virtual_hosts: [{ name: 'v', routes: [{ name: 'r', route: { retry_policy: { retry_on: 'unavailable' } } }] }] }, errors: 0 },
    { name: 'Envoy reads 0 as no retries', ua: 'envoy/1.31.0', rc: { virtual_hosts: [{ name: 'v', routes: [{ name: 'r', route: { retry_policy: { num_retries: { value: 0 } } } }] }] }, errors: 0 },
    { name: 'the skein sidecar too', ua: 'skein-sidecar/0.1.0', rc: { virtual_hosts: [{ name: 'v', routes: [{ name: 'r', route: { retry_policy: { num_retries: { value: 0 } } } }] }] }, errors: 0 },
  ];
  for (const r of rules) {
    test(`rule: ${r.name} (${r.ua})`, () => assert.equal(predictRejections(r.ua, TYPE_URLS.ROUTE, r.rc).length, r.errors));
  }
});
