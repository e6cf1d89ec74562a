#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// `npm test` builds first. `npm test -- store e2e/` runs only files whose path under test/
// contains a word. Layout (docs/architecture.md, "Where the tests are"): a test sits where its
// subject sits in the source tree without src/ (test/sidecar/route/route-table.test.ts); whole-mesh
// suites with processes are in test/e2e, repository checks in test/repo, shared helpers in
// test/support. A compiled file whose test/…/*.test.ts is gone (moved or deleted) is skipped.
// Files run one at a time: many start real processes and servers, and CI has 2 cores.
// Each test has a 2-minute ceiling, so a hang fails fast instead of stalling CI. A full run ends
// with the proxied path's suites again on the fallback HTTP/2 engine (FALLBACK below).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const dist = join(root, 'dist', 'test');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : name.endsWith('.test.js') ? [p] : [];
  });
}

const filters = process.argv.slice(2);
// tsc never deletes outputs: a test moved or deleted since the last build leaves its old .js behind.
const hasSource = (f) => existsSync(join(root, 'test', relative(dist, f).replace(/\.js$/, '.ts')));
const compiled = walk(dist).sort();
const stale = compiled.filter((f) => !hasSource(f));
if (stale.length > 0) console.error(`skipping ${stale.length} compiled test file(s) with no source in test/: ${stale.map((f) => relative(dist, f)).join(' ')}`);
const files = compiled.filter(hasSource).filter((f) => filters.length === 0 || filters.some((w) => relative(dist, f).includes(w)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const reporter = 'spec';
const run = (list, env) => spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', `--test-reporter=${reporter}`, ...list], { stdio: 'inherit', cwd: root, env });
const r = run(files, process.env);
if ((r.status ?? 1) !== 0) process.exit(r.status ?? 1);
// The whole run is on the sidecar's default HTTP/2 engine (skein's own, or $SKEIN_TEST_H2_ENGINE).
// Node's http2 stays the fallback (--h2-engine node), so a full run also passes the proxied
// path's suites on it: routing and retries, the hostile-client edge, and gRPC end to end.
const FALLBACK = ['sidecar/http/router.test', 'sidecar/sidecar-edge-h2.test', 'sidecar/sidecar-edge-h2-fields.test', 'e2e/grpc-calls-through-sidecars.test', 'e2e/mtls-between-sidecars.test'];
if (filters.length === 0 && process.env.SKEIN_TEST_H2_ENGINE === undefined) {
  const again = files.filter((f) => FALLBACK.some((w) => relative(dist, f).includes(w)));
  console.log(`\n# again on Node's HTTP/2 engine (the fallback, --h2-engine node): ${again.length} files`);
  const n = run(again, { ...process.env, SKEIN_TEST_H2_ENGINE: 'node' });
  process.exit(n.status ?? 1);
}
process.exit(0);
