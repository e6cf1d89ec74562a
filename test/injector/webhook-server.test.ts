/**
 * The injector over a real HTTPS socket, with the certificate deploy/kubernetes/injector-tls.sh
 * makes, on AdmissionReview v1 fixtures shaped as the API server sends them
 * (test/injector/fixtures). An injected pod's JSONPatch is applied with fast-json-patch (RFC 6902,
 * validating each operation) and the patched Pod is checked against the Kubernetes schema
 * (kubernetes-models), and its sidecar args against `skein sidecar`'s own flag spec.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { applyPatch, deepClone } from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1/Pod';
import { PACKAGE_ROOT } from '../../shared/src/paths';
import { createLogger } from '../../shared/src/log';
import { parse } from '../../shared/src/cli/args';
import { sidecar } from '../../sidecar/src/cli/sidecar-command';
import { INJECTOR_DEFAULTS } from '../../injector/src/injection-settings';
import { WebhookServer, MAX_REVIEW_BYTES } from '../../injector/src/webhook-server';
import { tempDir } from '../support/skein';
import { until } from '../support/until';

const FIXTURES = path.join(PACKAGE_ROOT, 'test', 'injector', 'fixtures');
const TLS_SCRIPT = path.join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'injector-tls.sh');
const HOST = 'skein-injector.skein-system.svc';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const fixture = (name: string): Json => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as Json;

function makeCert(dir: string): void {
  execFileSync('bash', [TLS_SCRIPT, '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
}

interface Res { status: number; body: Json }

function post(port: number, ca: string, route: string, body: string | Buffer, method = 'POST'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: route, method, ca, servername: HOST, agent: false, headers: { 'content-type': 'application/json' }, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try { resolve({ status: res.statusCode!, body: JSON.parse(text) as Json }); } catch { reject(new Error(`not JSON (${res.statusCode}): ${text}`)); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The review's pod after the answer's patch, applied as the API server does (each op checked). */
function patched(review: Json, answer: Json): { pod: Json; ops: Operation[] } {
  assert.equal(answer['response'].patchType, 'JSONPatch');
  const ops = JSON.parse(Buffer.from(answer['response'].patch as string, 'base64').toString('utf8')) as Operation[];
  const pod = applyPatch(deepClone(review['request'].object), ops, true, false).newDocument as Json;
  return { pod, ops };
}

const argsOf = (pod: Json) => (pod['spec'].initContainers as Json[]).find((c) => c['name'] === 'skein-sidecar')!['args'] as string[];

describe('skein injector webhook', () => {
  const dir = tempDir('injector');
  let server: WebhookServer;
  let ca = '';
  const call = (route: string, body: string | Buffer | Json, method = 'POST') => post(server.port, ca, route, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), method);

  before(async () => {
    makeCert(dir);
    ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
    server = await WebhookServer.start({
      listen: '127.0.0.1:0', tlsCertFile: path.join(dir, 'tls.crt'), tlsKeyFile: path.join(dir, 'tls.key'), tlsReloadMs: 50,
      log: createLogger('injector-test', 'silent'), settings: { ...INJECTOR_DEFAULTS, sidecarImage: 'registry.example/skein:test', xds: 'cp-0.skein:18000,cp-1.skein:18000' },
    });
  });
  after(async () => { await server.close(); fs.rmSync(dir, { recursive: true, force: true }); });

  test('a pod that opts in by label gets a patch; the patched pod is a valid Pod with a native sidecar whose args are real skein sidecar flags', async () => {
    const review = fixture('pod-opt-in.json');
    const r = await call('/inject/pod', review);
    assert.equal(r.status, 200);
    assert.equal(r.body['apiVersion'], 'admission.k8s.io/v1');
    assert.equal(r.body['kind'], 'AdmissionReview');
    assert.equal(r.body['response'].uid, review['request'].uid);
    assert.equal(r.body['response'].allowed, true);
    const { pod } = patched(review, r.body);
    new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();

    const sc = (pod['spec'].initContainers as Json[])[0]!;
    assert.equal(sc['name'], 'skein-sidecar');
    assert.equal(sc['restartPolicy'], 'Always', 'a native sidecar: started before the app, stopped after it');
    assert.equal(sc['image'], 'registry.example/skein:test');
    assert.deepEqual(sc['securityContext'].capabilities, { drop: ['ALL'] });
    assert.equal(sc['securityContext'].readOnlyRootFilesystem, true);
    assert.equal(sc['securityContext'].runAsNonRoot, true);
    assert.equal(sc['readinessProbe'].httpGet.path, '/ready');
    assert.equal(sc['livenessProbe'].httpGet.path, '/healthz');
    assert.deepEqual((sc['ports'] as Json[]).map((p) => p['containerPort']), [15006, 15000]);

    const args = argsOf(pod);
    assert.equal(args[0], 'sidecar');
    const flags = parse(sidecar.spec, args.slice(1)); // throws on a flag skein sidecar does not have
    assert.deepEqual(flags.positionals, []);
    const v = flags.values;
    assert.equal(v['service'], 'reviews');
    assert.equal(v['app'], '127.0.0.1:9080');
    assert.equal(v['app-protocol'], 'grpc');
    assert.equal(v['version'], 'v2');
    assert.equal(v['namespace'], 'shop');
    assert.equal(v['service-account'], 'reviews');
    assert.equal(v['xds'], 'cp-0.skein:18000,cp-1.skein:18000');
    assert.equal(v['token-file'], '/var/run/skein/token/token');
    assert.equal(v['xds-ca-file'], '/var/run/skein/ca/ca.pem');
    assert.equal(v['advertise-address'], '$(SKEIN_POD_IP)');
    assert.ok((sc['env'] as Json[]).some((e) => e['name'] === 'SKEIN_POD_IP' && e['valueFrom'].fieldRef.fieldPath === 'status.podIP'), 'the $(SKEIN_POD_IP) in args is defined');
    assert.ok((sc['env'] as Json[]).some((e) => e['name'] === 'NODE_OPTIONS' && e['value'] === '--max-semi-space-size=4'), 'the sidecar runs with the small young generation');

    const volumes = pod['spec'].volumes as Json[];
    assert.deepEqual(volumes.map((x) => x['name']), ['kube-api-access-x2x9v', 'skein-join-token', 'skein-trust-bundle']);
    assert.equal(volumes[1]!['secret'].secretName, 'skein-join-reviews');
    assert.equal(volumes[2]!['configMap'].name, 'skein-trust-bundle');

    const [app, cache] = pod['spec'].containers as Json[];
    const env = (c: Json) => Object.fromEntries((c['env'] as Json[]).map((e) => [e['name'], e['value']]));
    assert.deepEqual(env(app!), { LOG_FORMAT: 'json', SKEIN_ADMIN_URL: 'http://localhost:15000', SKEIN_OUTBOUND_ADDR: '127.0.0.1:15001', SKEIN_OUTBOUND_URL: 'http://127.0.0.1:15001' }, 'the app\'s own SKEIN_ADMIN_URL is kept, not duplicated');
    assert.deepEqual(env(cache!), { SKEIN_OUTBOUND_ADDR: '127.0.0.1:15001', SKEIN_OUTBOUND_URL: 'http://127.0.0.1:15001', SKEIN_ADMIN_URL: 'http://127.0.0.1:15000' });
    assert.equal(pod['metadata'].annotations['skein.io/status'], 'injected');

    // The same pod again (a reinvocation, or a second webhook entry): allowed, no second sidecar.
    const again = await call('/inject/namespace', { ...review, request: { ...review['request'], object: pod } });
    assert.equal(again.body['response'].allowed, true);
    assert.equal(again.body['response'].patch, undefined);
  });

  test('a pod that does not opt in is allowed with no patch on /inject/pod, and injected on /inject/namespace (its namespace opted in)', async () => {
    const review = fixture('pod-no-opt-in.json');
    const r = await call('/inject/pod', review);
    assert.deepEqual(r.body['response'], { uid: review['request'].uid, allowed: true });
    const ns = await call('/inject/namespace', review);
    const { pod } = patched(review, ns.body);
    new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
    assert.equal(parse(sidecar.spec, argsOf(pod).slice(1)).values['service'], 'reviews');
  });

  test('the opt-out annotation wins over the opt-in label and the namespace', async () => {
    const review = fixture('pod-opt-out.json');
    for (const route of ['/inject/pod', '/inject/namespace']) {
      const r = await call(route, review);
      assert.deepEqual(r.body['response'], { uid: review['request'].uid, allowed: true }, route);
    }
  });

  test('a pod with no port and no service (opt-in by annotation) gets an outbound-only sidecar, first among its init containers', async () => {
    const review = fixture('pod-client-annotation-opt-in.json');
    const r = await call('/inject/pod', review);
    const { pod } = patched(review, r.body);
    new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
    assert.deepEqual((pod['spec'].initContainers as Json[]).map((c) => c['name']), ['skein-sidecar', 'migrate']);
    const v = parse(sidecar.spec, argsOf(pod).slice(1)).values;
    assert.equal(v['service'], undefined);
    assert.equal(v['app'], undefined);
    assert.equal(v['service-account'], 'frontend');
    assert.equal((pod['spec'].volumes as Json[])[0]!['secret'].secretName, 'skein-join-frontend');
    assert.deepEqual(((pod['spec'].initContainers as Json[])[0]!['ports'] as Json[]).map((p) => p['name']), ['skein-admin']);
  });

  test('bad annotations are denied, each named in the message', async () => {
    const review = fixture('pod-bad-annotations.json');
    const r = await call('/inject/pod', review);
    assert.equal(r.status, 200);
    assert.equal(r.body['response'].allowed, false);
    assert.equal(r.body['response'].status.code, 422);
    assert.match(r.body['response'].status.message, /skein\.io\/app-port"\]: "grpc" must be a port number/);
    assert.match(r.body['response'].status.message, /skein\.io\/app-protocol"\]: must be grpc or http, got "h3"/);
    assert.equal(r.body['response'].patch, undefined);
  });

  test('malformed reviews get a clear error, and the server keeps serving', async () => {
    const notJson = await call('/inject/pod', '{"kind": "AdmissionReview",');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body['code'], 'SKEIN_ERR_MALFORMED_INPUT');

    const noUid = await call('/inject/pod', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { group: '', version: 'v1', kind: 'Pod' } } });
    assert.equal(noUid.status, 400);
    assert.match(noUid.body['message'] as string, /request\.uid: must be a non-empty string/);

    const v1beta1 = fixture('pod-opt-in.json');
    v1beta1['apiVersion'] = 'admission.k8s.io/v1beta1';
    const old = await call('/inject/pod', v1beta1);
    assert.equal(old.body['response'].allowed, false);
    assert.match(old.body['response'].status.message as string, /apiVersion: must be admission\.k8s\.io\/v1/);

    const deployment = await call('/inject/pod', fixture('deployment-review.json'));
    assert.equal(deployment.status, 200);
    assert.deepEqual({ uid: deployment.body['response'].uid, allowed: deployment.body['response'].allowed, code: deployment.body['response'].status.code }, { uid: '11111111-2222-4333-8444-555555555555', allowed: false, code: 400 });
    assert.match(deployment.body['response'].status.message as string, /request\.kind: the injector handles core\/v1 Pods only/);

    const badPort = fixture('pod-opt-in.json');
    badPort['request'].object.spec.containers[0].ports[0].containerPort = '9080';
    const bp = await call('/inject/pod', badPort);
    assert.equal(bp.body['response'].allowed, false);
    assert.match(bp.body['response'].status.message as string, /containers\[0\]\.ports: must be a list of ports, each with an integer containerPort/);

    const big = await call('/inject/pod', Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20));
    assert.equal(big.status, 413);
    assert.equal((await call('/inject/other', '{}')).status, 404);
    assert.equal((await call('/inject/pod', '', 'GET')).status, 405);

    // A client that goes away mid-body does not take the server with it.
    await new Promise<void>((resolve) => {
      const req = https.request({ host: '127.0.0.1', port: server.port, path: '/inject/pod', method: 'POST', ca, servername: HOST, headers: { 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write('{"apiVersion":', () => req.destroy());
    });

    const ok = await call('/inject/pod', fixture('pod-opt-in.json'));
    assert.equal(ok.body['response'].allowed, true);
    assert.equal(ok.body['response'].patchType, 'JSONPatch');
    const health = await call('/healthz', '', 'GET');
    assert.deepEqual(health, { status: 200, body: { ok: true } });
    await until(() => server.counts.aborted === 1, 'the aborted request is counted');
    assert.ok(server.counts.refused >= 5 && server.counts.error === 0, JSON.stringify(server.counts));
  });

  test('a renewed certificate is picked up without a restart', async () => {
    const next = tempDir('injector-next');
    try {
      makeCert(next);
      const before = server.reloads;
      fs.copyFileSync(path.join(next, 'tls.key'), path.join(dir, 'tls.key'));
      fs.copyFileSync(path.join(next, 'tls.crt'), path.join(dir, 'tls.crt'));
      await until(() => server.reloads > before, 'the injector reloads its certificate');
      const newCa = fs.readFileSync(path.join(next, 'ca.pem'), 'utf8');
      const r = await post(server.port, newCa, '/healthz', '', 'GET');
      assert.equal(r.status, 200);
      await assert.rejects(post(server.port, ca, '/healthz', '', 'GET'), /certificate/);
    } finally { fs.rmSync(next, { recursive: true, force: true }); }
  });
});
