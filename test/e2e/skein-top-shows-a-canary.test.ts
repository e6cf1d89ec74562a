/**
 * `skein top` against a live mesh with an 80/20 canary, in a real pseudo-terminal (tmux): the
 * screen shows both versions with their weights, rates that follow the weights, and the proxies
 * that report; `s` cycles the sort; `q` exits with code 0 and gives the normal screen back. Colour
 * on a terminal, none with NO_COLOR. `-o json` prints one snapshot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SKEIN_MAIN } from '../../harness/src/control-plane-process';
import { eventually } from '../support/ads-client';
import { api } from '../support/mesh-api';
import { sayHellos, SPLIT_ROUTE, startCanaryMesh } from '../support/canary-mesh';
import type { CanaryMesh } from '../support/canary-mesh';
import { show, skein } from '../support/skein-cli';
import { TmuxSession } from '../support/tmux';
import type { RouteStatsView } from '../../control-plane/src/telemetry/route-stats-store';

interface ScreenRow { version: string; weight: string; rps: number; success: string }

/** The split route's rows on the screen: ROUTE SERVICE VERSION WEIGHT RPS SUCCESS P50 P95 P99. */
function rowsOf(screen: string): ScreenRow[] {
  return screen.split('\n').filter((l) => l.startsWith(SPLIT_ROUTE)).map((l) => {
    const c = l.trim().split(/\s+/);
    return { version: c[2]!, weight: c[3]!, rps: Number(c[4]), success: c[5]! };
  });
}

describe('skein top', () => {
  let m: CanaryMesh;
  let load: Promise<unknown> | undefined;
  let stopLoad = false;
  const sessions: TmuxSession[] = [];
  const env = (): Record<string, string> => ({ SKEIN_API: m.mesh.cp.api, SKEIN_CA_FILE: m.mesh.cp.trustBundleFile, SKEIN_DATA_DIR: path.join(m.mesh.dir, 'no-credentials'), SKEIN_TOKEN: '' });

  /** `skein top ARGS` in a 200×50 tmux pane; its exit code goes to `<mesh dir>/<name>.exit`. */
  function topInTmux(name: string, args: string[], extraEnv = ''): { session: TmuxSession; exitFile: string } {
    const exitFile = path.join(m.mesh.dir, `${name}.exit`);
    const script = path.join(m.mesh.dir, `${name}.sh`);
    const exports = Object.entries(env()).map(([k, v]) => `export ${k}='${v}'`).join('\n');
    fs.writeFileSync(script, `${exports}\n${extraEnv}\n'${process.execPath}' '${SKEIN_MAIN}' top ${args.join(' ')} 2>'${exitFile}.stderr'\necho $? > '${exitFile}'\n`);
    const session = TmuxSession.start(name, `sh '${script}'`);
    sessions.push(session);
    return { session, exitFile };
  }

  before(async () => {
    m = await startCanaryMesh('top', [80, 20], 2);
    // Steady load from both clients until the tests end.
    load = Promise.all(m.clients.map(async (c) => { while (!stopLoad) await sayHellos(c.greeter, 20, 2); }));
  });
  after(async () => {
    stopLoad = true;
    await load;
    for (const s of sessions) s.kill();
    await m?.mesh.stop();
  });

  test('the screen shows both versions with their weights and rates that follow them; s sorts; q exits 0 and restores the screen', async () => {
    const { session, exitFile } = topInTmux('live', ['--window', '15m']);
    // Enough requests for a tight tolerance: the share of v2 has sigma sqrt(0.16 / n).
    let n = 0;
    const rows = await eventually(async () => {
      const v = await api<RouteStatsView>(m.mesh.cp.api, 'GET', '/v1/stats/routes?window=15m');
      n = v.routes.filter((r) => r.route === SPLIT_ROUTE).reduce((a, r) => a + r.requests, 0);
      if (n < 600) return undefined;
      const r = rowsOf(session.screen());
      return r.length === 2 && r.every((x) => x.rps > 0) ? r : undefined;
    }, 'both versions on the screen with 600 requests counted', 60_000);
    const screen = session.screen();
    const byVersion = new Map(rows.map((r) => [r.version, r]));
    assert.deepEqual([byVersion.get('v1')?.weight, byVersion.get('v2')?.weight], ['80%', '20%'], screen);
    const share = byVersion.get('v2')!.rps / (byVersion.get('v1')!.rps + byVersion.get('v2')!.rps);
    const tolerance = 5 * Math.sqrt((0.2 * 0.8) / n) + 0.01; // five sigma, plus the rounding of the rates on screen
    assert.ok(Math.abs(share - 0.2) <= tolerance, `v2 share ${share.toFixed(3)} should be 0.2 ± ${tolerance.toFixed(3)} (n=${n})\n${screen}`);
    assert.equal(byVersion.get('v1')!.success, '100.00%');
    assert.match(screen, /proxies \(\d+\): .*frontend-1 \d+s ago.*frontend-2 \d+s ago/, 'the proxies that report');
    assert.match(screen, /sort rps/);
    assert.match(session.screen(true), /\x1b\[32m/, 'healthy rows in green on a terminal');

    session.keys('s');
    await eventually(() => (/sort p99/.test(session.screen()) ? true : undefined), 'the sort to become p99');
    session.keys('q');
    const code = await eventually(() => (fs.existsSync(exitFile) && fs.readFileSync(exitFile, 'utf8').trim() !== '' ? fs.readFileSync(exitFile, 'utf8').trim() : undefined), 'skein top to exit');
    assert.equal(code, '0', fs.readFileSync(`${exitFile}.stderr`, 'utf8'));
    assert.doesNotMatch(session.screen(), /GRPCRoute|skein top/, 'the alternate screen is gone: the terminal is as it was');
  });

  test('Ctrl-C exits 0; NO_COLOR draws no colour; --service filters', async () => {
    const { session, exitFile } = topInTmux('nocolor', ['--window', '15m', '--service', 'nothing-here'], 'export NO_COLOR=1');
    await eventually(() => (/no row matches the filter/.test(session.screen()) ? true : undefined), 'the filtered, empty table');
    assert.doesNotMatch(session.screen(true), /\x1b\[(3\d|7|1)m/, 'no colour or attributes with NO_COLOR');
    session.keys('C-c');
    const code = await eventually(() => (fs.existsSync(exitFile) && fs.readFileSync(exitFile, 'utf8').trim() !== '' ? fs.readFileSync(exitFile, 'utf8').trim() : undefined), 'skein top to exit on Ctrl-C');
    assert.equal(code, '0');
  });

  test('-o json prints one snapshot: the rows filtered and sorted, with weights and proxies', async () => {
    const r = await skein(['top', '-o', 'json', '--window', '15m', '--service', 'greeter', '--sort', 'route'], { env: env() });
    assert.equal(r.code, 0, show(r));
    const snap = JSON.parse(r.stdout) as RouteStatsView & { sort: string; service: string };
    assert.equal(snap.sort, 'route');
    assert.deepEqual(snap.routes.map((x) => [x.route, x.version, x.weight]), [[SPLIT_ROUTE, 'v1', 80], [SPLIT_ROUTE, 'v2', 20]]);
    assert.ok(snap.routes.every((x) => x.requests > 0 && x.proxies.length === 2), r.stdout);
    const bad = await skein(['top', '-o', 'json', '--window', '2h'], { env: env() });
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, /--window: must be from 5s to 15m/);
  });
});
