/**
 * The control plane of `npm run bench:xds`, in its own process (so its CPU and memory are its
 * own): a ControlPlane on loopback with a plaintext xDS port, driven by the parent over IPC
 * (bench/xds-bench-protocol.ts): the config and endpoints, route changes, endpoint churn.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Session } from 'node:inspector/promises';
import { ControlPlane } from '../control-plane/src/control-plane';
import { silentLogger } from '../shared/src/log';
import { CHURN_MARKER_BASE, ENDPOINT_PORT, ROUTE_MARKER_BASE, svcName } from './xds-bench-protocol';
import type { FromPlane, ToPlane } from './xds-bench-protocol';

const send = (m: FromPlane): void => { if (process.connected) process.send!(m); };
let subsets = 2;

function serviceDoc(i: number, deps: number[] | null, extraPort?: number): unknown {
  const ports = [{ name: 'grpc', port: 50051 }, ...(extraPort === undefined ? [] : [{ name: 'bench', port: extraPort }])];
  return {
    apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name: svcName(i) },
    spec: { ports, subsets: Array.from({ length: subsets }, (_, j) => ({ name: `v${j + 1}`, labels: { version: `v${j + 1}` } })), ...(deps === null ? {} : { dependsOn: deps.map(svcName) }) },
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-bench-xds-'));
  const cp = await ControlPlane.start({ dataDir: dir, xdsListen: '127.0.0.1:0', xdsInsecureListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', log: silentLogger(),
    pushDebounceMs: Number(process.argv[2] ?? 0), pushDebounceMaxMs: Number(process.argv[3] ?? 1000) });
  const stop = async () => { await cp.close(); fs.rmSync(dir, { recursive: true, force: true }); process.exit(0); };
  process.on('disconnect', () => { void stop(); });
  process.on('SIGTERM', () => { void stop(); });
  // Leases last at most 300s: hold them for as long as the run lasts.
  setInterval(() => { for (const l of cp.registry.list()) cp.registry.renew(l.id); }, 60_000).unref();
  const churnLease = new Map<number, string>();
  let profiling: { session: Session; file: string } | undefined;

  process.on('message', (m: ToPlane) => {
    void (async () => {
      try {
        if (m.op === 'setup') {
          subsets = m.subsets;
          // Endpoints first: the config's first snapshot then has them.
          for (let s = 0; s < m.services; s++) {
            for (let j = 0; j < m.endpoints; j++) {
              cp.registry.register({ service: svcName(s), address: `10.${(s >> 8) & 255}.${s & 255}.${j + 1}`, port: ENDPOINT_PORT, labels: { version: `v${(j % m.subsets) + 1}` }, ttl: '300s' });
            }
          }
          await cp.store.apply(Array.from({ length: m.services }, (_, i) => serviceDoc(i, m.deps === null ? null : m.deps[i]!)), { author: 'bench' });
          await cp.syncSnapshot();
          send({ op: 'setupDone' });
        } else if (m.op === 'route') {
          const at = Date.now();
          await cp.store.apply([serviceDoc(m.svc, m.deps, ROUTE_MARKER_BASE + m.k)], { author: 'bench' });
          const applied = Date.now();
          send({ op: 'event', kind: 'route', k: m.k, svc: m.svc, at });
          await cp.syncSnapshot();
          if (process.env['XDS_BENCH_DEBUG']) console.error(`route ${m.k}: apply ${applied - at} ms, installed ${Date.now() - at} ms`);
        } else if (m.op === 'churn') {
          const start = Date.now();
          for (let k = 1; k <= m.plan.length; k++) {
            const due = start + ((k - 1) * 1000) / m.rate;
            const wait = due - Date.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            const s = m.plan[k - 1]!;
            const at = Date.now();
            const lease = cp.registry.register({ service: svcName(s), address: `10.250.${(s >> 8) & 255}.${s & 255}`, port: CHURN_MARKER_BASE + k, labels: { version: 'v1' }, ttl: '300s' });
            const old = churnLease.get(s);
            if (old !== undefined) cp.registry.deregister(old);
            churnLease.set(s, lease.id);
            send({ op: 'event', kind: 'churn', k, svc: s, at });
          }
          send({ op: 'churnDone' });
        } else if (m.op === 'profile') {
          if (profiling !== undefined) {
            const { profile } = await profiling.session.post('Profiler.stop');
            fs.writeFileSync(profiling.file, JSON.stringify(profile));
            profiling.session.disconnect();
            profiling = undefined;
          }
          if (m.file !== null) {
            const session = new Session();
            session.connect();
            await session.post('Profiler.enable');
            await session.post('Profiler.start');
            profiling = { session, file: m.file };
          }
          send({ op: 'profiled' });
        } else if (m.op === 'stats') {
          const proxies = cp.discovery.proxies();
          send({ op: 'stats', proxies: proxies.length, stale: proxies.filter((p) => p.state === 'STALE').length, nacked: proxies.filter((p) => p.state === 'NACKED').length });
        }
      } catch (e) {
        send({ op: 'error', message: (e as Error).stack ?? String(e) });
      }
    })();
  });
  send({ op: 'ready', port: cp.xdsInsecurePort });
}

void main().catch((e: unknown) => { console.error(e); process.exit(1); });
