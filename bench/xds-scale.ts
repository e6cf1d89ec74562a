/**
 * `npm run bench:xds`: xDS convergence at scale (issue 17). One control plane (its own process,
 * bench/xds-plane.ts) and --proxies simulated proxies in --workers processes (bench/xds-clients.ts),
 * each a real ADS stream that decodes everything and ACKs like a proxy. Per mode (--modes):
 *   sotw          state of the world; no service declares dependencies: every proxy gets every service
 *   sotw-scoped   state of the world; every service declares --deps dependencies (spec.dependsOn)
 *   delta-scoped  incremental (delta) ADS, scoped the same way
 * it measures: the connect storm (every client connects at once, until the last has ACKed LDS,
 * CDS, EDS and RDS), convergence of --route-changes route changes (one service's virtual host, one
 * at a time) and of endpoint churn (--churn-rate endpoint changes per second for --churn-seconds),
 * from the change to each due client's ACK of it, as p50/p95/p99/max; resource bytes pushed per
 * proxy; control-plane CPU seconds and RSS; worker RSS; proxies left STALE. Writes --out
 * (default bench/results/xds-scale.json). --max-seconds bounds the whole run. --profile takes a
 * CPU profile of the control plane per phase (connect storm, route changes, churn) into
 * bench/results/profiles/ and prints each one's top 10 functions by self time.
 * Loopback only. The machine's clock is shared by every process, so times compare.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../shared/src/paths';
import { CONFIG_LIMITS } from '../shared/src/config/limits';
import { cpuMicros, rssMiB } from './proc';
import { formatSummary, readProfile, summarizeProfile } from './profile-summary';
import { CHURN_MARKER_BASE, MsHistogram } from './xds-bench-protocol';
import { mulberry32 } from '../shared/src/prng';
import { flagMap, numberFlag } from './flags';
import type { ChangePlan, EventKind, FromPlane, FromWorker, Protocol, ToPlane, ToWorker, WorkerReport } from './xds-bench-protocol';

const MODES = { 'sotw': { protocol: 'sotw', scoped: false }, 'sotw-scoped': { protocol: 'sotw', scoped: true }, 'delta-scoped': { protocol: 'delta', scoped: true } } as const;
type Mode = keyof typeof MODES;

export interface XdsBenchOptions {
  proxies: number; services: number; subsets: number; endpoints: number; deps: number;
  modes: Mode[]; workers: number; routeChanges: number; churnRate: number; churnSeconds: number;
  maxSeconds: number; seed: number; out: string;
  /** The control plane's --push-debounce and --push-debounce-max, in ms. */
  pushDebounceMs: number; pushDebounceMaxMs: number;
  /** Profile the control plane per phase and print its top functions. */
  profile: boolean;
}

const PROFILE_DIR = path.join(PACKAGE_ROOT, 'bench/results/profiles');

function options(argv: string[]): XdsBenchOptions {
  const profile = argv.includes('--profile');
  const a = flagMap(argv.filter((x) => x !== '--profile'));
  const known = ['proxies', 'services', 'subsets', 'endpoints', 'deps', 'modes', 'workers', 'route-changes', 'churn-rate', 'churn-seconds', 'max-seconds', 'seed', 'out', 'push-debounce-ms', 'push-debounce-max-ms'];
  for (const k of a.keys()) if (!known.includes(k)) throw new Error(`--${k}: unknown flag (known: ${known.map((x) => `--${x}`).join(', ')})`);
  const int = (k: string, d: number, min: number): number => numberFlag(a, k, d, min, true);
  const modes = (a.get('modes') ?? 'sotw,sotw-scoped,delta-scoped').split(',').filter((m) => m !== '');
  for (const m of modes) if (!(m in MODES)) throw new Error(`--modes: unknown mode ${m} (known: ${Object.keys(MODES).join(', ')})`);
  const o: XdsBenchOptions = {
    proxies: int('proxies', 5000, 1), services: int('services', 1000, 1), subsets: int('subsets', 2, 1), endpoints: int('endpoints', 10, 1),
    deps: int('deps', 20, 1), modes: modes as Mode[], workers: int('workers', 4, 1), routeChanges: int('route-changes', 5, 0),
    churnRate: int('churn-rate', 100, 1), churnSeconds: int('churn-seconds', 10, 0), maxSeconds: int('max-seconds', 900, 10), seed: int('seed', 17, 0),
    out: a.get('out') ?? path.join(PACKAGE_ROOT, 'bench/results/xds-scale.json'),
    pushDebounceMs: int('push-debounce-ms', 0, 0), pushDebounceMaxMs: int('push-debounce-max-ms', 1000, 0),
    profile,
  };
  if (o.pushDebounceMaxMs < o.pushDebounceMs) throw new Error('--push-debounce-max-ms: at least --push-debounce-ms');
  if (o.services > CONFIG_LIMITS.resources) throw new Error(`--services: at most ${CONFIG_LIMITS.resources} (the config's resource limit)`);
  if (o.deps > o.services) throw new Error('--deps: at most --services');
  if (o.churnRate * o.churnSeconds > 65535 - CHURN_MARKER_BASE) throw new Error(`--churn-rate x --churn-seconds: at most ${65535 - CHURN_MARKER_BASE} changes`);
  return o;
}

interface Quantiles { p50Ms: number | null; p95Ms: number | null; p99Ms: number | null; maxMs: number | null; samples: number; unconverged: number }

export interface ModeResult {
  protocol: Protocol; scoped: boolean;
  connectStormSeconds: number | null;
  routeChange: Quantiles;
  churn: Quantiles & { changes: number; seconds: number };
  bytesPerProxy: { mean: number; max: number };
  controlPlane: { cpuSeconds: number; rssMiB: number };
  /** Each worker's RSS at the end, and CPU seconds over the mode (its clients decode and ACK everything they are sent). */
  workers: { rssMiB: number[]; cpuSeconds: number[] };
  proxiesConnected: number;
  proxiesStale: number;
  proxiesNacked: number;
  /** Streams not open at the end. */
  streamsEnded: number;
  /** Streams that ended during the run (each client reconnects, as a proxy would), by gRPC status code. */
  reconnects: number;
  streamErrors: Record<string, number>;
  /** True when --max-seconds cut the mode short (later phases were skipped). */
  truncated: boolean;
  seconds: number;
}

/** A child process spoken to over IPC: send, and wait for the next message that matches. */
class Child<In, Out extends { op: string }> {
  private readonly inbox: Out[] = [];
  private waiters: (() => void)[] = [];
  private exited: string | undefined;
  onMessage: ((m: Out) => void) | undefined;

  constructor(readonly proc: ChildProcess, readonly what: string) {
    proc.on('message', (m: Out) => {
      if (m.op === 'error') { this.exited = `${what}: ${(m as unknown as { message: string }).message}`; }
      else if (this.onMessage !== undefined && m.op === 'event') this.onMessage(m);
      else this.inbox.push(m);
      this.wake();
    });
    proc.on('exit', (code) => { this.exited ??= `${what} exited (${code})`; this.wake(); });
  }

  send(m: In): void { this.proc.send(m as never); }

  async next<K extends Out['op']>(op: K, deadline: number): Promise<Extract<Out, { op: K }> | undefined> {
    for (;;) {
      const i = this.inbox.findIndex((m) => m.op === op);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Extract<Out, { op: K }>;
      if (this.exited !== undefined) throw new Error(this.exited);
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, Math.min(left, 1000)); this.waiters.push(() => { clearTimeout(t); resolve(); }); });
    }
  }

  stop(): void { if (this.proc.exitCode === null) this.proc.kill('SIGTERM'); }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
}

function pick(rand: () => number, n: number, k: number, not?: number): number[] {
  const out = new Set<number>();
  while (out.size < k) { const x = Math.floor(rand() * n); if (x !== not || n === 1) out.add(x); }
  return [...out].sort((a, b) => a - b);
}

function quantiles(h: MsHistogram, unconverged: number): Quantiles {
  return { p50Ms: h.quantile(0.5), p95Ms: h.quantile(0.95), p99Ms: h.quantile(0.99), maxMs: h.quantile(1), samples: h.n, unconverged };
}

async function runMode(o: XdsBenchOptions, mode: Mode, deadline: number): Promise<ModeResult> {
  const started = Date.now();
  const { protocol, scoped } = MODES[mode];
  const rand = mulberry32(o.seed);
  const deps = scoped ? Array.from({ length: o.services }, (_, s) => pick(rand, o.services, Math.min(o.deps, o.services - 1) || 1, s)) : null;
  // Route changes hit services someone depends on; churn hits random services.
  const plan: ChangePlan = {
    route: Array.from({ length: o.routeChanges }, () => (deps === null ? Math.floor(rand() * o.services) : deps[Math.floor(rand() * o.services)]![0]!)),
    churn: Array.from({ length: o.churnRate * o.churnSeconds }, () => Math.floor(rand() * o.services)),
  };
  const plane = new Child<ToPlane, FromPlane>(fork(path.join(PACKAGE_ROOT, 'dist/bench/xds-plane.js'), [String(o.pushDebounceMs), String(o.pushDebounceMaxMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'control plane');
  const workers: Child<ToWorker | { op: 'init'; init: unknown }, FromWorker>[] = [];
  let truncated = false;
  try {
    const ready = await plane.next('ready', deadline);
    if (ready === undefined) throw new Error('the control plane did not start before --max-seconds');
    const cpu0 = cpuMicros(plane.proc.pid!);
    plane.send({ op: 'setup', services: o.services, subsets: o.subsets, endpoints: o.endpoints, deps });
    if (await plane.next('setupDone', deadline) === undefined) throw new Error('config setup did not finish before --max-seconds');
    const per = Math.ceil(o.proxies / o.workers);
    for (let w = 0; w * per < o.proxies; w++) {
      const c = new Child<ToWorker | { op: 'init'; init: unknown }, FromWorker>(fork(path.join(PACKAGE_ROOT, 'dist/bench/xds-clients.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), `worker ${w}`);
      c.send({ op: 'init', init: { port: ready.port, protocol, first: w * per, count: Math.min(per, o.proxies - w * per), services: o.services, deps, plan } });
      workers.push(c);
    }
    for (const w of workers) if (await w.next('ready', deadline) === undefined) throw new Error('workers did not start before --max-seconds');
    const workerCpu0 = workers.map((w) => cpuMicros(w.proc.pid!));
    // Changes made by the control plane are told to every worker as they happen.
    const told: Record<EventKind, number> = { route: 0, churn: 0 };
    plane.onMessage = (m) => { if (m.op === 'event') { told[m.kind] = m.k; for (const w of workers) w.send(m); } };

    /** --profile: ends the control plane's profile of the last phase, prints it, and starts one of `phase`. */
    let profiled: string | null = null;
    const profilePhase = async (phase: string | null): Promise<void> => {
      if (!o.profile) return;
      const file = phase === null ? null : path.join(PROFILE_DIR, `xds-plane.${mode}.${phase}.cpuprofile`);
      if (file !== null) fs.mkdirSync(PROFILE_DIR, { recursive: true });
      plane.send({ op: 'profile', file });
      if (await plane.next('profiled', Math.max(deadline, Date.now() + 30_000)) === undefined) throw new Error('the control plane did not write its profile');
      if (profiled !== null) process.stderr.write(`${formatSummary(`control plane, ${path.basename(profiled)}`, summarizeProfile(readProfile(profiled), { root: PACKAGE_ROOT }))}\n`);
      profiled = file;
    };
    await profilePhase('connect');
    const t0 = Date.now();
    for (const w of workers) w.send({ op: 'connect' });
    let storm: number | null = 0;
    for (const w of workers) {
      const s = await w.next('synced', deadline);
      if (s === undefined) { storm = null; truncated = true; break; }
      storm = Math.max(storm!, (s.at - t0) / 1000);
    }
    await profilePhase('route');
    process.stderr.write(`  connected: ${storm === null ? 'not every client synced before --max-seconds' : `${storm}s`}\n`);

    /** Waits until the workers were told of change `k` of `kind`, then until every client due it has it (or `ms`). */
    const settle = async (kind: EventKind, k: number, ms: number): Promise<void> => {
      const until = Math.min(deadline, Date.now() + ms);
      while (told[kind] < k) {
        if (Date.now() >= until) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      for (;;) {
        let pending = 0;
        for (const w of workers) { w.send({ op: 'progress' }); const p = await w.next('progress', until + 1000); pending += p?.pending[kind] ?? 1; }
        if (pending === 0 || Date.now() >= until) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    for (let k = 1; k <= o.routeChanges && !truncated; k++) {
      const svc = plan.route[k - 1]!;
      plane.send({ op: 'route', k, svc, deps: deps === null ? null : deps[svc]! });
      await settle('route', k, 60_000);
      if (Date.now() >= deadline) truncated = true;
    }
    process.stderr.write(`  route changes: done${truncated ? ' (cut by --max-seconds)' : ''}\n`);
    if (plan.churn.length > 0 && !truncated) {
      await profilePhase('churn');
      plane.send({ op: 'churn', plan: plan.churn, rate: o.churnRate });
      if (await plane.next('churnDone', deadline) === undefined) truncated = true;
      else await settle('churn', plan.churn.length, 60_000);
    }

    await profilePhase(null);
    // A client whose stream ended (a keepalive the busy machine missed) reconnects within 2s: wait for it, bounded.
    const quiet = Math.min(Math.max(deadline, Date.now() + 5_000), Date.now() + 30_000);
    for (;;) {
      let open = 0;
      for (const w of workers) { w.send({ op: 'progress' }); open += (await w.next('progress', quiet + 1000))?.open ?? 0; }
      if (open === o.proxies || Date.now() >= quiet) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // "Left STALE" is after the last push settled: the churn's last deregistration is a push of
    // its own, which no client waits for (it carries no new marker), so read until none is STALE,
    // for at most 30 s.
    const settled = Date.now() + 30_000;
    let stats: { proxies: number; stale: number; nacked: number } | undefined;
    for (;;) {
      plane.send({ op: 'stats' });
      stats = await plane.next('stats', Math.max(deadline, Date.now() + 10_000));
      if (stats === undefined || stats.stale === 0 || Date.now() >= settled) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const cpuSeconds = (cpuMicros(plane.proc.pid!) - cpu0) / 1e6;
    const cpRss = rssMiB(plane.proc.pid!);
    const route = new MsHistogram();
    const churn = new MsHistogram();
    const bytes: number[] = [];
    const workerRss: number[] = [];
    const workerCpu: number[] = [];
    const unconverged = { route: 0, churn: 0 };
    let ended = 0;
    let reconnects = 0;
    const streamErrors: Record<string, number> = {};
    for (const w of workers) {
      w.send({ op: 'report' });
      const r: WorkerReport | undefined = await w.next('report', Math.max(deadline, Date.now() + 30_000));
      if (r === undefined) throw new Error(`${w.what} did not report`);
      route.merge(r.route);
      churn.merge(r.churn);
      bytes.push(...r.bytes);
      workerRss.push(Math.round(r.rssMiB));
      workerCpu.push(Math.round((cpuMicros(w.proc.pid!) - workerCpu0[workers.indexOf(w)]!) / 1e4) / 100);
      unconverged.route += r.unconverged.route;
      unconverged.churn += r.unconverged.churn;
      ended += r.ended;
      reconnects += r.reconnects;
      for (const [code, n] of Object.entries(r.streamErrors)) streamErrors[code] = (streamErrors[code] ?? 0) + n;
    }
    return {
      protocol, scoped, connectStormSeconds: storm,
      routeChange: quantiles(route, unconverged.route),
      churn: { ...quantiles(churn, unconverged.churn), changes: plan.churn.length, seconds: o.churnSeconds },
      bytesPerProxy: { mean: Math.round(bytes.reduce((s, b) => s + b, 0) / Math.max(1, bytes.length)), max: Math.max(0, ...bytes) },
      controlPlane: { cpuSeconds: Math.round(cpuSeconds * 100) / 100, rssMiB: Math.round(cpRss) },
      workers: { rssMiB: workerRss, cpuSeconds: workerCpu },
      proxiesConnected: stats?.proxies ?? 0, proxiesStale: stats?.stale ?? -1, proxiesNacked: stats?.nacked ?? -1,
      streamsEnded: ended, reconnects, streamErrors, truncated, seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    for (const w of workers) w.stop();
    plane.stop();
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const deadline = Date.now() + o.maxSeconds * 1000;
  const result = {
    proxies: o.proxies, services: o.services, subsets: o.subsets, endpointsPerService: o.endpoints, depsPerProxy: o.deps,
    workers: o.workers, routeChanges: o.routeChanges, churn: { rate: o.churnRate, seconds: o.churnSeconds }, seed: o.seed,
    startedAt: new Date().toISOString(), maxSeconds: o.maxSeconds, pushDebounceMs: o.pushDebounceMs, pushDebounceMaxMs: o.pushDebounceMaxMs,
    modes: {} as Record<string, ModeResult>,
  };
  for (const m of o.modes) {
    if (Date.now() >= deadline) break;
    process.stderr.write(`bench:xds ${m}: ${o.proxies} proxies, ${o.services} services ...\n`);
    result.modes[m] = await runMode(o, m, deadline);
    const r = result.modes[m]!;
    process.stderr.write(`  connect storm ${r.connectStormSeconds}s (${r.reconnects} reconnects); route change p50/p99 ${r.routeChange.p50Ms}/${r.routeChange.p99Ms} ms; churn p50/p99 ${r.churn.p50Ms}/${r.churn.p99Ms} ms; ${r.bytesPerProxy.mean} B/proxy; control plane ${r.controlPlane.cpuSeconds} CPU s, ${r.controlPlane.rssMiB} MiB; workers ${r.workers.cpuSeconds.join('/')} CPU s; stale ${r.proxiesStale}\n`);
  }
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`wrote ${o.out}\n`);
}

void main().then(() => process.exit(0), (e: unknown) => { console.error((e as Error).message); process.exit(1); });
