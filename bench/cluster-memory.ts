/**
 * Memory per idle cluster, measured (no traffic, no load generator: this is a memory profile, not
 * a load bench). An in-process sidecar is fed over ADS, through the same decode-and-apply path a
 * control plane's updates take, with the control plane's own translation of N services (one
 * Service each: a cluster, its ClusterLoadAssignment, two api listeners, a RouteConfiguration and
 * a virtual host in skein.outbound). After each xDS type arrives it collects garbage and prints
 * the heap and external memory added, per service; then it removes the services again and shows
 * what is left.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/cluster-memory.js [--services=1000] [--heapsnapshot]
 *
 * --heapsnapshot writes a heap snapshot at the start and after each step (v8.writeHeapSnapshot,
 * in the working directory), for Chrome DevTools' comparison view. --stats-retention-ms=N keeps
 * removed clusters' stats N ms (default 0 here, so the last line shows what removal releases).
 */
import * as v8 from 'node:v8';
import { buildMesh } from '../shared/src/config/mesh';
import { systemClock } from '../shared/src/clock';
import { TYPE_URLS } from '../shared/src/xds/protos';
import { translate } from '../control-plane/src/translate/translate';
import type { XdsResourceSet } from '../control-plane/src/translate/translate';
import { ScriptedAds, startFedSidecar } from '../test/support/scripted-ads';
import { eventually } from '../test/support/ads-client';
import type { Sidecar } from '../sidecar/src/sidecar';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const N = Number(args.get('services') ?? 1000);

function services(names: string[]): XdsResourceSet {
  const docs = names.map((name) => ({ apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'grpc', port: 50051 }] } }));
  return translate(buildMesh(docs), [], { trust: { trustDomain: 'skein.local', trustBundlePem: '' } });
}

function collect(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc(); gc();
  return process.memoryUsage();
}

/** What the sidecar applied: cluster count, the EDS and RDS versions it accepted. */
function applied(sc: Sidecar): { clusters: number; versions: Record<string, string> } {
  const state = (sc as unknown as { xds: { state(): { typeUrl: string; version: string }[] } }).xds.state();
  return { clusters: sc.outbound.snapshot.clusters.size, versions: Object.fromEntries(state.map((t) => [t.typeUrl, t.version])) };
}

async function main(): Promise<void> {
  const ads = await ScriptedAds.start();
  const base = services(['base']);
  const many = services(['base', ...Array.from({ length: N }, (_, i) => `svc-${i}`)]);
  const version = new Map<string, number>();
  const set = (type: string, docs: object[]): number => { ads.set(type, docs as never); const v = (version.get(type) ?? 0) + 1; version.set(type, v); return v; };
  const put = (r: XdsResourceSet, types: string[]): Record<string, number> => {
    const out: Record<string, number> = {};
    if (types.includes('CDS')) out[TYPE_URLS.CLUSTER] = set(TYPE_URLS.CLUSTER, r.clusters);
    if (types.includes('EDS')) out[TYPE_URLS.ENDPOINT] = set(TYPE_URLS.ENDPOINT, r.endpoints);
    if (types.includes('LDS')) out[TYPE_URLS.LISTENER] = set(TYPE_URLS.LISTENER, r.listeners);
    if (types.includes('RDS')) out[TYPE_URLS.ROUTE] = set(TYPE_URLS.ROUTE, r.routes);
    return out;
  };
  put(base, ['CDS', 'EDS', 'LDS', 'RDS']);
  const sc = await startFedSidecar(ads, { clock: systemClock, statsRetentionMs: Number(args.get('stats-retention-ms') ?? 0) });
  const settle = async (want: Record<string, number>, clusters: number): Promise<void> => {
    await eventually(() => {
      const a = applied(sc);
      // A type the sidecar no longer subscribes to (or never did) keeps its version: only wait for the cluster count then.
      return a.clusters === clusters && Object.entries(want).every(([t, v]) => a.versions[t] === undefined || a.versions[t] === String(v) || a.versions[t] === '') ? true : undefined;
    }, 'the sidecar to apply the update', 60_000);
    await new Promise((r) => setTimeout(r, 200));
  };
  await settle({}, 1);
  const start = collect();
  const snap = (what: string): void => { if (args.has('heapsnapshot')) console.log(`heap snapshot ${what}: ${v8.writeHeapSnapshot(`cluster-memory-${what}.heapsnapshot`)}`); };
  snap('start');
  let last = start;
  const kb = (a: NodeJS.MemoryUsage, b: NodeJS.MemoryUsage, k: keyof NodeJS.MemoryUsage): string => ((b[k] - a[k]) / N / 1024).toFixed(1).padStart(7);
  const line = (what: string, m: NodeJS.MemoryUsage, from: NodeJS.MemoryUsage): void => {
    console.log(`${what.padEnd(34)} heap ${kb(from, m, 'heapUsed')} KB  external ${kb(from, m, 'external')} KB  rss ${kb(from, m, 'rss')} KB  per service`);
  };
  console.log(`${N} services, each: 1 cluster (EDS), 1 ClusterLoadAssignment, ${many.listeners.length / (N + 1) | 0} listeners, 1 RouteConfiguration, 1 virtual host in skein.outbound`);
  console.log(`start: heap ${(start.heapUsed / 1048576).toFixed(1)} MiB, rss ${(start.rss / 1048576).toFixed(1)} MiB`);
  for (const step of ['CDS', 'EDS', 'LDS', 'RDS']) {
    await settle(put(many, [step]), N + 1);
    const m = collect();
    line(`+ ${step}`, m, last);
    snap(step);
    last = m;
  }
  line('all four', last, start);
  await settle(put(base, ['RDS', 'LDS', 'EDS', 'CDS']), 1);
  await new Promise((r) => setTimeout(r, 500));
  const end = collect();
  line('after removing them (vs start)', end, start);
  snap('removed');
  await sc.drain();
  ads.close();
}

void main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
