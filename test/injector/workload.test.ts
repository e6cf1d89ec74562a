/**
 * What the injector reads from a pod, table by table: opt-in and opt-out, the already-injected
 * check, each annotation's default and override, and each invalid annotation named in its issue.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alreadyInjected, readWorkload, wantsInjection } from '../../injector/src/workload';
import type { PodLike, Selection } from '../../injector/src/workload';
import { decide } from '../../injector/src/pod-patch';
import { INJECTOR_DEFAULTS } from '../../injector/src/injection-settings';

const pod = (o: { labels?: Record<string, string>; annotations?: Record<string, string>; ports?: number[]; sa?: string; init?: string[]; containers?: string[]; volumes?: string[] } = {}): PodLike => ({
  metadata: { ...(o.labels ? { labels: o.labels } : {}), ...(o.annotations ? { annotations: o.annotations } : {}) },
  spec: {
    ...(o.sa ? { serviceAccountName: o.sa } : {}),
    containers: (o.containers ?? ['app']).map((name, i) => ({ name, ...(i === 0 && o.ports ? { ports: o.ports.map((p) => ({ containerPort: p })) } : {}) })),
    ...(o.init ? { initContainers: o.init.map((name) => ({ name })) } : {}),
    ...(o.volumes ? { volumes: o.volumes.map((name) => ({ name })) } : {}),
  },
});

describe('opting in and out', () => {
  const cases: [string, PodLike, Selection, boolean][] = [
    ['nothing, pod selection', pod(), 'pod', false],
    ['nothing, namespace selection', pod(), 'namespace', true],
    ['label enabled', pod({ labels: { 'skein.io/inject': 'enabled' } }), 'pod', true],
    ['annotation enabled', pod({ annotations: { 'skein.io/inject': 'enabled' } }), 'pod', true],
    ['label enabled, annotation disabled', pod({ labels: { 'skein.io/inject': 'enabled' }, annotations: { 'skein.io/inject': 'disabled' } }), 'pod', false],
    ['annotation enabled, label disabled', pod({ labels: { 'skein.io/inject': 'disabled' }, annotations: { 'skein.io/inject': 'enabled' } }), 'namespace', false],
    ['annotation disabled, namespace selection', pod({ annotations: { 'skein.io/inject': 'disabled' } }), 'namespace', false],
    ['another value is not an opt-in', pod({ labels: { 'skein.io/inject': 'true' } }), 'pod', false],
  ];
  for (const [what, p, sel, want] of cases) test(what, () => assert.equal(wantsInjection(p, sel), want));

  test('already injected: the status annotation, or a skein-sidecar container or init container', () => {
    assert.equal(alreadyInjected(pod()), false);
    assert.equal(alreadyInjected(pod({ annotations: { 'skein.io/status': 'injected' } })), true);
    assert.equal(alreadyInjected(pod({ init: ['migrate', 'skein-sidecar'] })), true);
    assert.equal(alreadyInjected(pod({ containers: ['app', 'skein-sidecar'] })), true);
  });
});

describe('per-pod settings', () => {
  const ok: [string, PodLike, object][] = [
    ['defaults from labels and the first container port', pod({ labels: { 'app.kubernetes.io/name': 'reviews', version: 'v3' }, ports: [9080, 9090], sa: 'reviews' }),
      { namespace: 'shop', serviceAccount: 'reviews', version: 'v3', tokenSecret: 'skein-join-reviews', inbound: { service: 'reviews', appPort: 9080, appProtocol: 'grpc' } }],
    ['the app label when there is no app.kubernetes.io/name; service account default', pod({ labels: { app: 'ratings', 'app.kubernetes.io/version': '1.2.0' }, ports: [8080] }),
      { namespace: 'shop', serviceAccount: 'default', version: '1.2.0', tokenSecret: 'skein-join-ratings', inbound: { service: 'ratings', appPort: 8080, appProtocol: 'grpc' } }],
    ['annotations override labels and ports', pod({ labels: { app: 'x' }, ports: [1], annotations: { 'skein.io/service': 'web', 'skein.io/app-port': '8081', 'skein.io/app-protocol': 'http', 'skein.io/version': 'canary', 'skein.io/token-secret': 'web-token' } }),
      { namespace: 'shop', serviceAccount: 'default', version: 'canary', tokenSecret: 'web-token', inbound: { service: 'web', appPort: 8081, appProtocol: 'http' } }],
    ['a labelled pod with no port is outbound only', pod({ labels: { app: 'frontend' } }),
      { namespace: 'shop', serviceAccount: 'default', version: 'v1', tokenSecret: 'skein-join-frontend' }],
    ['no service and no port: outbound only, token by service account', pod({ sa: 'batch' }),
      { namespace: 'shop', serviceAccount: 'batch', version: 'v1', tokenSecret: 'skein-join-batch' }],
  ];
  for (const [what, p, want] of ok) test(what, () => assert.deepEqual(readWorkload(p, 'shop'), want));

  const bad: [string, Record<string, string>, number[] | undefined, RegExp][] = [
    ['service not a DNS label', { 'skein.io/service': 'Reviews_1', 'skein.io/app-port': '80' }, undefined, /skein\.io\/service"\]: "Reviews_1" must be a DNS label/],
    ['app-port not a number', { 'skein.io/service': 's', 'skein.io/app-port': 'http' }, undefined, /skein\.io\/app-port"\]: "http" must be a port number/],
    ['app-port 0', { 'skein.io/service': 's', 'skein.io/app-port': '0' }, undefined, /"0" must be a port number from 1 to 65535/],
    ['app-port 70000', { 'skein.io/service': 's', 'skein.io/app-port': '70000' }, undefined, /"70000" must be a port number/],
    ['app-port is the sidecar\'s outbound port', { 'skein.io/service': 's', 'skein.io/app-port': '15001' }, undefined, /15001 is one of the sidecar's own ports/],
    ['the container port is the sidecar\'s admin port', { 'skein.io/service': 's' }, [15000], /15000 is one of the sidecar's own ports/],
    ['app-protocol', { 'skein.io/app-protocol': 'h3' }, undefined, /skein\.io\/app-protocol"\]: must be grpc or http, got "h3"/],
    ['version', { 'skein.io/version': 'v 2' }, undefined, /skein\.io\/version"\]: "v 2" must be a label value/],
    ['token-secret', { 'skein.io/token-secret': 'Bad/Name' }, undefined, /skein\.io\/token-secret"\]: "Bad\/Name" is not a Secret name/],
    ['app-port without a service', { 'skein.io/app-port': '8080' }, undefined, /skein\.io\/service"\]: is needed with skein\.io\/app-port/],
    ['service without any port', { 'skein.io/service': 'web' }, undefined, /skein\.io\/app-port"\]: is needed with skein\.io\/service/],
  ];
  for (const [what, annotations, ports, want] of bad) {
    test(`refused: ${what}`, () => {
      const r = readWorkload(pod({ annotations, ...(ports ? { ports } : {}) }), 'shop');
      assert.ok(Array.isArray(r), JSON.stringify(r));
      assert.match(r.map((i) => `Pod: ${i.path}: ${i.message}`).join('; '), want);
    });
  }

  test('a pod that already has a volume of the sidecar\'s name is denied, naming it', () => {
    const d = decide(pod({ labels: { 'skein.io/inject': 'enabled' }, volumes: ['skein-trust-bundle'] }), 'shop', 'pod', INJECTOR_DEFAULTS);
    assert.equal(d.kind, 'deny');
    assert.match(JSON.stringify(d), /a volume named \\"skein-trust-bundle\\" exists already/);
  });
});
