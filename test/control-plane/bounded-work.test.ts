/**
 * The control plane never blocks on one request: while a maximal config (at the documented
 * maxima: 1000 resources, about 2 MiB) is applied, changed, rolled back and pushed to proxies,
 * and while a hostile 100,000-label body is refused, /healthz keeps answering. Counted, not
 * timed: a probe loop (one probe, then 20 ms, then the next) must get at least one answer per
 * 200 ms of the window on average. A control plane that holds its event loop for seconds at a
 * time (as parsing, validating or diffing such a body did) answers a handful.
 */
import { apiFetch } from '../../harness/src/control-plane-process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIG_LIMITS as L } from '../../shared/src/config/limits';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import { RawAdsClient, eventually, names } from '../support/ads-client';
import { call, startPlane, stopPlane } from '../support/skein';
import type { Plane } from '../support/skein';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;
const V = 'skein.dev/v1alpha1';
const SERVICES = L.resources / 2;
const PROXIES = 8;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Service i: 64 labels (the maximum), 4 subsets, 4 static endpoints. */
function service(i: number): Doc {
  return {
    apiVersion: V, kind: 'Service',
    metadata: { name: `svc-${i}`, labels: Object.fromEntries(range(L.labels).map((k) => [`l${k}`, `v${k}`])) },
    spec: {
      ports: [{ name: 'grpc', port: 50051 }],
      subsets: range(4).map((s) => ({ name: `v${s}`, labels: { version: `v${s}` } })),
      endpoints: range(4).map((e) => ({ address: `10.${i >> 8}.${i & 255}.${e + 1}`, port: 50051, labels: { version: `v${e}` } })),
    },
  };
}

/** Route i: 4 rules of 4 matches; route 0 has the most Envoy routes a service may have (routesPerService). */
function route(i: number, weight = 90): Doc {
  const rules = i === 0 ? L.routesPerService / L.matches : 4;
  const matches = i === 0 ? L.matches : 4;
  return {
    apiVersion: V, kind: 'GRPCRoute', metadata: { name: `svc-${i}` },
    spec: {
      parentRefs: [{ name: `svc-${i}` }],
      rules: range(rules).map((r) => ({
        name: `r${r}`,
        matches: range(matches).map((m) => ({ method: { service: `pkg.S${r}`, method: `M${m}` }, headers: [{ name: 'x-tenant', value: `t${m}` }] })),
        backendRefs: [{ name: `svc-${i}`, subset: 'v0', weight }, { name: `svc-${i}`, subset: 'v1', weight: 100 - weight }],
        timeout: '2s',
      })),
    },
  };
}

function maximalConfig(weight = 90): Doc[] {
  return range(SERVICES).flatMap((i) => [service(i), route(i, weight)]);
}

/** Splits documents into bodies under the API's 1 MiB limit. */
function bodies(docs: Doc[], maxBytes = 900 * 1024): string[] {
  const out: string[] = [];
  let batch: Doc[] = [];
  let size = 0;
  for (const d of docs) {
    const n = JSON.stringify(d).length + 1;
    if (size + n > maxBytes && batch.length > 0) { out.push(JSON.stringify(batch)); batch = []; size = 0; }
    batch.push(d);
    size += n;
  }
  if (batch.length > 0) out.push(JSON.stringify(batch));
  return out;
}

/** Probes /healthz in a loop (one probe, then 20 ms) while `work` runs; counts the answers. */
async function probed<T>(api: string, work: () => Promise<T>): Promise<{ result: T; answered: number; windowMs: number }> {
  let answered = 0;
  let done = false;
  const loop = (async () => {
    while (!done) {
      try { if ((await apiFetch(`${api}/healthz`)).ok) answered++; } catch { /* counted as not answered */ }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const start = Date.now();
  const result = await work();
  const windowMs = Date.now() - start;
  done = true;
  await loop;
  return { result, answered, windowMs };
}

function assertResponsive(p: { answered: number; windowMs: number }, what: string): void {
  const wanted = Math.max(5, Math.floor(p.windowMs / 200));
  console.log(`${what}: ${p.answered} /healthz answers in ${p.windowMs} ms (at least ${wanted} wanted)`);
  assert.ok(p.answered >= wanted, `${what}: only ${p.answered} /healthz answers in ${p.windowMs} ms; at least ${wanted} wanted (one per 200 ms)`);
}

describe('bounded work: the API keeps answering while a maximal config is applied and pushed', () => {
  let plane: Plane | undefined;
  const proxies: RawAdsClient[] = [];

  before(async () => {
    plane = await startPlane({ extraArgs: ['--xds-insecure-listen', '127.0.0.1:0'] });
    for (const i of range(PROXIES)) {
      const c = new RawAdsClient(plane.proc.xdsInsecure!, `proxy-${i}`);
      c.subscribe(TYPE_URLS.CLUSTER);
      c.send({ type_url: TYPE_URLS.LISTENER, resource_names: [] });
      c.send({ type_url: TYPE_URLS.ROUTE, resource_names: ['skein.outbound'] });
      proxies.push(c);
    }
  });

  after(async () => {
    for (const c of proxies) c.close();
    await stopPlane(plane);
  });

  test(`applies a maximal config (${L.resources} resources) in bodies under 1 MiB, and every proxy gets it`, async () => {
    const docs = maximalConfig();
    const total = docs.reduce((n, d) => n + Buffer.byteLength(JSON.stringify(d)), 0);
    assert.ok(docs.length === L.resources && total <= L.configBytes && total > L.configBytes * 0.6, `the config is near the maxima: ${docs.length} resources, ${total} bytes`);
    const p = await probed(plane!.api, async () => {
      for (const body of bodies(docs)) {
        const r = await call(plane!.api, 'POST', '/v1/config', { body, type: 'application/json' });
        assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 500));
      }
    });
    assertResponsive(p, 'maximal apply');
    const clusters = SERVICES * 5;
    for (const c of proxies) {
      await eventually(() => (c.received.some((r) => r.type_url === TYPE_URLS.CLUSTER && names(r).length === clusters) ? true : undefined), `${c.nodeId} to receive ${clusters} clusters`, 60_000);
    }
  });

  test('changes every route of the maximal config, rolls it back, and keeps answering', async () => {
    const p = await probed(plane!.api, async () => {
      const before = (await call(plane!.api, 'GET', '/healthz')).body.revision as number;
      const routes = maximalConfig(50).filter((d) => d.kind === 'GRPCRoute');
      for (const body of bodies(routes)) {
        const r = await call(plane!.api, 'POST', '/v1/config', { body, type: 'application/json' });
        assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 500));
      }
      const dry = await call(plane!.api, 'POST', `/v1/revisions/${before}/rollback?dryRun=true`);
      assert.equal(dry.status, 200, JSON.stringify(dry.body).slice(0, 500));
      assert.equal(dry.body.diff.length, SERVICES);
      const back = await call(plane!.api, 'POST', `/v1/revisions/${before}/rollback`);
      assert.equal(back.status, 200, JSON.stringify(back.body).slice(0, 500));
    });
    assertResponsive(p, 'change and rollback of every route');
  });

  test('refuses a 0.95 MB Service with 100,000 labels with a 422 naming metadata.labels, and keeps answering', async () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 100_000; i++) labels[i.toString(36)] = '';
    const body = JSON.stringify({ apiVersion: V, kind: 'Service', metadata: { name: 'big', labels }, spec: { ports: [{ name: 'grpc', port: 1 }] } });
    assert.ok(body.length > 900_000 && body.length < 1024 * 1024);
    for (const query of ['', '?dryRun=true']) {
      const p = await probed(plane!.api, () => call(plane!.api, 'POST', `/v1/config${query}`, { body, type: 'application/json' }));
      assert.equal(p.result.status, 422, JSON.stringify(p.result.body).slice(0, 300));
      assert.equal(p.result.body.error.code, 'SKEIN_ERR_VALIDATION');
      assert.ok(p.result.body.error.details.some((d: { path: string }) => d.path === 'metadata.labels'), JSON.stringify(p.result.body).slice(0, 300));
      assertResponsive(p, `100,000 labels${query}`);
    }
  });
});
