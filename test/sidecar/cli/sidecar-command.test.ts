/** `skein sidecar` flags that are refused before anything starts (sidecar/src/cli/sidecar-command.ts), through the real binary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { show, skein } from '../../support/skein-cli';

const BAD_REPORT_INTERVALS: [string[], RegExp][] = [
  [['--stats-report-interval', '500ms'], /--stats-report-interval: must be 0 \(off\) or whole seconds from 1s to 1m, got "500ms"/],
  [['--stats-report-interval', '1500ms'], /--stats-report-interval: must be 0 \(off\) or whole seconds/],
  [['--stats-report-interval', '2m'], /--stats-report-interval: must be 0 \(off\) or whole seconds/],
  [['--stats-report-interval', 'often'], /--stats-report-interval: invalid duration "often"/],
  [['--stats-report-interval', '2s'], /--stats-report-interval: route stats are reported with the workload certificate; with --xds-insecure there is none/],
];

test('a --stats-report-interval the sidecar cannot honour is refused, naming the flag', async () => {
  const runs = await Promise.all(BAD_REPORT_INTERVALS.map(([args]) => skein(['sidecar', '--xds-insecure', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0', ...args])));
  runs.forEach((r, i) => {
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, BAD_REPORT_INTERVALS[i]![1], show(r));
  });
});

test('an --h2-engine other than node or skein is refused, naming the flag', async () => {
  const r = await skein(['sidecar', '--xds-insecure', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0', '--h2-engine', 'nghttp2']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /--h2-engine: must be node or skein, got "nghttp2"/, show(r));
});

const BAD_XDS: [string[], RegExp][] = [
  [['--xds-protocol', 'incremental'], /--xds-protocol: must be delta or sotw, got "incremental"/],
  [['--xds', '127.0.0.1:18000,'], /--xds: give one or more HOST:PORT separated by commas/],
  [['--xds', '127.0.0.1:18000,cp-b'], /--xds: "cp-b" is not HOST:PORT/],
  [['--xds', '127.0.0.1:0'], /--xds: "127.0.0.1:0" is not HOST:PORT/],
  [['--xds', '::1:18000'], /--xds: "::1:18000" is not HOST:PORT \(an IPv6 address goes in brackets\)/],
];

test('an --xds list or --xds-protocol the sidecar cannot use is refused, naming the flag', async () => {
  const runs = await Promise.all(BAD_XDS.map(([args]) => skein(['sidecar', '--xds-insecure', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0', ...args])));
  runs.forEach((r, i) => {
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, BAD_XDS[i]![1], show(r));
  });
});

const BAD_HEAP_TRIM: [string[], RegExp][] = [
  [['--heap-trim-idle', '500ms'], /--heap-trim-idle: must be 0s \(never\) or from 1s to 1h, got "500ms"/],
  [['--heap-trim-idle', '2h'], /--heap-trim-idle: must be 0s \(never\) or from 1s to 1h, got "2h"/],
  [['--heap-trim-idle', 'soon'], /--heap-trim-idle: invalid duration "soon"/],
];

test('a --heap-trim-idle out of range is refused, naming the flag', async () => {
  const runs = await Promise.all(BAD_HEAP_TRIM.map(([args]) => skein(['sidecar', '--xds-insecure', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0', ...args])));
  runs.forEach((r, i) => {
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, BAD_HEAP_TRIM[i]![1], show(r));
  });
});
