/**
 * Fuzzes every SRE API route of a real control plane with random and mutated input (bodies,
 * query strings, path parameters, content types): none may get a 5xx. Deterministic: a seeded
 * PRNG, a fixed number of requests per route. Malformed input is the client's error (4xx).
 */
import { apiFetch } from '../../harness/src/control-plane-process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MESH_YAML, ratingsService, reviewsRoute, reviewsService, startPlane, stopPlane } from '../support/skein';
import type { Plane } from '../support/skein';
import { mulberry32 } from '../support/prng';

const PER_ROUTE = 200;

class Fuzz {
  private readonly next: () => number;
  constructor(seed: number) { this.next = mulberry32(seed); }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.next() < p; }

  /** Strings that break parsers and validators. */
  string(): string {
    return this.pick([
      '', ' ', 'a', 'reviews', 'v1', 'Service', 'HTTPRoute/reviews', '-', 'A'.repeat(300), 'x'.repeat(5000), '0', '-1', '1e999', 'NaN', 'null', 'true',
      '\u0000', '\ud800', '\u202e', '😀'.repeat(10), '../../etc/passwd', '%', '%zz', '%00', '*', '.*', '(a+)+$', '[', '{', '"', "'", '\\', '\r\n', '1s', '10m', '11m', '999999h',
      'true; drop', 'reviews:50051', 'a'.repeat(64), String(this.int(1e9)), randomText(this, 1 + this.int(40)),
    ]);
  }

  scalar(): unknown {
    return this.pick<unknown>([null, true, false, 0, -1, 1, 1.5, -0.0001, 1e308, -1e308, 2 ** 53 + 1, 4294967296, 1e21, this.string(), this.string()]);
  }

  /** A random JSON value (bounded depth and size). */
  value(depth = 0): unknown {
    if (depth > 3 || this.chance(0.4)) return this.scalar();
    if (this.chance(0.5)) return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    return Object.fromEntries(Array.from({ length: this.int(4) }, () => [this.pick(['name', 'kind', 'spec', 'metadata', 'rules', 'weights', 'route', 'labels', this.string()]), this.value(depth + 1)]));
  }

  /** A mutation of a valid body: a node replaced by another type, a huge number, unicode, deep nesting, null. */
  mutate(valid: unknown): unknown {
    const copy = structuredClone(valid);
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, p: (string | number)[]): void => {
      paths.push(p);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
      else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    };
    walk(copy, []);
    const times = 1 + this.int(3);
    let root = copy;
    for (let t = 0; t < times; t++) {
      const p = this.pick(paths);
      const replacement = this.pick([
        () => this.scalar(), () => this.value(), () => null, () => [], () => ({}), () => this.string(),
        () => nest(this.scalar(), 50 + this.int(2000)), () => 10 ** (this.int(400) - 100), () => -(2 ** (this.int(80))),
      ])();
      if (p.length === 0) { root = replacement as typeof copy; continue; }
      let parent: any = root;
      for (const k of p.slice(0, -1)) parent = parent?.[k];
      if (parent !== null && typeof parent === 'object') parent[p[p.length - 1]!] = replacement;
    }
    return root;
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function nest(v: unknown, depth: number): unknown {
  let out = v;
  for (let i = 0; i < depth; i++) out = [out];
  return out;
}

/** Percent-encodes any string (a lone surrogate as the bytes Node would send for it). */
function enc(s: string): string {
  try { return encodeURIComponent(s); } catch { return [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''); }
}

/** What may go in a header value (visible ASCII). */
const headerSafe = (s: string): string => s.replace(/[^\x20-\x7e]/g, '');

function randomText(f: Fuzz, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(f.pick([f.int(128), 32 + f.int(95), f.int(0xffff)]));
  return s;
}

/** Ten aliases of ten aliases of ...: 10^4 nodes from a few bytes (the yaml parser throws on it). */
const ALIAS_BOMB = 'a: &a [1,2,3,4,5,6,7,8,9,10]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';

/** Sent first to every route that takes a body: an alias bomb, an alias without its anchor, deep nesting, duplicate keys. */
const HOSTILE = [ALIAS_BOMB, '*a', 'a: *b\n', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`, '{"a":1,"a":2}', '\uFEFF{}', '\u0000'];

/** A body: a mutated valid one (as JSON, YAML or truncated), random JSON, or random text. */
function body(f: Fuzz, valid: unknown[]): string {
  const v = f.pick(valid);
  switch (f.int(7)) {
    case 0: return JSON.stringify(f.mutate(v));
    case 1: { const text = JSON.stringify(v); return text.slice(0, f.int(text.length)); }
    case 2: return JSON.stringify(f.value());
    case 3: return randomText(f, f.int(200));
    case 4: { const t = typeof v === 'string' ? v : MESH_YAML; return t.slice(0, f.int(t.length)) + randomText(f, f.int(10)); }
    case 5: return f.pick(['', '{}', '[]', 'null', '---\n---', '- a\n- b', '*a', '&a [*a]', 'a: &a [1]\nb: [*a, *a]', '{"a":1,"a":2}', ALIAS_BOMB, '!!binary AAAA', '!!js/function "x"', '%YAML 9.9\n---\na: 1', '? [a]\n: b', `${'['.repeat(5000)}${']'.repeat(5000)}`, `${'- '.repeat(3000)}a`]);
    default: return JSON.stringify([f.mutate(v), f.mutate(v)]);
  }
}

function query(f: Fuzz, keys: readonly string[]): string {
  if (f.chance(0.3)) return '';
  const params = Array.from({ length: 1 + f.int(3) }, () => {
    const k = f.chance(0.8) ? f.pick(keys) : f.string();
    const v = f.pick([f.string(), String(f.int(20)), 'true', 'false', '', '0', '1', '0s', '1ms', '10m1ms', '-5s', '1e3', String(2 ** 40)]);
    return `${enc(k)}=${enc(v)}`;
  });
  return `?${params.join('&')}`;
}

const segment = (f: Fuzz): string => f.pick([enc(f.string()), enc(f.string()).replace(/%2F/gi, '/'), '%', '%E0%A4%A', '..', 'reviews', String(f.int(10))]);

interface Target { method: string; path: (f: Fuzz) => string; body?: (f: Fuzz) => string; type?: (f: Fuzz) => string | undefined }

const CONFIG_BODIES: unknown[] = [[reviewsService(), reviewsRoute()], ratingsService(), reviewsRoute(50, 50), { kind: 'List', items: [ratingsService()] }, MESH_YAML];
const CANARY_BODIES: unknown[] = [{ route: 'reviews', weights: { v1: 90, v2: 10 } }, { route: 'GRPCRoute/reviews', weights: { v2: 100 }, rule: 'rule-0' }];
const ENDPOINT_BODIES: unknown[] = [{ service: 'reviews', address: '10.0.0.7', port: 50051, labels: { version: 'v2' }, ttl: '10s', node: 'n' }, { service: 'ratings', address: '::1', port: 1, weight: 3, health: 'DRAINING', zone: 'z' }];
const contentType = (f: Fuzz): string | undefined => f.pick([undefined, 'application/json', 'application/yaml', 'text/plain', 'text/yaml; charset=utf-8', 'application/xml', 'multipart/form-data', headerSafe(f.string())]);
const rev = (f: Fuzz): string => f.pick(['0', '1', '2', '3', String(f.int(1e9)), '999999999', '00001']);
const lease = (f: Fuzz): string => f.pick(['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '------------------------------------', segment(f)]);

const TARGETS: Target[] = [
  { method: 'GET', path: (f) => `/healthz${query(f, ['x'])}` },
  { method: 'GET', path: (f) => `/v1/config${query(f, ['revision'])}` },
  { method: 'POST', path: (f) => `/v1/config${query(f, ['mode', 'dryRun', 'expectedRevision', 'wait'])}`, body: (f) => body(f, CONFIG_BODIES), type: contentType },
  { method: 'DELETE', path: (f) => `/v1/config/${f.pick(['Service', 'GRPCRoute', 'HTTPRoute', 'BackendPolicy', segment(f)])}/${segment(f)}${query(f, ['dryRun', 'expectedRevision', 'wait'])}` },
  { method: 'GET', path: () => '/v1/revisions' },
  { method: 'GET', path: (f) => `/v1/revisions/${f.chance(0.8) ? rev(f) : segment(f)}` },
  { method: 'POST', path: (f) => `/v1/revisions/${f.chance(0.8) ? rev(f) : segment(f)}/rollback${query(f, ['dryRun', 'expectedRevision', 'wait'])}` },
  { method: 'POST', path: (f) => `/v1/canary${query(f, ['dryRun', 'expectedRevision', 'wait'])}`, body: (f) => body(f, CANARY_BODIES), type: contentType },
  { method: 'GET', path: (f) => `/v1/rollouts/${f.chance(0.8) ? rev(f) : segment(f)}${query(f, ['wait'])}` },
  { method: 'GET', path: () => '/v1/proxies' },
  { method: 'GET', path: () => '/v1/endpoints' },
  { method: 'POST', path: () => '/v1/endpoints', body: (f) => body(f, ENDPOINT_BODIES), type: contentType },
  { method: 'PUT', path: (f) => `/v1/endpoints/${lease(f)}` },
  { method: 'DELETE', path: (f) => `/v1/endpoints/${lease(f)}` },
  { method: 'GET', path: (f) => `/v1/xds${query(f, ['type'])}` },
  { method: 'PATCH', path: (f) => f.pick(['/v1/config', '/v1/canary', `/${segment(f)}`, `/v1/${segment(f)}`]) },
];

describe('API fuzz: no input gets a 5xx', () => {
  let plane: Plane | undefined;

  before(async () => { plane = await startPlane(); });

  after(() => stopPlane(plane));

  TARGETS.forEach((t, ti) => {
    const label = `${t.method} ${t.path(new Fuzz(1)).split('?')[0]!.replace(/\/[^/]*$/, (s) => (ti === 0 ? s : s))}`;
    test(`${PER_ROUTE} random and mutated requests: ${label}`, async () => {
      const f = new Fuzz(0x5eed + ti);
      const failures: string[] = [];
      for (let i = 0; i < PER_ROUTE; i++) {
        const urlPath = t.path(f);
        // Every body route gets the known hostile bodies first, then random ones.
        const text = t.body === undefined ? undefined : i < HOSTILE.length ? HOSTILE[i] : t.body(f);
        const type = t.body !== undefined && i < HOSTILE.length ? 'application/yaml' : t.type?.(f);
        const headers: Record<string, string> = {};
        if (type !== undefined) headers['content-type'] = type;
        // Mostly the admin token, so changes get past authentication to the code being fuzzed;
        // sometimes none or garbage, which must be a 401 and change nothing.
        const admin = i < HOSTILE.length || f.chance(0.85);
        if (admin) headers.authorization = `Bearer ${plane!.proc.adminToken}`;
        else if (f.chance(0.5)) headers.authorization = f.chance(0.5) ? enc(f.string()) : headerSafe(f.string());
        if (f.chance(0.2)) headers['x-skein-author'] = f.chance(0.5) ? enc(f.string()) : headerSafe(f.string());
        const res = await apiFetch(new URL(urlPath, plane!.api), { method: t.method, headers, ...(text === undefined ? {} : { body: text }) });
        const reply = await res.text();
        const change = t.method !== 'GET' && !t.path(new Fuzz(1)).startsWith('/v1/endpoints');
        if (!admin && change && ![401, 404, 405].includes(res.status)) failures.push(`${t.method} ${urlPath} without the admin token -> ${res.status}, not 401: ${reply.slice(0, 300)}`);
        if (res.status >= 500) failures.push(`${t.method} ${urlPath} (${type ?? 'no type'}) body ${JSON.stringify((text ?? '').slice(0, 200))} -> ${res.status} ${reply.slice(0, 300)}`);
      }
      assert.deepEqual(failures, [], `${failures.length} requests got a 5xx or passed without a credential:\n${failures.slice(0, 10).join('\n')}`);
    });
  });
});
