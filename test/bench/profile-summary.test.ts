/**
 * bench/profile-summary.ts on a real profile: a node process run with --cpu-prof that burns CPU
 * in a function with a known name, waits on a timer (idle), and burns a little in another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatSummary, profilesByPid, readProfile, summarizeProfile, summaryMarkdown } from '../../bench/profile-summary';

const SCRIPT = `'use strict';
function skeinHotLoop(ms) {
  let x = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}
function skeinWarmLoop(ms) {
  let x = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) x += Math.cbrt(x + 1);
  return x;
}
const { skeinLibLoop } = require('lib-hot');
setTimeout(() => { process.stdout.write(String(skeinHotLoop(600) + skeinWarmLoop(60) + skeinLibLoop(150))); }, 200);
`;
/** A module in node_modules, which is a symlink to another folder (as in a worktree sharing one). */
const LIB = `'use strict';
exports.skeinLibLoop = function skeinLibLoop(ms) {
  let x = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) x += Math.sqrt(x + 2);
  return x;
};
`;

/** Runs the script under --cpu-prof in a fresh folder; the profile's file and the child's pid. */
function profileOf(): { dir: string; file: string; pid: number; since: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-profile-summary-'));
  fs.writeFileSync(path.join(dir, 'hot.js'), SCRIPT);
  fs.mkdirSync(path.join(dir, 'shared-modules', 'lib-hot'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'shared-modules', 'lib-hot', 'index.js'), LIB);
  fs.symlinkSync(path.join(dir, 'shared-modules'), path.join(dir, 'node_modules'));
  const since = Date.now() - 1000;
  const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, path.join(dir, 'hot.js')], { cwd: dir, timeout: 60_000, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  assert.equal(files.length, 1, `one profile, got ${files.join(', ')}`);
  return { dir, file: path.join(dir, files[0]!), pid: r.pid!, since };
}

test('the hot function of a real profile is named among the top, with its script line and a plausible share', () => {
  const { dir, file } = profileOf();
  try {
    const s = summarizeProfile(readProfile(file), { root: dir });
    assert.ok(s.top.length <= 10 && s.top.length >= 3, `${s.top.length} entries`);
    const rank = s.top.findIndex((e) => e.functionName === 'skeinHotLoop');
    assert.ok(rank >= 0 && rank < 3, `skeinHotLoop among the top 3:\n${formatSummary('hot.js', s)}`);
    const hot = s.top[rank]!;
    assert.equal(hot.location, 'hot.js:2'); // relative to the root given, 1-based
    assert.ok(hot.shareOfBusy !== null && hot.shareOfBusy > 0.25 && hot.shareOfBusy <= 1, `busy share ${hot.shareOfBusy}`);
    assert.ok(hot.shareOfTotal > 0 && hot.shareOfTotal <= hot.shareOfBusy!, 'a share of the whole is at most the share of busy time');
    for (let i = 1; i < s.top.length; i++) assert.ok(s.top[i - 1]!.selfMs >= s.top[i]!.selfMs, 'most first');
    assert.ok(s.top.some((e) => e.location.startsWith('node:')), 'node internals keep their node: location');
    // V8 names a script by its real path; one reached through a symlinked node_modules is named by that.
    assert.equal(s.top.find((e) => e.functionName === 'skeinLibLoop')?.location, 'node_modules/lib-hot/index.js:2', formatSummary('hot.js', s));
    // Without a root, the script's absolute path.
    const abs = summarizeProfile(readProfile(file)).top.find((e) => e.functionName === 'skeinHotLoop')!;
    assert.equal(abs.location, `${path.join(dir, 'hot.js')}:2`);
    // Printed: the header names the process and the function appears with its location.
    assert.match(formatSummary('client sidecar', s), /^top \d+ self time: client sidecar \(/);
    assert.match(summaryMarkdown('client sidecar', s), /\| `skeinHotLoop` \| `hot\.js:2` \|/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('totals add up: every function\'s self time makes the whole, and busy is the whole minus (idle)', () => {
  const { dir, file } = profileOf();
  try {
    const profile = readProfile(file);
    const all = summarizeProfile(profile, { top: Infinity });
    const sum = all.top.reduce((a, e) => a + e.selfMs, 0);
    assert.ok(Math.abs(sum - all.totalMs) < 1e-6, `${sum} vs ${all.totalMs}`);
    // The whole runs from the first sample to the profile's end.
    assert.ok(Math.abs(all.totalMs - (profile.endTime - profile.startTime - profile.timeDeltas[0]!) / 1000) < 1e-6);
    assert.equal(all.samples, profile.samples.length);
    // The 200 ms timer before the work is idle time, which V8 names (idle).
    const idle = all.top.find((e) => e.functionName === '(idle)');
    assert.ok(idle !== undefined, 'an (idle) entry');
    assert.equal(idle.shareOfBusy, null);
    assert.ok(Math.abs(all.busyMs - (all.totalMs - idle.selfMs)) < 1e-6);
    const shares = all.top.reduce((a, e) => a + e.shareOfTotal, 0);
    assert.ok(Math.abs(shares - 1) < 1e-9, `shares of the whole sum to ${shares}`);
    const busyShares = all.top.reduce((a, e) => a + (e.shareOfBusy ?? 0), 0);
    assert.ok(Math.abs(busyShares - 1) < 1e-9, `shares of busy time sum to ${busyShares}`);
    // Functions are merged across the call tree: one entry per name, script and line.
    const keys = all.top.map((e) => `${e.functionName} ${e.location}`);
    assert.equal(new Set(keys).size, keys.length);
    // The top 10 is the head of the whole list.
    assert.deepEqual(summarizeProfile(profile).top, all.top.slice(0, 10));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('profiles are found by the pid in the name node gives them, newer than the run', () => {
  const { dir, file, pid, since } = profileOf();
  try {
    assert.deepEqual([...profilesByPid(dir, since)], [[pid, file]]);
    assert.equal(profilesByPid(dir, Date.now() + 60_000).size, 0, 'an older profile is not this run\'s');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
    assert.equal(profilesByPid(dir, since).size, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not a CPU profile is refused with a typed error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-profile-summary-'));
  try {
    const cases: [string, string, RegExp][] = [
      ['not json', '{"nodes": [', /not a JSON CPU profile/],
      ['no samples', '{"nodes": [], "startTime": 0, "endTime": 1}', /not a V8 CPU profile/],
      ['uneven', '{"nodes": [], "startTime": 0, "endTime": 1, "samples": [1], "timeDeltas": []}', /1 samples but 0 timeDeltas/],
    ];
    for (const [name, text, message] of cases) {
      const f = path.join(dir, `${name}.cpuprofile`);
      fs.writeFileSync(f, text);
      assert.throws(() => readProfile(f), (e: Error & { code?: string }) => e.code === 'SKEIN_ERR_MALFORMED_INPUT' && message.test(e.message), name);
    }
    assert.throws(() => summarizeProfile({ nodes: [], startTime: 0, endTime: 10, samples: [7], timeDeltas: [1] }), /node 7, which is not in nodes/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
