/**
 * Dependencies point one way. madge (a maintained import-graph tool) reads the TypeScript sources:
 * - no runtime import cycle between files;
 * - no cycle between a package's modules (the first folder under src/, e.g. sidecar/src/upstream),
 *   type-only imports included: a cycle there means two modules that cannot be understood apart;
 * - packages: shared imports no other package; the control plane and the sidecar never import each
 *   other; the harness (process starters for the demo, tests and bench) imports only shared; only
 *   the `skein` dispatcher (cli/) sees everything; the Kubernetes injector imports only shared.
 * KNOWN lists the cycles that exist today and are being removed; a new one fails the suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const madge = require('madge') as (paths: string[], opts: object) => Promise<{ obj(): Record<string, string[]>; circular(): string[][] }>;

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SOURCES = ['cli/src', 'control-plane/src', 'sidecar/src', 'injector/src', 'shared/src', 'harness/src'];

/** Cycles being removed (issue 10). Each entry is a cycle as reported, files or modules joined by ' > '. */
const KNOWN_FILE_CYCLES: string[] = [];
const KNOWN_MODULE_CYCLES: string[] = [];

const graph = (skipTypeImports: boolean) => madge(SOURCES, {
  baseDir: ROOT, fileExtensions: ['ts'], tsConfig: path.join(ROOT, 'tsconfig.json'),
  detectiveOptions: { ts: { skipTypeImports }, tsx: { skipTypeImports } },
});

const pkg = (file: string) => file.slice(0, file.indexOf('/src/'));
/** sidecar/src/upstream/lb/p2c.ts -> sidecar/src/upstream; sidecar/src/sidecar.ts -> sidecar/src */
function moduleOf(file: string): string {
  const parts = file.split('/');
  const src = parts.indexOf('src');
  return parts.length > src + 2 ? parts.slice(0, src + 2).join('/') : parts.slice(0, src + 1).join('/');
}

/** Strongly connected components of more than one node (Tarjan). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++; stack.push(v); on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const c: string[] = [];
    let w: string;
    do { w = stack.pop()!; on.delete(w); c.push(w); } while (w !== v);
    if (c.length > 1) out.push(c.sort());
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('no runtime import cycle between files (beyond the known ones being removed)', async () => {
  const found = (await graph(true)).circular().map((c) => c.join(' > '));
  assert.deepEqual(found.filter((c) => !KNOWN_FILE_CYCLES.includes(c)), [], 'new import cycles');
  assert.deepEqual(KNOWN_FILE_CYCLES.filter((c) => !found.includes(c)), [], 'a known cycle is gone: remove it from KNOWN_FILE_CYCLES');
});

test('no cycle between the modules of a package, type imports included (beyond the known ones)', async () => {
  const g = (await graph(false)).obj();
  const edges = new Map<string, Set<string>>();
  const why = new Map<string, string[]>();
  for (const [file, deps] of Object.entries(g)) {
    for (const dep of deps) {
      const a = moduleOf(file);
      const b = moduleOf(dep);
      if (a === b || pkg(file) !== pkg(dep)) continue;
      if (!edges.has(a)) edges.set(a, new Set());
      edges.get(a)!.add(b);
      why.set(`${a}>${b}`, [...(why.get(`${a}>${b}`) ?? []), `${file} -> ${dep}`]);
    }
  }
  const found = cycles(edges).map((c) => c.join(' > '));
  const fresh = found.filter((c) => !KNOWN_MODULE_CYCLES.includes(c));
  const explain = (c: string) => c.split(' > ').flatMap((a) => c.split(' > ').flatMap((b) => why.get(`${a}>${b}`) ?? []));
  assert.deepEqual(fresh, [], `new module cycles:\n${fresh.flatMap(explain).join('\n')}`);
  assert.deepEqual(KNOWN_MODULE_CYCLES.filter((c) => !found.includes(c)), [], 'a known cycle is gone: remove it from KNOWN_MODULE_CYCLES');
});

test('packages depend one way: shared <- control-plane, sidecar, injector, harness <- cli', async () => {
  const allowed: Record<string, string[]> = {
    shared: ['shared'],
    'control-plane': ['control-plane', 'shared'],
    sidecar: ['sidecar', 'shared'],
    harness: ['harness', 'shared'],
    injector: ['injector', 'shared'],
    cli: ['cli', 'control-plane', 'sidecar', 'injector', 'shared', 'harness'],
  };
  const g = (await graph(false)).obj();
  const bad: string[] = [];
  for (const [file, deps] of Object.entries(g)) for (const dep of deps) if (!allowed[pkg(file)]!.includes(pkg(dep))) bad.push(`${file} -> ${dep}`);
  assert.deepEqual(bad, []);
});
