/**
 * `npm run bench:xds` (bench/xds-scale.ts) as a correctness check, at a small scale: 200 simulated
 * proxies (real ADS streams in two worker processes) against a real control plane, state of the
 * world unscoped and delta scoped. Every due client converges on every change, nobody is left
 * STALE, and the results file has its documented shape. No timing is asserted: that is the
 * bench's job, at its own scale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../shared/src/paths';

test('bench:xds: 200 proxies, SotW and delta scoped: every client converges on every route change and endpoint change; the JSON has every field', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-xds-bench-'));
  const out = path.join(dir, 'xds-scale.json');
  try {
    const r = spawnSync(process.execPath, [path.join(PACKAGE_ROOT, 'dist/bench/xds-scale.js'), '--proxies=200', '--services=10', '--deps=3', '--workers=2',
      '--route-changes=2', '--churn-rate=20', '--churn-seconds=1', '--modes=sotw,delta-scoped', '--max-seconds=100', `--out=${out}`], { encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 0, `bench:xds failed:\n${r.stderr}`);
    const res = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown> & { modes: Record<string, Record<string, any>> };
    const shown = `\n${r.stderr}\n${JSON.stringify(res.modes, null, 1)}`;
    assert.deepEqual({ proxies: res['proxies'], services: res['services'], subsets: res['subsets'], endpointsPerService: res['endpointsPerService'], depsPerProxy: res['depsPerProxy'] },
      { proxies: 200, services: 10, subsets: 2, endpointsPerService: 10, depsPerProxy: 3 });
    assert.deepEqual(Object.keys(res.modes), ['sotw', 'delta-scoped']);
    for (const [mode, m] of Object.entries(res.modes)) {
      assert.equal(m['truncated'], false, mode + shown);
      assert.equal(m['proxiesConnected'], 200, mode + shown);
      assert.equal(m['proxiesStale'], 0, `${mode}: proxies left STALE${shown}`);
      assert.equal(m['proxiesNacked'], 0, mode + shown);
      assert.equal(m['streamsEnded'], 0, mode + shown);
      assert.equal(typeof m['reconnects'], 'number', mode);
      assert.equal(typeof m['connectStormSeconds'], 'number', mode);
      for (const phase of ['routeChange', 'churn']) {
        assert.equal(m[phase]['unconverged'], 0, `${mode} ${phase}: clients that never got a change due to them${shown}`);
        assert.ok(m[phase]['samples'] > 0, `${mode} ${phase}: samples`);
        for (const q of ['p50Ms', 'p95Ms', 'p99Ms', 'maxMs']) assert.equal(typeof m[phase][q], 'number', `${mode} ${phase} ${q}`);
        assert.ok(m[phase]['p50Ms'] <= m[phase]['p99Ms'] && m[phase]['p99Ms'] <= m[phase]['maxMs'], `${mode} ${phase}: quantiles in order`);
      }
      assert.equal(m['churn']['changes'], 20);
      assert.ok(m['bytesPerProxy']['mean'] > 0 && m['bytesPerProxy']['max'] >= m['bytesPerProxy']['mean'], mode);
      assert.equal(typeof m['controlPlane']['cpuSeconds'], 'number');
      assert.ok(m['controlPlane']['rssMiB'] > 0);
      assert.equal(m['workers']['rssMiB'].length, 2);
      assert.equal(m['workers']['cpuSeconds'].length, 2);
    }
    // Unscoped, every proxy is due every change: one sample per proxy and change.
    assert.equal(res.modes['sotw']!['routeChange']['samples'], 200 * 2, shown);
    assert.equal(res.modes['sotw']!['churn']['samples'], 200 * 20, shown);
    // Scoped, fewer (only the proxies of services that depend on the changed one), and fewer bytes.
    assert.ok(res.modes['delta-scoped']!['churn']['samples'] < 200 * 20);
    assert.ok(res.modes['delta-scoped']!['bytesPerProxy']['mean'] < res.modes['sotw']!['bytesPerProxy']['mean']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
