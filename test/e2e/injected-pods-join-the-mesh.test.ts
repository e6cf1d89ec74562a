/**
 * Pods as the injector patches them join a real mesh. The injector's patch for two fixture pods
 * (a `reviews` server, a `frontend` client) is applied with fast-json-patch; each injected sidecar
 * container is then run as the kubelet would run it: its $(VAR) args expanded from its downward-API
 * env, its mount paths mapped to directories holding the Secret's join token and the ConfigMap's
 * trust bundle. Only the fixed listen ports are moved to free ones (this machine is shared). The
 * client app then calls `reviews` through its sidecar by the env var the injector gave it, over
 * mTLS to the server sidecar, which registered itself under the pod's identity.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { applyPatch, deepClone } from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { SKEIN_MAIN } from '../../harness/src/control-plane-process';
import { PACKAGE_ROOT } from '../../shared/src/paths';
import { API_VERSION } from '../../shared/src/config/types';
import { greeterClient, sayHello, startGreeter } from '../../shared/src/sample-app/greeter';
import type { GreeterBackend } from '../../shared/src/sample-app/greeter';
import { decide } from '../../injector/src/pod-patch';
import { INJECTOR_DEFAULTS } from '../../injector/src/injection-settings';
import { eventually } from '../support/ads-client';
import { api } from '../support/mesh-api';
import { startPlane, stopPlane, tempDir } from '../support/skein';
import type { Plane } from '../support/skein';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const fixture = (name: string): Json => JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'test', 'injector', 'fixtures', name), 'utf8')) as Json;

interface Running { proc: ChildProcess; outbound: string; stderr(): string }

describe('injected pods join the mesh', () => {
  let plane: Plane | undefined;
  let app: GreeterBackend | undefined;
  const work = tempDir('injected');
  const sidecars: Running[] = [];

  before(async () => {
    plane = await startPlane();
    app = await startGreeter({ backend: 'reviews-pod', version: 'v2' });
    await api(plane.api, 'POST', '/v1/config', [{ apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'reviews' }, spec: { protocol: 'grpc', ports: [{ name: 'grpc', port: 50051 }] } }]);
  });
  after(async () => {
    for (const s of sidecars) { s.proc.kill('SIGTERM'); }
    await Promise.all(sidecars.map((s) => new Promise((r) => { if (s.proc.exitCode !== null) r(null); else s.proc.once('exit', r); })));
    await app?.close();
    await stopPlane(plane);
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** The pod after the injector's patch (the same `decide` the webhook answers with). */
  function inject(review: Json): Json {
    const d = decide(review['request'].object, review['request'].namespace as string, 'pod', { ...INJECTOR_DEFAULTS, xds: plane!.proc.xds });
    assert.equal(d.kind, 'inject', JSON.stringify(d));
    return applyPatch(deepClone(review['request'].object), (d as { patch: Operation[] }).patch, true, false).newDocument as Json;
  }

  /** Runs the pod's sidecar container as the kubelet would, with the Secret and ConfigMap "mounted". */
  async function runSidecar(pod: Json, podName: string, secrets: Record<string, string>): Promise<Running> {
    const c = (pod['spec'].initContainers as Json[]).find((x) => x['name'] === 'skein-sidecar')!;
    const dir = fs.mkdtempSync(path.join(work, `${podName}-`));
    const mounts = new Map<string, string>();
    for (const m of c['volumeMounts'] as Json[]) {
      const vol = (pod['spec'].volumes as Json[]).find((v) => v['name'] === m['name'])!;
      const local = path.join(dir, m['name'] as string);
      fs.mkdirSync(local);
      const [key, value] = vol['secret'] !== undefined
        ? [vol['secret'].items[0].key as string, secrets[vol['secret'].secretName as string]!]
        : [vol['configMap'].items[0].key as string, fs.readFileSync(plane!.proc.trustBundleFile, 'utf8')];
      fs.writeFileSync(path.join(local, key), value);
      mounts.set(m['mountPath'] as string, local);
    }
    const fieldEnv: Record<string, string> = { 'status.podIP': '127.0.0.1', 'metadata.name': podName, 'metadata.namespace': pod['metadata'].namespace as string ?? 'shop' };
    // As the kubelet: a value as is, a fieldRef from the pod (the downward API).
    const env: Record<string, string> = Object.fromEntries((c['env'] as Json[]).map((e) => [e['name'] as string, e['value'] !== undefined ? e['value'] as string : fieldEnv[e['valueFrom'].fieldRef.fieldPath as string]!]));
    const args = (c['args'] as string[]).map((a) => {
      let v = a.replace(/\$\(([A-Z_]+)\)/g, (_, n: string) => env[n] ?? `$(${n})`);
      for (const [from, to] of mounts) if (v.startsWith(`${from}/`)) v = to + v.slice(from.length);
      return v;
    });
    const free = (flag: string) => { const i = args.indexOf(flag); assert.ok(i > 0, flag); args[i + 1] = '127.0.0.1:0'; };
    free('--outbound-listen'); free('--admin-listen');
    if (args.includes('--service')) args.push('--inbound-listen', '127.0.0.1:0');
    args.push('--log-level', 'warn');
    // The container's env too: Node refuses to start on a NODE_OPTIONS it does not allow.
    const proc = spawn(process.execPath, [SKEIN_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: proc.stdout! }).once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`the injected sidecar of ${podName} exited ${code}:\n${stderr}`)));
    });
    const running = { proc, outbound: (JSON.parse(line) as { outbound: string }).outbound, stderr: () => stderr };
    sidecars.push(running);
    return running;
  }

  async function joinToken(service: string, serviceAccount: string): Promise<string> {
    const t = await api<{ token: string }>(plane!.api, 'POST', '/v1/tokens', { service, namespace: 'shop', serviceAccount, reusable: true, ttl: '1h' });
    return `${t.token}\n`;
  }

  test('a server pod registers under its pod identity, and a client pod calls it through its sidecar by SKEIN_OUTBOUND_ADDR', async () => {
    const server = fixture('pod-opt-in.json');
    server['request'].object.metadata.annotations = { 'skein.io/app-port': String(app!.port) };
    const serverPod = inject(server);
    await runSidecar(serverPod, 'reviews-v2-abcde', { 'skein-join-reviews': await joinToken('reviews', 'reviews') });

    const lease = await eventually(async () => {
      const { endpoints } = await api<{ endpoints: { service: string; address: string; port: number; identity?: string; labels: Record<string, string> }[] }>(plane!.api, 'GET', '/v1/endpoints');
      return endpoints.find((e) => e.service === 'reviews');
    }, 'the injected reviews sidecar registers');
    assert.equal(lease.identity, 'spiffe://skein.local/ns/shop/sa/reviews');
    assert.equal(lease.address, '127.0.0.1');
    assert.equal(lease.labels['version'], 'v2');

    const clientPod = inject(fixture('pod-client-annotation-opt-in.json'));
    const client = await runSidecar(clientPod, 'frontend-batch', { 'skein-join-frontend': await joinToken('frontend', 'frontend') });
    const appEnv = Object.fromEntries(((clientPod['spec'].containers as Json[])[0]!['env'] as Json[]).map((e) => [e['name'] as string, e['value'] as string]));
    assert.equal(appEnv['SKEIN_OUTBOUND_ADDR'], '127.0.0.1:15001');
    // The app dials SKEIN_OUTBOUND_ADDR; its port is the one this test moved the listener to.
    const target = `${appEnv['SKEIN_OUTBOUND_ADDR']!.split(':')[0]}:${client.outbound.split(':').pop()}`;
    const greeter = greeterClient(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'reviews:50051' });
    try {
      const reply = await eventually(async () => sayHello(greeter, 'pod'), 'a call through the injected sidecars', 20_000);
      assert.equal(reply.backend, 'reviews-pod');
      assert.equal(reply.version, 'v2');
    } finally { greeter.close(); }
  });
});
