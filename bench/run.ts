/**
 * `npm run bench`: the same gRPC unary backend reached three ways, measured side by side.
 *   direct   h2load -> backend
 *   sidecar  h2load -> client sidecar (outbound) -> server sidecar (inbound) -> backend
 *   resilient the same sidecars after a config with a retry policy (3 retries on unavailable,
 *            reset, connect-failure; per-try timeout; route timeout), outlier detection
 *            (consecutive 5xx, success rate, failure percentage) and explicit circuit breakers
 *   tracing-1, tracing-100  a second sidecar pair (Service greeter-traced, plaintext) started with
 *            --trace-endpoint to a local OTLP/HTTP receiver (bench/otlp-sink.ts, its own process),
 *            with the mesh's trace sampling (Telemetry) at 1%, then 100%: compare with `sidecar`
 *   node-h2  a second sidecar pair (Service greeter-node, plaintext) started with --h2-engine node:
 *            both sides of both sidecars on Node's http2 (the fallback engine), row
 *            `sidecar (node h2)`; `sidecar` is skein's own engine, the default
 *   semi-4   a second sidecar pair (Service greeter-semi) whose Node runs with
 *            --max-semi-space-size=4 (V8's young generation capped at 4 MiB per semi-space instead
 *            of 16): row `sidecar (--max-semi-space-size=4)`, what the flag saves in RSS and costs in CPU
 *   node-flags  a second sidecar pair (Service greeter-flags) whose Node runs with --pair-node-flags
 *            (default --no-allocation-site-pretenuring): row `sidecar (FLAGS)`, to judge a V8 flag
 *            against `sidecar` in one run
 *   haproxy  h2load -> HAProxy (h2c -> h2c, one thread) -> backend
 * For each: req/s at saturation, latency p50/p99 at a fixed moderate rate, CPU µs per request of
 * each proxy process (from /proc), and proxy RSS. Writes bench/results/latest.{json,md}.
 * Loopback only; every load phase is bounded in time.
 */
import { fetchTrusting } from '../shared/src/identity/api-trust';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../shared/src/paths';
import { cpuMicros, rssMiB, spawnReady } from './proc';
import type { Proc } from './proc';
import { formatSummary, profilesByPid, readProfile, summarizeProfile, summaryMarkdown } from './profile-summary';
import type { ProfileSummary } from './profile-summary';
import { flagMap, listFlag, numberFlag } from './flags';

const SKEIN = path.join(PACKAGE_ROOT, 'dist/cli/src/main.js');
const BACKEND = path.join(PACKAGE_ROOT, 'dist/bench/backend.js');
const OTLP_SINK = path.join(PACKAGE_ROOT, 'dist/bench/otlp-sink.js');
const args = flagMap(process.argv.slice(2));
/** A numeric flag (bench/flags.ts); a bad value exits 2 naming the flag. */
function numberArg(name: string, def: number, min: number): number {
  try {
    return numberFlag(args, name, def, min);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    process.exit(2);
  }
}
const SAT_SECONDS = numberArg('duration', 8, 1);
const RATE = numberArg('rate', 1000, 4); // requests/s for the latency phase
/**
 * --latency-warmup=SECONDS (default 2): requests at the latency rate run and discarded between the
 * saturation phase and the measured latency phase, for every path. When load drops, V8's memory
 * reducer runs one full collection in each Node process (16-28 ms here): the warm-up keeps that
 * transition out of a figure meant for steady moderate load. 0 measures straight after saturation.
 */
const LATENCY_WARMUP = numberArg('latency-warmup', 2, 0);
const CONNS = 4;
const PATHS = (args.get('paths') ?? 'direct,sidecar,node-h2,tracing-1,tracing-100,mtls,resilient,haproxy').split(',');
const TRACING = PATHS.includes('tracing-1') || PATHS.includes('tracing-100');
/**
 * --tracing-repeat=N: after each tracing row, N more saturation phases each of the control pair
 * and the traced pair, in alternating order (control first, then traced first, ...), reported
 * as the median CPU per request of each and their ratio (two pairs of the same build differ by
 * more than a 10% budget from one phase to the next on a shared machine). Default 0: off.
 */
const TRACING_REPEAT = numberArg('tracing-repeat', 0, 0);
/**
 * --profile: run the sidecars under --cpu-prof; profiles land in bench/results/ (see README), each
 * written when its sidecar exits. After the last row the sidecars are stopped (SIGTERM, their
 * drain, then exit; SIGKILL only after PROFILE_KILL_AFTER_MS) and each profile is summarised: its
 * top 10 functions by self time, printed and written to latest.{md,json} (`proxies[].profileTop`).
 */
const PROFILE_DIR = path.join(PACKAGE_ROOT, 'bench/results');
const PROFILE = args.has('profile') ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
/** --sidecar-node-flags='--a --b=1': Node flags for every sidecar (to compare V8 heap settings, say); recorded in the results. */
const SIDECAR_NODE_FLAGS = listFlag(args, 'sidecar-node-flags');
/** --pair-node-flags='--a --b=1': Node flags of the node-flags path's pair only. */
const PAIR_NODE_FLAGS = listFlag(args, 'pair-node-flags', '--no-allocation-site-pretenuring');
/** The sidecar's default drain timeout (20 s) and time to write a profile of a few MB. */
const PROFILE_KILL_AFTER_MS = 40_000;
/** The sidecars started under --profile, by pid: their names, in start order. */
const profiled = new Map<number, string>();
/** The process each `proxies[]` entry measured (not in the JSON). */
const proxyPid = new WeakMap<object, number>();
/** --profile: each profiled sidecar's summary, by pid, and the rows it served. */
const profiles = new Map<number, { name: string; file: string; summary: ProfileSummary; rows: string[] }>();

interface Result {
  path: string;
  rps: number;
  p50Ms: number; p99Ms: number;
  addedP50Ms?: number; addedP99Ms?: number;
  proxies: { name: string; cpuUsPerReq: number; rssMiB: number; profileTop?: ProfileTop }[];
  errors: number;
}

/** --profile: the top functions by self time of a proxy's whole process life (every row it served). */
interface ProfileTop extends ProfileSummary { file: string }

/** gRPC frame of skein.demo.v1.HelloRequest{name: "bench"}. */
function requestBody(dir: string): string {
  const msg = Buffer.from([0x0a, 0x05, ...Buffer.from('bench')]);
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
  const file = path.join(dir, 'req.bin');
  fs.writeFileSync(file, frame);
  return file;
}

function h2load(url: string, body: string, extra: string[]): string {
  return execFileSync('h2load', ['-c', String(CONNS), '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', body, ...extra, url], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

function parseRps(out: string): { rps: number; ok: number; failed: number } {
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  return { rps, ok: Number(m?.[1] ?? 0), failed: Number(m?.[2] ?? 0) };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Warm-up, then the saturation phase: req/s and each proxy's CPU per request. */
function saturate(url: string, authority: string | undefined, body: string, proxies: { name: string; pid: number }[]): { sat: ReturnType<typeof parseRps>; cpu: Result['proxies'] } {
  const auth = authority ? ['-H', `:authority: ${authority}`] : [];
  h2load(url, body, [...auth, '-n', '2000', '-m', '8']); // warm-up (JIT, connections)
  const before = proxies.map((p) => cpuMicros(p.pid));
  const sat = parseRps(h2load(url, body, [...auth, '-m', '16', '-D', String(SAT_SECONDS)]));
  const cpu = proxies.map((p, i) => ({ name: p.name, cpuUsPerReq: (cpuMicros(p.pid) - before[i]!) / Math.max(1, sat.ok), rssMiB: rssMiB(p.pid) }));
  cpu.forEach((c, i) => proxyPid.set(c, proxies[i]!.pid));
  return { sat, cpu };
}

async function measure(name: string, url: string, authority: string | undefined, body: string, proxies: { name: string; pid: number }[], dir: string): Promise<Result> {
  const auth = authority ? ['-H', `:authority: ${authority}`] : [];
  const { sat, cpu } = saturate(url, authority, body, proxies);
  const log = path.join(dir, `${name}.log`);
  if (LATENCY_WARMUP > 0) h2load(url, body, [...auth, '-m', '1', '--rps', String(RATE / CONNS), '-D', String(LATENCY_WARMUP)]);
  const lat = parseRps(h2load(url, body, [...auth, '-m', '1', '--rps', String(RATE / CONNS), '-D', String(Math.max(4, SAT_SECONDS / 2)), '--log-file', log]));
  const durations = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => Number(l.split('\t')[2]) / 1000).sort((a, b) => a - b);
  const r: Result = { path: name, rps: Math.round(sat.rps), p50Ms: percentile(durations, 50), p99Ms: percentile(durations, 99), proxies: cpu, errors: sat.failed + lat.failed };
  process.stderr.write(`bench: ${name}: ${r.rps} req/s, p50 ${r.p50Ms.toFixed(3)}ms p99 ${r.p99Ms.toFixed(3)}ms ${cpu.map((c) => `${c.name} ${c.cpuUsPerReq.toFixed(0)}µs/req ${c.rssMiB.toFixed(0)}MiB`).join(' ')}\n`);
  return r;
}

interface Pair { url: string; authority: string; sidecars: { name: string; pid: number }[] }
/** --tracing-repeat's summary: median CPU µs/req per proxy of each pair, and traced / control. */
interface Repeats { sampling: string; phases: number; control: number[]; traced: number[]; ratio: number[] }
const tracingRepeats: Repeats[] = [];

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; }

/** `n` saturation phases of each pair, alternating which goes first. */
function compareAlternating(sampling: string, n: number, body: string, control: Pair, traced: Pair): Repeats {
  const c: number[][] = control.sidecars.map(() => []);
  const t: number[][] = traced.sidecars.map(() => []);
  for (let i = 0; i < n; i++) {
    const order: [Pair, number[][]][] = i % 2 === 0 ? [[control, c], [traced, t]] : [[traced, t], [control, c]];
    for (const [pair, into] of order) saturate(pair.url, pair.authority, body, pair.sidecars).cpu.forEach((x, j) => into[j]!.push(x.cpuUsPerReq));
    process.stderr.write(`bench: tracing repeat ${i + 1}/${n}: control ${c.map((v) => v[i]!.toFixed(0)).join('/')} µs/req, traced ${sampling} ${t.map((v) => v[i]!.toFixed(0)).join('/')}\n`);
  }
  const control_ = c.map(median);
  const traced_ = t.map(median);
  return { sampling, phases: n, control: control_, traced: traced_, ratio: traced_.map((x, j) => x / control_[j]!) };
}

/** A `skein sidecar` process, under --cpu-prof with --profile. */
async function spawnSidecar(args: string[], what: string, nodeFlags: string[] = []): Promise<Proc> {
  const p = await spawnReady(process.execPath, [...SIDECAR_NODE_FLAGS, ...nodeFlags, ...PROFILE, SKEIN, 'sidecar', ...args], what, PROFILE.length === 0 ? {} : { killAfterMs: PROFILE_KILL_AFTER_MS });
  if (PROFILE.length > 0) profiled.set(p.pid, what);
  return p;
}

/**
 * --profile, after the last row: stops the sidecars still running (each writes its profile as it
 * exits), then summarises every profiled sidecar's profile, prints it, and attaches it to the
 * `proxies[]` entries of the rows that sidecar served.
 */
async function summariseProfiles(procs: Proc[], results: Result[], started: number): Promise<void> {
  for (const p of [...procs].reverse()) if (profiled.has(p.pid)) await p.stop();
  const files = profilesByPid(PROFILE_DIR, started);
  for (const [pid, name] of profiled) {
    const file = files.get(pid);
    const proc = procs.find((p) => p.pid === pid);
    if (file === undefined) {
      process.stderr.write(`bench: no CPU profile for ${name} (pid ${pid}${proc?.child.signalCode ? `, ended by ${proc.child.signalCode}` : ''})\n`);
      continue;
    }
    let summary: ProfileSummary;
    try {
      summary = summarizeProfile(readProfile(file), { top: 10, root: PACKAGE_ROOT });
    } catch (e) {
      process.stderr.write(`bench: cannot summarise ${name}'s CPU profile: ${(e as Error).message}\n`);
      continue;
    }
    const rel = path.relative(PACKAGE_ROOT, file);
    const rows = results.filter((r) => r.proxies.some((x) => proxyPid.get(x) === pid)).map((r) => r.path);
    profiles.set(pid, { name, file: rel, summary, rows });
    process.stderr.write(`bench: ${formatSummary(`${name} (pid ${pid}; rows: ${rows.join(', ') || 'none'})`, summary)}`);
    for (const r of results) for (const x of r.proxies) if (proxyPid.get(x) === pid) x.profileTop = { file: rel, ...summary };
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-bench-'));
  const procs: Proc[] = [];
  const results: Result[] = [];
  try {
    const body = requestBody(dir);
    const backend = await spawnReady(process.execPath, [BACKEND], 'backend');
    procs.push(backend);
    const bport = backend.ready['port'] as number;
    if (PATHS.includes('direct')) results.push(await measure('direct', `http://127.0.0.1:${bport}/skein.demo.v1.Greeter/SayHello`, undefined, body, [], dir));
    if (PATHS.includes('sidecar') || PATHS.includes('mtls') || PATHS.includes('resilient') || PATHS.includes('node-h2') || PATHS.includes('semi-4') || PATHS.includes('node-flags') || TRACING) {
      const cp = await spawnReady(process.execPath, [SKEIN, 'control-plane', '--data-dir', path.join(dir, 'cp'), '--xds-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--monitoring-listen', '127.0.0.1:0', '--log-level', 'warn'], 'control plane');
      procs.push(cp);
      const api = cp.ready['api'] as string;
      apiCa = fs.readFileSync(cp.ready['trustBundleFile'] as string, 'utf8');
      // The plaintext row first (spec.mtls DISABLE), then the same sidecars in STRICT mTLS.
      const svc = (mtls: 'DISABLE' | 'STRICT') => ({ apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name: 'greeter' }, spec: { ports: [{ name: 'grpc', port: 50051 }], mtls } });
      const auth = { authorization: `Bearer ${fs.readFileSync(cp.ready['adminTokenFile'] as string, 'utf8').trim()}` };
      const apply = async (docs: unknown[]): Promise<number> => {
        // The API connection may have idled through a whole measurement; the server may close it
        // just as fetch reuses it (ECONNRESET), so one retry. Applying is idempotent.
        const post = () => apiFetch(`${api}/v1/config`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(docs) });
        const r = await post().catch(post);
        if (!r.ok) throw new Error(`applying the bench config failed: ${r.status} ${await r.text()}`);
        return ((await r.json()) as { revision: number }).revision;
      };
      await apply([svc('DISABLE')]);
      // Each sidecar gets its identity the way production ones do: a join token, then a CSR.
      const tokenFile = async (service: string, serviceAccount: string): Promise<string> => {
        const res = await apiFetch(`${api}/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ service, serviceAccount }) });
        const t = (await res.json()) as { token?: string };
        if (res.status !== 201 || t.token === undefined) throw new Error(`creating a join token failed: ${res.status} ${JSON.stringify(t)}`);
        const file = path.join(dir, `${serviceAccount}.token`);
        fs.writeFileSync(file, t.token, { mode: 0o600 });
        return file;
      };
      const common = ['--xds', cp.ready['xds'] as string, '--xds-ca-file', cp.ready['trustBundleFile'] as string, '--log-level', 'warn', '--admin-listen', '127.0.0.1:0'];
      /** Another sidecar pair for Service `service` (plaintext; applied with `docs`), `extra` flags on both, so other rows keep their own. */
      const startPair = async (service: string, extra: string[], docs: unknown[] = [], nodeFlags: string[] = []): Promise<{ url: string; authority: string; sidecars: { name: string; pid: number }[]; procs: Proc[] }> => {
        await apply([{ apiVersion: 'skein.dev/v1alpha1', kind: 'Service', metadata: { name: service }, spec: { ports: [{ name: 'grpc', port: 50051 }], mtls: 'DISABLE' } }, ...docs]);
        const pServer = await spawnSidecar([...common, ...extra, '--token-file', await tokenFile(service, service), '--node-id', `bench-${service}-server`, '--service', service, '--app', `127.0.0.1:${bport}`, '--inbound-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0'], `${service} server sidecar`, nodeFlags);
        const pClient = await spawnSidecar([...common, ...extra, '--token-file', await tokenFile(`bench-${service}-client`, `bench-${service}-client`), '--service-account', `bench-${service}-client`, '--node-id', `bench-${service}-client`, '--outbound-listen', '127.0.0.1:0'], `${service} client sidecar`, nodeFlags);
        procs.push(pServer, pClient);
        await waitRoutable(pClient.ready['outbound'] as string, `${service}:50051`);
        return {
          url: `http://${pClient.ready['outbound'] as string}/skein.demo.v1.Greeter/SayHello`, authority: `${service}:50051`,
          sidecars: [{ name: 'client sidecar', pid: pClient.pid }, { name: 'server sidecar', pid: pServer.pid }], procs: [pClient, pServer],
        };
      };
      const server = await spawnSidecar([...common, '--token-file', await tokenFile('greeter', 'greeter'), '--node-id', 'bench-server', '--service', 'greeter', '--app', `127.0.0.1:${bport}`, '--inbound-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0'], 'server sidecar');
      procs.push(server);
      const client = await spawnSidecar([...common, '--token-file', await tokenFile('bench-client', 'bench-client'), '--service-account', 'bench-client', '--node-id', 'bench-client', '--outbound-listen', '127.0.0.1:0'], 'client sidecar');
      procs.push(client);
      await waitRoutable(client.ready['outbound'] as string, 'greeter:50051');
      const sidecars = [{ name: 'client sidecar', pid: client.pid }, { name: 'server sidecar', pid: server.pid }];
      const url = `http://${client.ready['outbound'] as string}/skein.demo.v1.Greeter/SayHello`;
      if (PATHS.includes('sidecar')) results.push(await measure('sidecar', url, 'greeter:50051', body, sidecars, dir));
      if (PATHS.includes('node-h2')) {
        const pair = await startPair('greeter-node', ['--h2-engine', 'node']);
        results.push(await measure('sidecar (node h2)', pair.url, pair.authority, body, pair.sidecars, dir));
        for (const p of pair.procs) await p.stop();
      }
      // Pairs whose Node runs with other flags: row `sidecar (FLAGS)`.
      const flagPairs: [string, string, string[]][] = [['semi-4', 'greeter-semi', ['--max-semi-space-size=4']], ['node-flags', 'greeter-flags', PAIR_NODE_FLAGS]];
      for (const [name, service, nodeFlags] of flagPairs) {
        if (!PATHS.includes(name)) continue;
        const pair = await startPair(service, [], [], nodeFlags);
        results.push(await measure(`sidecar (${nodeFlags.join(' ')})`, pair.url, pair.authority, body, pair.sidecars, dir));
        for (const p of pair.procs) await p.stop();
      }
      if (TRACING) {
        // The control for the tracing rows: a pair started the same way, at the same point of the
        // run, with tracing off (a fresh pair measured 5-10% above the warmed one in one run, the
        // size of the effect being measured); this row, not 'sidecar', is what they compare with.
        const control = await startPair('greeter-control', []);
        results.push(await measure('sidecar (fresh pair, tracing off)', control.url, control.authority, body, control.sidecars, dir));
        // Another pair for another Service, so the rows above and below keep running untraced.
        const sink = await spawnReady(process.execPath, [OTLP_SINK], 'OTLP receiver');
        procs.push(sink);
        const telemetry = (samplingPercent: number) => ({ apiVersion: 'skein.dev/v1alpha1', kind: 'Telemetry', metadata: { name: 'mesh' }, spec: { tracing: { samplingPercent } } });
        const traced = await startPair('greeter-traced', ['--trace-endpoint', sink.ready['url'] as string], [telemetry(1)]);
        const { url: tUrl, sidecars: tSidecars } = traced;
        const spans = async (): Promise<string> => {
          // The receiver may still be decoding a backlog of batches (100%): ask a few times.
          let last = '';
          for (let i = 0; i < 5; i++) {
            try { return String(((await (await fetch(sink.ready['count'] as string, { signal: AbortSignal.timeout(10_000) })).json()) as { spans: number }).spans); } catch (e) { last = `${(e as Error).message}${(e as Error).cause instanceof Error ? `: ${((e as Error).cause as Error).message}` : ''}`; }
            await new Promise((r) => setTimeout(r, 2000));
          }
          return `? (${last}; receiver: ${sink.child.exitCode === null ? 'running' : `exited ${sink.child.exitCode}`} ${sink.stderr().slice(-500)})`;
        };
        if (PATHS.includes('tracing-1')) {
          results.push(await measure('sidecar + tracing 1%', tUrl, 'greeter-traced:50051', body, tSidecars, dir));
          process.stderr.write(`bench: the OTLP receiver has ${await spans()} spans\n`);
          if (TRACING_REPEAT > 0) tracingRepeats.push(compareAlternating('1%', TRACING_REPEAT, body, control, { url: tUrl, authority: 'greeter-traced:50051', sidecars: tSidecars }));
        }
        if (PATHS.includes('tracing-100')) {
          const revision = await apply([telemetry(100)]);
          await waitSynced(api, 'bench-greeter-traced-client', revision);
          await waitSynced(api, 'bench-greeter-traced-server', revision);
          results.push(await measure('sidecar + tracing 100%', tUrl, 'greeter-traced:50051', body, tSidecars, dir));
          process.stderr.write(`bench: the OTLP receiver has ${await spans()} spans\n`);
          if (TRACING_REPEAT > 0) tracingRepeats.push(compareAlternating('100%', TRACING_REPEAT, body, control, { url: tUrl, authority: 'greeter-traced:50051', sidecars: tSidecars }));
        }
        for (const p of control.procs) await p.stop();
        await apply([telemetry(1)]);
        for (const p of traced.procs) await p.stop();
      }
      const strict = await apply([svc('STRICT')]);
      await waitSynced(api, 'bench-client', strict);
      await waitSynced(api, 'bench-server', strict);
      if (PATHS.includes('mtls')) results.push(await measure('sidecar, STRICT mTLS between them', url, 'greeter:50051', body, sidecars, dir));
      if (PATHS.includes('resilient')) {
        const revision = await applyResilience(api, auth);
        await waitSynced(api, 'bench-client', revision);
        results.push(await measure('sidecar + retries, outlier detection, breakers', url, 'greeter:50051', body, sidecars, dir));
      }
    }
    if (PATHS.includes('haproxy')) {
      const hport = 20000 + Math.floor(Math.random() * 20000);
      const cfg = path.join(dir, 'haproxy.cfg');
      fs.writeFileSync(cfg, `global\n  nbthread 1\n  log stderr format raw local0 err\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\nfrontend fe\n  bind 127.0.0.1:${hport} proto h2\n  default_backend be\nbackend be\n  server s1 127.0.0.1:${bport} proto h2\n`);
      const hap = await spawnReady('haproxy', ['-f', cfg, '-db'], 'haproxy', { noReadyLine: true });
      procs.push(hap);
      results.push(await measure('haproxy', `http://127.0.0.1:${hport}/skein.demo.v1.Greeter/SayHello`, undefined, body, [{ name: 'haproxy', pid: hap.pid }], dir));
    }
    const direct = results.find((r) => r.path === 'direct');
    for (const r of results) if (direct && r !== direct) { r.addedP50Ms = r.p50Ms - direct.p50Ms; r.addedP99Ms = r.p99Ms - direct.p99Ms; }
    if (PROFILE.length > 0) await summariseProfiles(procs, results, started);
    write(results);
  } finally {
    for (const p of procs.reverse()) await p.stop();
    if (process.env.SKEIN_BENCH_KEEP === undefined) fs.rmSync(dir, { recursive: true, force: true }); else process.stderr.write(`bench: kept ${dir}\n`);
  }
}

/** The control plane's roots: its API is HTTPS from the mesh CA. */
let apiCa: string | undefined;
const apiFetch = (url: string, init: Parameters<typeof fetchTrusting>[1] = {}) => fetchTrusting(url, init, apiCa);

/** The resilience config the `resilient` row runs with; resolves with its revision. */
async function applyResilience(api: string, auth: Record<string, string>): Promise<number> {
  const route = {
    apiVersion: 'skein.dev/v1alpha1', kind: 'GRPCRoute', metadata: { name: 'greeter' },
    spec: { parentRefs: [{ name: 'greeter' }], rules: [{ name: 'all', backendRefs: [{ name: 'greeter' }], timeout: '5s', retry: { retries: 3, retryOn: ['unavailable', 'reset', 'connect-failure'], perTryTimeout: '1s' } }] },
  };
  const policy = {
    apiVersion: 'skein.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'greeter' },
    spec: {
      targetRef: { kind: 'Service', name: 'greeter' },
      circuitBreaker: { maxConnections: 100, maxPendingRequests: 1000, maxRequests: 1000 },
      outlierDetection: { consecutive5xx: 5, consecutiveGatewayFailure: 5, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50, successRate: { minimumHosts: 1, requestVolume: 10 }, failurePercentage: { threshold: 50, minimumHosts: 1, requestVolume: 10 } },
    },
  };
  // The API connection from the first apply has idled through a whole measurement; the server
  // may close it just as fetch reuses it (ECONNRESET), so one retry. Applying is idempotent.
  const post = () => apiFetch(`${api}/v1/config`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify([route, policy]) });
  const r = await post().catch(post);
  if (!r.ok) throw new Error(`applying the resilience config failed: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { revision: number }).revision;
}

/** Waits until `node` has ACKed everything the control plane sent from `revision` on. */
async function waitSynced(api: string, node: string, revision: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const proxies = (await (await apiFetch(`${api}/v1/proxies`)).json()) as { proxies: { nodeId: string; state: string; types: { sentRevision?: number; ackedVersion?: string; sentVersion?: string }[] }[] };
    const p = proxies.proxies.find((x) => x.nodeId === node);
    if (p !== undefined && p.state === 'SYNCED' && p.types.some((t) => (t.sentRevision ?? 0) >= revision) && p.types.every((t) => t.ackedVersion === t.sentVersion)) return;
    if (Date.now() > deadline) throw new Error(`${node} never ACKed revision ${revision}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls the client sidecar until a request is routed (its config arrived). */
async function waitRoutable(outbound: string, authority: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const out = execFileSync('h2load', ['-n', '1', '-c', '1', '-H', `:authority: ${authority}`, '-H', 'content-type: application/grpc', `http://${outbound}/skein.demo.v1.Greeter/SayHello`], { encoding: 'utf8' });
      if (/1 succeeded/.test(out) && !/x-skein-reason/.test(out)) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('the client sidecar never routed a request');
    await new Promise((r) => setTimeout(r, 200));
  }
}

function write(results: Result[]): void {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  const machine = `${os.cpus().length} x ${cpuModel}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  const json = { machine, saturationSeconds: SAT_SECONDS, latencyRate: RATE, latencyWarmupSeconds: LATENCY_WARMUP, connections: CONNS, ...(SIDECAR_NODE_FLAGS.length === 0 ? {} : { sidecarNodeFlags: SIDECAR_NODE_FLAGS }), results, ...(tracingRepeats.length === 0 ? {} : { tracingRepeats }) };
  fs.writeFileSync(path.join(PACKAGE_ROOT, 'bench/results/latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  const rows = results.map((r) => `| ${r.path} | ${r.rps} | ${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${r.addedP50Ms?.toFixed(3) ?? '-'} | ${r.addedP99Ms?.toFixed(3) ?? '-'} | ${r.proxies.map((p) => `${p.name}: ${p.cpuUsPerReq.toFixed(0)}`).join(', ') || '-'} | ${r.proxies.map((p) => p.rssMiB.toFixed(0)).join(', ') || '-'} | ${r.errors} |`);
  const md = `Machine: ${machine}.${SIDECAR_NODE_FLAGS.length === 0 ? '' : ` Sidecars run with \`${SIDECAR_NODE_FLAGS.join(' ')}\`.`} Saturation: ${CONNS} connections x 16 streams for ${SAT_SECONDS}s. Latency: ${RATE} req/s, ${CONNS} connections, after ${LATENCY_WARMUP}s of warm-up at that rate.\n\n` +
    '| path | req/s (saturated) | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU µs/req per proxy | RSS MiB | errors |\n|---|---|---|---|---|---|---|---|---|\n' + `${rows.join('\n')}\n` +
    tracingRepeats.map((r) => `\nTracing ${r.sampling} against its control, ${r.phases} alternating saturation phases each, median CPU µs/req per sidecar (client, server): control ${r.control.map((x) => x.toFixed(0)).join(', ')}; traced ${r.traced.map((x) => x.toFixed(0)).join(', ')}; ratio ${r.ratio.map((x) => x.toFixed(3)).join(', ')}.\n`).join('') +
    (profiles.size === 0 ? '' : '\nCPU profiles (--profile): each covers its sidecar\'s whole process life (start-up, every row it served, drain). Locations are in the compiled `dist/` JavaScript.\n') +
    [...profiles.values()].map((p) => `\n${summaryMarkdown(`${p.name} (rows: ${p.rows.join(', ') || 'none'}; \`${p.file}\`)`, p.summary)}`).join('');
  fs.writeFileSync(path.join(PACKAGE_ROOT, 'bench/results/latest.md'), md);
  process.stdout.write(md);
}

main().catch((e) => { process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`); process.exit(1); });
