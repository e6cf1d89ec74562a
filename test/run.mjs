#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// `npm test` builds first. `npm test -- store api` runs only files whose name contains a word.
// Files run one at a time: many start real processes and servers, and CI has 2 cores.
// Each test has a 2-minute ceiling, so a hang fails fast instead of stalling CI.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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
const files = walk(dist).sort().filter((f) => filters.length === 0 || filters.some((w) => relative(dist, f).includes(w)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const reporter = 'spec';
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', `--test-reporter=${reporter}`, ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
