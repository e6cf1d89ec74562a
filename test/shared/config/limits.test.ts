/**
 * The config maxima (shared/src/config/limits.ts), table-driven: each one is accepted at the
 * maximum and refused one past it, as a 422 (SKEIN_ERR_VALIDATION) whose details name the field.
 * Runs through the real store (VersionedConfigStore over FileRevisionLog), as dry runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock } from '../../../shared/src/clock';
import { ErrorCodes, httpStatusOf, MeshError } from '../../../shared/src/errors';
import { CONFIG_LIMITS as L } from '../../../shared/src/config/limits';
import { FileRevisionLog } from '../../../control-plane/src/store/file-revision-log';
import { VersionedConfigStore } from '../../../control-plane/src/store/versioned-store';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;
const V = 'skein.dev/v1alpha1';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const map = (n: number, value = (i: number) => `v${i}`) => Object.fromEntries(range(n).map((i) => [`k${i}`, value(i)]));

/** The services every case may reference: `svc` with subsets s0..s15, and p0..p32 for parentRefs. */
function baseServices(): Doc[] {
  return [
    { apiVersion: V, kind: 'Service', metadata: { name: 'svc' }, spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: range(16).map((i) => ({ name: `s${i}`, labels: { version: `s${i}` } })) } },
    ...range(L.parentRefs + 1).map((i) => ({ apiVersion: V, kind: 'Service', metadata: { name: `p${i}` }, spec: { ports: [{ name: 'grpc', port: 50051 }] } })),
  ];
}
const service = (spec: Doc = {}, metadata: Doc = {}): Doc => ({ apiVersion: V, kind: 'Service', metadata: { name: 'subject', ...metadata }, spec: { ports: [{ name: 'grpc', port: 50051 }], ...spec } });
const rule = (r: Doc = {}): Doc => ({ backendRefs: [{ name: 'svc' }], ...r });
const route = (spec: Doc = {}, name = 'subject'): Doc => ({ apiVersion: V, kind: 'GRPCRoute', metadata: { name }, spec: { parentRefs: [{ name: 'svc' }], rules: [rule()], ...spec } });
const policy = (spec: Doc): Doc => ({ apiVersion: V, kind: 'BackendPolicy', metadata: { name: 'subject' }, spec: { targetRef: { kind: 'Service', name: 'svc' }, ...spec } });
const authorization = (rules: Doc[]): Doc => ({ apiVersion: V, kind: 'AuthorizationPolicy', metadata: { name: 'subject' }, spec: { targetRef: { name: 'svc' }, rules } });
const headerMatch = (i: number) => ({ name: `x-h${i}`, value: 'v' });
const FILTERS = [
  { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }] } },
  { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['x-b'] } },
  { type: 'Fault', fault: { abort: { grpcStatus: 14, percentage: 1 } } },
  { type: 'LocalRateLimit', localRateLimit: { maxTokens: 10 } },
];

interface LimitCase {
  limit: keyof typeof L;
  /** The field path the 422 names (a string, or a pattern for paths that carry a key). */
  path: string | RegExp;
  /** Documents (besides baseServices) with the list or map at `n` entries / characters. */
  docs: (n: number) => Doc[];
}

const cases: LimitCase[] = [
  { limit: 'labels', path: 'metadata.labels', docs: (n) => [service({}, { labels: map(n) })] },
  { limit: 'annotations', path: 'metadata.annotations', docs: (n) => [service({}, { annotations: map(n) })] },
  { limit: 'labelKeyLength', path: /^metadata\.labels\.a{40}\.\.\.$/, docs: (n) => [service({}, { labels: { [`${'a'.repeat(n - 64)}/${'b'.repeat(63)}`]: 'x' } })] },
  { limit: 'labelValueLength', path: 'metadata.labels.k', docs: (n) => [service({}, { labels: { k: 'v'.repeat(n) } })] },
  { limit: 'annotationValueLength', path: 'metadata.annotations.note', docs: (n) => [service({}, { annotations: { note: 'n'.repeat(n) } })] },
  { limit: 'ports', path: 'spec.ports', docs: (n) => [service({ ports: range(n).map((i) => ({ name: `p${i}`, port: 1000 + i })) })] },
  { limit: 'subsets', path: 'spec.subsets', docs: (n) => [service({ subsets: range(n).map((i) => ({ name: `s${i}`, labels: { v: `${i}` } })) })] },
  { limit: 'labels', path: 'spec.subsets[0].labels', docs: (n) => [service({ subsets: [{ name: 'a', labels: map(n) }] })] },
  { limit: 'endpoints', path: 'spec.endpoints', docs: (n) => [service({ endpoints: range(n).map((i) => ({ address: `10.0.${i >> 8}.${i & 255}`, port: 80 })) })] },
  { limit: 'labels', path: 'spec.endpoints[0].labels', docs: (n) => [service({ endpoints: [{ address: '10.0.0.1', port: 80, labels: map(n) }] })] },
  { limit: 'parentRefs', path: 'spec.parentRefs', docs: (n) => [route({ parentRefs: range(n).map((i) => ({ name: `p${i}` })) })] },
  { limit: 'hostnames', path: 'spec.hostnames', docs: (n) => [route({ hostnames: range(n).map((i) => `h${i}.example.com`) })] },
  { limit: 'rules', path: 'spec.rules', docs: (n) => [route({ rules: range(n).map((i) => rule({ name: `r${i}` })) })] },
  { limit: 'matches', path: 'spec.rules[0].matches', docs: (n) => [route({ rules: [rule({ matches: range(n).map((i) => ({ method: { service: 'a.B', method: `M${i}` } })) })] })] },
  { limit: 'headers', path: 'spec.rules[0].matches[0].headers', docs: (n) => [route({ rules: [rule({ matches: [{ headers: range(n).map(headerMatch) }] })] })] },
  {
    limit: 'backendRefs', path: 'spec.rules[0].backendRefs',
    docs: (n) => [route({ rules: [rule({ backendRefs: range(n).map((i) => (i < 16 ? { name: 'svc', subset: `s${i}` } : { name: `p${i - 16}` })) })] })],
  },
  { limit: 'filters', path: 'spec.rules[0].filters', docs: (n) => [route({ rules: [rule({ filters: range(n).map((i) => FILTERS[i % FILTERS.length]) })] })] },
  {
    limit: 'headerModifiers', path: 'spec.rules[0].filters[0].requestHeaderModifier.set',
    docs: (n) => [route({ rules: [rule({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: range(n).map((i) => ({ name: `x-s${i}`, value: 'v' })) } }] })] })],
  },
  { limit: 'statusCodes', path: 'spec.rules[0].retry.retriableStatusCodes', docs: (n) => [route({ rules: [rule({ retry: { retriableStatusCodes: range(n).map((i) => 500 + i) } })] })] },
  { limit: 'statusCodes', path: 'spec.healthCheck.http.expectedStatuses', docs: (n) => [policy({ healthCheck: { http: { expectedStatuses: range(n).map((i) => 200 + i) } } })] },
  { limit: 'authorizationRules', path: 'spec.rules', docs: (n) => [authorization(range(n).map(() => ({ action: 'ALLOW', from: ['*'] })))] },
  { limit: 'authorizationRuleItems', path: 'spec.rules[0].from', docs: (n) => [authorization([{ action: 'ALLOW', from: range(n).map((i) => `spiffe://skein.local/ns/default/sa/s${i}`) }])] },
  { limit: 'authorizationRuleItems', path: 'spec.rules[0].to.paths', docs: (n) => [authorization([{ action: 'ALLOW', from: ['*'], to: { paths: range(n).map((i) => `/p${i}`) } }])] },
  { limit: 'authorizationRuleItems', path: 'spec.rules[0].to.methods', docs: (n) => [authorization([{ action: 'ALLOW', from: ['*'], to: { methods: range(n).map((i) => `M${i}`) } }])] },
  { limit: 'authorizationRuleItems', path: 'spec.rules[0].to.grpc', docs: (n) => [authorization([{ action: 'ALLOW', from: ['*'], to: { grpc: range(n).map((i) => ({ service: `s${i}.S` })) } }])] },
  {
    // 16 rules of 32 matches is the maximum; one more rule (one match) is past it.
    limit: 'routesPerService', path: 'spec.parentRefs[0].name',
    docs: (n) => [route({ rules: range(Math.ceil(n / L.matches)).map((r) => rule({ name: `r${r}`, matches: range(Math.min(L.matches, n - r * L.matches)).map((m) => ({ method: { service: 'a.B', method: `M${m}` } })) })) })],
  },
];

function assertRefused(e: unknown, path: string | RegExp, what: string): true {
  assert.ok(e instanceof MeshError, `${what}: ${String(e)}`);
  assert.equal(e.code, ErrorCodes.VALIDATION, `${what}: ${e.message}`);
  assert.equal(httpStatusOf(e), 422);
  const found = e.details.find((d) => (typeof path === 'string' ? d.path === path : path.test(d.path)));
  assert.ok(found, `${what}: no detail with path ${String(path)}: ${JSON.stringify(e.details)}`);
  assert.match(found.message, /at most/, `${what}: ${found.message}`);
  return true;
}

describe('config limits: at the maximum accepted, one past it a 422 naming the field', () => {
  let dir = '';
  let store: VersionedConfigStore;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-limits-'));
    store = new VersionedConfigStore(await FileRevisionLog.open(dir), new FakeClock());
    await store.apply(baseServices(), { author: 'test' });
  });

  after(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const c of cases) {
    const max = L[c.limit];
    test(`${c.limit} (${max}) at ${String(c.path)}`, async () => {
      const ok = await store.apply(c.docs(max), { dryRun: true });
      assert.equal(ok.dryRun, true);
      await assert.rejects(store.apply(c.docs(max + 1), { dryRun: true }), (e) => assertRefused(e, c.path, `${max + 1}`));
    });
  }

  const services = (n: number, from = 0): Doc[] => range(n).map((i) => service({}, { name: `bulk-${from + i}` }));

  test(`documentsPerRequest (${L.documentsPerRequest}): the body's documents`, async () => {
    const ok = await store.apply(services(L.documentsPerRequest), { dryRun: true, mode: 'replace' });
    assert.equal(ok.diff.filter((d) => d.op === 'added').length, L.documentsPerRequest);
    await assert.rejects(store.apply(services(L.documentsPerRequest + 1), { dryRun: true, mode: 'replace' }), (e) => assertRefused(e, 'documents', 'one document too many'));
  });

  test(`resources (${L.resources}): the whole config after a merge`, async () => {
    const stored = store.current().resources.length;
    const room = L.resources - stored;
    const ok = await store.apply(services(room), { dryRun: true });
    assert.equal(ok.diff.length, room);
    await assert.rejects(store.apply(services(room + 1), { dryRun: true }), (e) => assertRefused(e, 'resources', 'one resource too many'));
  });

  test(`configBytes (${L.configBytes}): the whole config as JSON`, async () => {
    // Services padded with annotations up to exactly configBytes, then one byte more.
    const stored = store.current().resources.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0);
    const padded = (extra: number): Doc[] => {
      const docs: Doc[] = [];
      let left = L.configBytes - stored + extra;
      for (let i = 0; left > 0; i++) {
        const d = service({}, { name: `pad-${i}`, annotations: {} });
        let size = Buffer.byteLength(JSON.stringify(d));
        for (let a = 0; a < L.annotations && size < left; a++) {
          const empty = Buffer.byteLength(JSON.stringify({ [`a${a}`]: '' })) - 2 + (a === 0 ? 0 : 1);
          const len = Math.min(L.annotationValueLength, left - size - empty);
          if (len < 0) break;
          d.metadata.annotations[`a${a}`] = 'x'.repeat(len);
          size = Buffer.byteLength(JSON.stringify(d));
        }
        assert.ok(size <= left || i > 0, 'padding overshoots');
        docs.push(d);
        left -= size;
      }
      assert.equal(left, 0, 'padding is exact');
      return docs;
    };
    await store.apply(padded(0), { dryRun: true });
    await assert.rejects(store.apply(padded(1), { dryRun: true }), (e) => assertRefused(e, 'resources', 'one byte too many'));
  });
});
