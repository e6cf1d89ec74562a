/**
 * deploy/kubernetes is what a cluster gets, so it is checked as the API server and the processes
 * would check it:
 * - every object in every manifest validates against the Kubernetes OpenAPI schema
 *   (kubernetes-models, generated from the Kubernetes API's own schema), and every manifest is
 *   listed in kustomization.yaml;
 * - every `skein` container's args parse with that command's own flag spec (a flag skein does not
 *   have fails here, not in a crash-looping pod);
 * - the control plane makes its NATS stream and buckets itself with 3 replicas (--store-replicas=3):
 *   no bucket Job, no init container waiting for one;
 * - selectors select the pods they are meant for, Services' target ports are named container
 *   ports, the webhooks call a Service and port that exist, NATS routes name every StatefulSet pod;
 * - mesh-secrets.sh's CA and admin token are taken by a real control plane: its API answers over
 *   TLS verified by that CA, the token authorizes a change, and `skein cert issue` gets a workload
 *   certificate that chains to that CA.
 * kubernetes-models checks types, enums, required fields and formats; it does not reject unknown
 * fields (the API server prunes or, with kubectl --validate=strict, refuses them).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { PACKAGE_ROOT } from '../../shared/src/paths';
import { parse } from '../../shared/src/cli/args';
import type { Command } from '../../shared/src/cli/command';
import { controlPlane } from '../../control-plane/src/cli/control-plane-command';
import { sidecar } from '../../sidecar/src/cli/sidecar-command';
import { injector } from '../../injector/src/cli/injector-command';
import { startControlPlaneProcess } from '../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { tempDir } from '../support/skein';
import { show, skein } from '../support/skein-cli';

const DIR = path.join(PACKAGE_ROOT, 'deploy', 'kubernetes');
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace, 'v1/ConfigMap': ConfigMap, 'v1/Service': Service, 'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment, 'apps/v1/StatefulSet': StatefulSet, 'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
};
const COMMANDS: Record<string, Command> = { 'control-plane': controlPlane, sidecar, injector };

interface Doc { file: string; obj: Obj }
function load(): Doc[] {
  return fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort().flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')).map((d) => {
      assert.deepEqual(d.errors.map((e) => e.message), [], `${file}: YAML errors`);
      return { file, obj: d.toJS() as Obj };
    }));
}
const docs = load();
const name = (d: Doc) => `${d.file}: ${d.obj['kind'] as string}/${d.obj['metadata']?.name as string}`;
const of = (kind: string) => docs.filter((d) => d.obj['kind'] === kind);
const workloads = () => [...of('Deployment'), ...of('StatefulSet'), ...of('Job')];
const podSpec = (d: Doc): Obj => d.obj['spec'].template.spec as Obj;
const podLabels = (d: Doc): Record<string, string> => d.obj['spec'].template.metadata.labels as Record<string, string>;
const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/kubernetes', () => {
  test('every object validates against the Kubernetes API schema', () => {
    assert.ok(docs.length >= 14, `${docs.length} objects`);
    const failures: string[] = [];
    for (const d of docs) {
      const Model = MODELS[`${d.obj['apiVersion'] as string}/${d.obj['kind'] as string}`];
      if (Model === undefined) { failures.push(`${name(d)}: no schema for ${d.obj['apiVersion'] as string} ${d.obj['kind'] as string}`); continue; }
      try { new Model(d.obj as never).validate(); } catch (e) { failures.push(`${name(d)}: ${(e as Error).message}`); }
    }
    assert.deepEqual(failures, []);
  });

  test('the kustomization lists every manifest, and namespaced objects are in skein-system', () => {
    const k = parseAllDocuments(fs.readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as Obj;
    assert.deepEqual([...(k['resources'] as string[])].sort(), [...new Set(docs.map((d) => d.file))].sort());
    const clusterScoped = ['Namespace', 'MutatingWebhookConfiguration'];
    assert.deepEqual(docs.filter((d) => !clusterScoped.includes(d.obj['kind'] as string) && d.obj['metadata'].namespace !== 'skein-system').map(name), []);
  });

  test('every skein container\'s args are flags of that skein command', () => {
    let checked = 0;
    for (const d of workloads()) {
      for (const c of [...(podSpec(d)['initContainers'] ?? []), ...podSpec(d)['containers']] as Obj[]) {
        if (!(c['image'] as string).includes('/skein:') || c['command'] !== undefined) continue;
        const [cmd, ...args] = c['args'] as string[];
        const command = COMMANDS[cmd!];
        assert.ok(command !== undefined, `${name(d)} ${c['name'] as string}: unknown skein command ${cmd}`);
        const parsed = parse(command.spec, args); // throws naming an unknown flag
        assert.deepEqual(parsed.positionals, [], `${name(d)}: stray arguments`);
        checked++;
      }
    }
    assert.equal(checked, 2, 'the control plane and the injector');
  });

  test('the control plane is 3 replicas on the NATS store, non-root with a read-only root filesystem', () => {
    const cp = of('Deployment').find((d) => d.obj['metadata'].name === 'skein-control-plane')!;
    assert.equal(cp.obj['spec'].replicas, 3);
    const c = (podSpec(cp)['containers'] as Obj[])[0]!;
    const args = c['args'] as string[];
    assert.ok(args.some((a) => a.startsWith('--store=nats://')) && args.includes('--store-bucket=skein'), args.join(' '));
    // R3 on the 3-node NATS StatefulSet: the stream and both buckets survive one node down.
    assert.ok(args.includes('--store-replicas=3'), args.join(' '));
    const nats = of('StatefulSet').find((d) => d.obj['metadata'].name === 'skein-nats')!;
    assert.ok((nats.obj['spec'].replicas as number) >= 3, 'as many NATS nodes as --store-replicas');
    for (const w of workloads()) {
      const pod = podSpec(w);
      assert.equal(pod['securityContext'].runAsNonRoot, true, name(w));
      for (const k of [...(pod['initContainers'] ?? []), ...pod['containers']] as Obj[]) {
        assert.equal(k['securityContext']?.readOnlyRootFilesystem, true, `${name(w)} ${k['name'] as string}`);
        assert.deepEqual(k['securityContext']?.capabilities?.drop, ['ALL'], `${name(w)} ${k['name'] as string}`);
        assert.ok(k['resources']?.requests !== undefined && k['resources']?.limits !== undefined, `${name(w)} ${k['name'] as string}: resources`);
      }
    }
  });

  test('Services and PDBs select their pods, target named container ports; webhooks call a Service port that exists', () => {
    for (const s of [...of('Service'), ...of('PodDisruptionBudget')]) {
      const sel = (s.obj['kind'] === 'Service' ? s.obj['spec'].selector : s.obj['spec'].selector.matchLabels) as Record<string, string>;
      const targets = workloads().filter((w) => selects(sel, podLabels(w)));
      assert.equal(targets.length, 1, `${name(s)} selects ${targets.map(name).join(', ') || 'nothing'}`);
      if (s.obj['kind'] !== 'Service') continue;
      const ports = new Set((podSpec(targets[0]!)['containers'] as Obj[]).flatMap((c) => (c['ports'] as Obj[] | undefined ?? []).map((p) => p['name'] as string)));
      for (const p of s.obj['spec'].ports as Obj[]) assert.ok(ports.has(p['targetPort'] as string), `${name(s)}: targetPort ${p['targetPort'] as string}`);
    }
    for (const w of of('MutatingWebhookConfiguration').flatMap((m) => m.obj['webhooks'] as Obj[])) {
      const ref = w['clientConfig'].service as Obj;
      const svc = of('Service').find((s) => s.obj['metadata'].name === ref['name'] && s.obj['metadata'].namespace === ref['namespace']);
      assert.ok(svc !== undefined, `${w['name'] as string}: no Service ${ref['namespace'] as string}/${ref['name'] as string}`);
      assert.ok((svc.obj['spec'].ports as Obj[]).some((p) => p['port'] === ref['port']), `${w['name'] as string}: port ${ref['port'] as number}`);
      assert.match(ref['path'] as string, /^\/inject\/(pod|namespace)$/);
    }
  });

  test('NATS: the routes name every StatefulSet pod by the headless Service, and the control plane\'s --store names them too', () => {
    const sts = of('StatefulSet')[0]!;
    const svc = of('Service').find((s) => s.obj['metadata'].name === sts.obj['spec'].serviceName)!;
    assert.equal(svc.obj['spec'].clusterIP, 'None');
    const conf = of('ConfigMap')[0]!.obj['data']['nats.conf'] as string;
    const pods = Array.from({ length: sts.obj['spec'].replicas as number }, (_, i) => `${sts.obj['metadata'].name as string}-${i}.${svc.obj['metadata'].name as string}.skein-system.svc.cluster.local`);
    assert.deepEqual([...conf.matchAll(/nats:\/\/([^:\s]+):6222/g)].map((m) => m[1]), pods);
    const store = ((podSpec(of('Deployment').find((d) => d.obj['metadata'].name === 'skein-control-plane')!)['containers'] as Obj[])[0]!['args'] as string[]).find((a) => a.startsWith('--store='))!;
    assert.deepEqual(store.slice('--store='.length).split(',').map((u) => new URL(u).hostname), pods);
  });

  test('nothing makes or waits for the store bucket but the control plane itself (it creates what it needs with --store-replicas)', () => {
    assert.deepEqual(of('Job').map(name), [], 'no bucket Job');
    const cp = of('Deployment').find((d) => d.obj['metadata'].name === 'skein-control-plane')!;
    assert.deepEqual(((podSpec(cp)['initContainers'] ?? []) as Obj[]).map((c) => c['name'] as string), ['credentials']);
    assert.ok(!docs.some((d) => /nats kv (add|info)|nats-box/.test(JSON.stringify(d.obj))), 'no nats CLI in any manifest');
  });
});

describe('deploy/kubernetes/mesh-secrets.sh', () => {
  const work = tempDir('mesh-secrets');
  let cp: ControlPlaneProcess | undefined;
  after(async () => { await cp?.stop(); fs.rmSync(work, { recursive: true, force: true }); });

  test('its CA and admin token are what a control plane replica runs with', async () => {
    const out = path.join(work, 'secrets');
    execFileSync('bash', [path.join(DIR, 'mesh-secrets.sh'), '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    const data = path.join(work, 'data');
    fs.mkdirSync(data, { mode: 0o700 });
    fs.copyFileSync(path.join(out, 'admin-token'), path.join(data, 'admin-token'));
    fs.chmodSync(path.join(data, 'admin-token'), 0o600); // what the credentials init container does
    cp = await startControlPlaneProcess({ dataDir: data, monitoringListen: 'off', logLevel: 'warn', extraArgs: ['--ca-cert', path.join(out, 'ca.pem'), '--ca-key', path.join(out, 'ca.key')] });
    const ca = fs.readFileSync(path.join(out, 'ca.pem'), 'utf8');
    const token = fs.readFileSync(path.join(out, 'admin-token'), 'utf8').trim();
    const u = new URL('/v1/tokens', cp.api);
    const created = await new Promise<{ status: number; body: Obj }>((resolve, reject) => {
      const req = https.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca, servername: 'control-plane.skein', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Obj }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ service: 'reviews', namespace: 'shop', reusable: true, ttl: '720h' }));
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const tokenFile = path.join(work, 'reviews.token');
    fs.writeFileSync(tokenFile, `${created.body['token'] as string}\n`, { mode: 0o600 });
    const certs = path.join(work, 'certs');
    const r = await skein(['cert', 'issue', '--service', 'reviews', '--namespace', 'shop', '--token-file', tokenFile, '--xds', cp.xds, '--xds-ca-file', path.join(out, 'ca.pem'), '--out', certs]);
    assert.equal(r.code, 0, show(r));
    const leaf = new X509Certificate(fs.readFileSync(path.join(certs, 'cert-chain.pem')));
    assert.ok(leaf.verify(new X509Certificate(ca).publicKey), 'the workload certificate is signed by mesh-secrets.sh\'s CA');
    assert.match(leaf.subjectAltName ?? '', /spiffe:\/\/skein\.local\/ns\/shop\/sa\/reviews/);
  });
});
