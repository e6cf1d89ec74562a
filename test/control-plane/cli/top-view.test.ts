/** What `skein top` draws (control-plane/src/cli/top-view.ts): filters, sorts, columns, colour, screen size. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTop, topRows } from '../../../control-plane/src/cli/top-view';
import type { TopFilter, TopSort } from '../../../control-plane/src/cli/top-view';
import { useColor } from '../../../control-plane/src/cli/top-command';
import type { RouteStatsView, RouteVersionView } from '../../../control-plane/src/telemetry/route-stats-store';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 10);
function row(route: string, cluster: string, rps: number, successRate: number | null, p99: number, weight: number | null = null): RouteVersionView {
  const [service, version = ''] = cluster.split('/');
  return { route, service: service!, version, cluster, weight, requests: rps * 10, successes: 0, rps, successRate, latencyMs: { p50: p99 / 4, p95: p99 / 2, p99, max: p99, mean: p99 / 4 }, proxies: [] };
}
const VIEW: RouteStatsView = {
  windowMs: 30_000, generatedAt: new Date(NOW).toISOString(), significantDigits: 2,
  routes: [row('GRPCRoute/greeter/split', 'greeter/v1', 80, 1, 3, 80), row('GRPCRoute/greeter/split', 'greeter/v2', 20, 0.9, 9, 20), row('default', 'db', 50, 0.97, 1, 100), row('HTTPRoute/web/all', 'web', 0, null, 0)],
  proxies: [{ node: 'frontend-1', identity: 'spiffe://skein.local/ns/default/sa/frontend', lastReportAt: new Date(NOW - 2000).toISOString(), reports: 7 }],
};

const CASES: [string, TopSort, TopFilter, string[]][] = [
  ['rps, highest first', 'rps', {}, ['greeter/v1', 'db', 'greeter/v2', 'web']],
  ['p99, highest first', 'p99', {}, ['greeter/v2', 'greeter/v1', 'db', 'web']],
  ['success, worst first, none last', 'success', {}, ['greeter/v2', 'db', 'greeter/v1', 'web']],
  ['route name, then cluster', 'route', {}, ['greeter/v1', 'greeter/v2', 'web', 'db']],
  ['--route: the name contains it', 'rps', { route: 'greeter' }, ['greeter/v1', 'greeter/v2']],
  ['--service: exactly', 'rps', { service: 'db' }, ['db']],
  ['both filters', 'rps', { route: 'split', service: 'db' }, []],
];
for (const [name, sort, filter, want] of CASES) test(`rows: ${name}`, () => assert.deepEqual(topRows(VIEW, sort, filter).map((r) => r.cluster), want));

test('the screen: status line, proxies with their age, one aligned row per route and version, weights; no colour unless asked', () => {
  const lines = renderTop(VIEW, { sort: 'rps', filter: {}, color: false, width: 200, height: 50, now: NOW });
  assert.equal(lines[0], 'skein top  12:00:10  window 30s  sort rps  (s: sort, q: quit)');
  assert.equal(lines[1], 'proxies (1): frontend-1 2s ago');
  assert.match(lines[3]!, /^ROUTE\s+SERVICE\s+VERSION\s+WEIGHT\s+RPS\s+SUCCESS\s+P50 ms\s+P95 ms\s+P99 ms$/);
  assert.match(lines[4]!, /^GRPCRoute\/greeter\/split\s+greeter\s+v1\s+80%\s+80\.0\s+100\.00%\s+0\.75\s+1\.50\s+3\.00$/);
  assert.match(lines[5]!, /^default\s+db\s+\*\s+100%\s+50\.0\s+97\.00%/);
  assert.match(lines[7]!, /^HTTPRoute\/web\/all\s+web\s+\*\s+-\s+0\.0\s+-/);
  assert.ok(lines.every((l) => !l.includes('\x1b')));
  assert.equal(new Set(lines.slice(3).map((l) => l.length)).size, 1, 'columns padded to one width (the last column is right-aligned)');
});

test('colour: green, yellow, red by success rate; the screen is cut to its size', () => {
  const colored = renderTop(VIEW, { sort: 'rps', filter: {}, color: true, width: 200, height: 50, now: NOW });
  assert.ok(colored[4]!.startsWith('\x1b[32m') && colored[5]!.startsWith('\x1b[33m') && colored[6]!.startsWith('\x1b[31m'), JSON.stringify(colored));
  const small = renderTop(VIEW, { sort: 'rps', filter: {}, color: false, width: 20, height: 5, now: NOW });
  assert.equal(small.length, 5);
  assert.ok(small.slice(0, 4).every((l) => l.length <= 20));
  assert.match(small[4]!, /^\.\.\. 4 more rows/);
  const failing = renderTop(undefined, { sort: 'rps', filter: {}, color: false, width: 200, height: 50, now: NOW, error: 'cannot reach the control plane API' });
  assert.deepEqual(failing, ['skein top  12:00:10  window -  sort rps  (s: sort, q: quit)', 'error: cannot reach the control plane API']);
});

const COLOR: [string, boolean, Record<string, string>, boolean][] = [
  ['a terminal', true, {}, true], ['not a terminal', false, {}, false], ['NO_COLOR=1', true, { NO_COLOR: '1' }, false], ['NO_COLOR empty', true, { NO_COLOR: '' }, true],
];
for (const [name, tty, env, want] of COLOR) test(`colour: ${name}`, () => assert.equal(useColor(tty, env), want));
