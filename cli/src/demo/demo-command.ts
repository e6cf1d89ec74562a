import type { CheckReport } from '../../../control-plane/src/check/checks';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GreeterBackend, GreeterClient } from '../../../shared/src/sample-app/greeter';
import type { SplitCount } from '../../../shared/src/sample-app/load';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { ApiClient } from '../../../control-plane/src/cli/api-client';
import { intFlag, optStr } from '../../../shared/src/cli/args';
import type { Command } from '../../../shared/src/cli/command';
import { table } from '../../../control-plane/src/cli/format';
import type { ProxyStatus } from '../../../control-plane/src/discovery/proxy-status';
import { startControlPlaneProcess } from '../../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../../harness/src/control-plane-process';
import { startSidecarProcess } from '../../../harness/src/sidecar-process';
import type { SidecarProcess } from '../../../harness/src/sidecar-process';
import { demoConfig } from './demo-config';
import { sleep } from './sleep';

/** Calls the client app makes per second (a moderate, steady load). */
const CALLS_PER_TICK = 200;

interface WindowSummary { count: number; rps: number; successRate: number | null; p50: number; p95: number; p99: number }

export const demo: Command = {
  spec: {
    name: 'demo', usage: 'demo [flags]',
    summary: 'Run a small mesh on this machine: the control plane; the Greeter service in two versions (v1 x2, v2 x1),\n' +
      'each instance behind its own sidecar; and a client app whose sidecar spreads its calls (one connection) over the\n' +
      'versions by the canary weights. Prints a live per-route, per-version table and shifts the weights half-way.',
    flags: [
      { name: 'duration', type: 'string', value: 'SECONDS', default: '30', help: 'run this long, then exit 0; 0 runs until Ctrl-C (shifting weights every 15s)' },
      { name: 'trace-endpoint', type: 'string', value: 'URL', help: 'every sidecar exports spans to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318/v1/traces (the mesh samples 1%: the Telemetry default) (default: none, no spans)' },
    ],
  },
  async run(p, out) {
    const duration = intFlag(p, 'duration', 0, 86_400)!;
    const traceEndpoint = optStr(p, 'trace-endpoint');
    const trace = traceEndpoint === undefined ? [] : ['--trace-endpoint', traceEndpoint];
    // gRPC and the protos load only when the demo runs, keeping other commands quick to start.
    const grpc = await import('@grpc/grpc-js');
    const { startGreeter, greeterClient } = await import('../../../shared/src/sample-app/greeter');
    const { emptyCount, sendAndCount, shares } = await import('../../../shared/src/sample-app/load');
    const stop = new AbortController();
    const onSignal = () => { out('\nstopping (draining the sidecars)...'); stop.abort(); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-demo-'));
    const backends: GreeterBackend[] = [];
    const sidecars: SidecarProcess[] = [];
    let client: GreeterClient | undefined;
    let cp: ControlPlaneProcess | undefined;
    try {
      out('starting the control plane (skein control-plane) ...');
      cp = await startControlPlaneProcess({ dataDir, logLevel: 'warn' });
      const api = new ApiClient(cp.api, 30_000, cp.adminToken, fs.readFileSync(cp.trustBundleFile, 'utf8'));
      out(`  xDS on ${cp.xds}, SRE API on ${cp.api}`);
      for (const [backend, version] of [['v1-a', 'v1'], ['v1-b', 'v1'], ['v2-a', 'v2']] as const) backends.push(await startGreeter({ backend, version }));
      // No static endpoints: every instance registers itself through its sidecar.
      await api.call('POST', '/v1/config', { text: JSON.stringify(demoConfig(null, { v1: 90, v2: 10 })), type: 'application/json' }, { 'x-skein-author': 'demo', 'x-skein-message': 'demo mesh' });
      out('starting a sidecar in front of each instance (skein sidecar --service greeter ...) ...');
      for (const b of backends) {
        sidecars.push(await startSidecarProcess({ xds: cp.xds, api: cp.api, nodeId: `greeter-${b.backend}`, service: 'greeter', version: b.version, app: `127.0.0.1:${b.port}`, extraArgs: trace }));
      }
      const clientSidecar = await startSidecarProcess({ xds: cp.xds, api: cp.api, nodeId: 'client-app', serviceAccount: 'frontend', extraArgs: trace });
      if (traceEndpoint !== undefined) out(`  every sidecar sends spans to ${traceEndpoint} (1% of calls: Telemetry/mesh; apps forward traceparent, tracestate, x-request-id)`);
      sidecars.push(clientSidecar);
      for (const s of sidecars) out(`  ${s.inbound ? `inbound ${s.inbound} -> app` : 'client sidecar'}, outbound ${s.outbound}, admin http://${s.admin}`);
      await waitReady(clientSidecar.admin);
      client = greeterClient(clientSidecar.outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter:50051' });
      out(`\nthe client app sends ~${CALLS_PER_TICK} calls/s to its sidecar on ONE connection; GRPCRoute/greeter splits v1=90 v2=10.`);
      out(`shift it yourself while it runs:\n  SKEIN_API=${cp.api} SKEIN_DATA_DIR=${dataDir} npm run skein -- canary greeter v1=50 v2=50\n`);

      const started = Date.now();
      const phases = [{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v1: 10, v2: 90 }];
      const shiftEveryMs = duration === 0 ? 15_000 : (duration * 1000) / 2;
      let phase = 0;
      let phaseCount = emptyCount();
      const summary: { weights: string; count: SplitCount }[] = [{ weights: 'v1=90 v2=10', count: phaseCount }];
      while (!stop.signal.aborted && (duration === 0 || Date.now() - started < duration * 1000)) {
        const elapsed = Date.now() - started;
        if (Math.floor(elapsed / shiftEveryMs) > phase && (duration === 0 || phase === 0)) {
          phase++;
          const w = phases[phase % phases.length]!;
          await api.call('POST', '/v1/canary', { text: JSON.stringify({ route: 'greeter', weights: w }), type: 'application/json' }, { 'x-skein-author': 'demo' });
          out(`\n>>> shifted weights through the API: skein canary greeter v1=${w.v1} v2=${w.v2}\n`);
          phaseCount = emptyCount();
          summary.push({ weights: `v1=${w.v1} v2=${w.v2}`, count: phaseCount });
        }
        const t0 = Date.now();
        const tick = await sendAndCount([client], CALLS_PER_TICK, 4);
        for (const [v, n] of tick.byVersion) phaseCount.byVersion.set(v, (phaseCount.byVersion.get(v) ?? 0) + n);
        phaseCount.total += tick.total; phaseCount.errors += tick.errors;
        if (tick.lastError !== undefined) phaseCount.lastError = tick.lastError;
        const w = phases[phase % phases.length]!;
        out(await liveTable(clientSidecar.admin, `${((Date.now() - started) / 1000).toFixed(0)}s  weights v1=${w.v1} v2=${w.v2}`));
        await sleep(Math.max(0, 1000 - (Date.now() - t0)), stop.signal);
      }
      out('\nobserved split per phase (counted by the client app):');
      out(table(['WEIGHTS', 'CALLS', 'ERRORS', 'v1 %', 'v2 %'], summary.map(({ weights, count }) => {
        const s = shares(count);
        return [weights, String(count.total), String(count.errors), (s['v1'] ?? 0).toFixed(1), (s['v2'] ?? 0).toFixed(1)];
      })));
      const status = await api.call<{ revision: number; proxies: ProxyStatus[] }>('GET', '/v1/proxies');
      out(`\nproxy status (config revision ${status.revision}):`);
      out(table(['NODE', 'STATE', 'USER AGENT'], status.proxies.map((x) => [x.nodeId, x.state, x.userAgent])));
      out('\nidentities (mTLS between the sidecars; each sidecar\'s /identity):');
      out(table(['NODE', 'SPIFFE ID', 'CERT EXPIRES', 'INBOUND MODE'], await Promise.all(sidecars.map(async (sc) => {
        const id = await (await fetch(`http://${sc.admin}/identity`)).json() as { spiffeId?: string; notAfter?: string; inboundMode?: string | null };
        return [sc.nodeId, id.spiffeId ?? 'none', id.notAfter ?? '-', id.inboundMode ?? '- (no inbound)'];
      }))));
      const verdict = await api.call<CheckReport>('GET', '/v1/check');
      out(`\nskein check: ${verdict.errors} errors, ${verdict.warnings} warnings`);
      for (const f of verdict.findings) out(`  ${f.severity}  ${f.check}  ${f.what}`);
      const failed = summary.reduce((n, s) => n + s.count.errors, 0);
      if (failed > 0) throw new MeshError(ErrorCodes.INTERNAL, `${failed} calls failed during the demo (last: ${summary.find((s) => s.count.lastError)?.count.lastError})`);
      return 0;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      client?.close();
      await Promise.all(sidecars.map((s) => s.stop()));
      await Promise.all(backends.map((b) => b.close()));
      await cp?.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

/** The client sidecar's per-route, per-version windows (last 10s), as a table. */
async function liveTable(admin: string, title: string): Promise<string> {
  const res = await fetch(`http://${admin}/stats?filter=window`);
  const { windows } = (await res.json()) as { windows: Record<string, WindowSummary> };
  const rows: string[][] = [];
  for (const [name, w] of Object.entries(windows)) {
    const m = /^route\.(.+)\.window\{backend=(.+)\}$/.exec(name);
    if (m === null || w.count === 0) continue;
    rows.push([m[1]!, m[2]!, w.rps.toFixed(1), w.successRate === null ? '-' : `${(w.successRate * 100).toFixed(1)}%`, w.p50.toFixed(2), w.p95.toFixed(2), w.p99.toFixed(2)]);
  }
  rows.sort((a, b) => (a[0]! + a[1]! < b[0]! + b[1]! ? -1 : 1));
  return `\n${title}\n${table(['ROUTE', 'BACKEND', 'RPS', 'SUCCESS', 'P50 ms', 'P95 ms', 'P99 ms'], rows)}`;
}

async function waitReady(admin: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try { if ((await fetch(`http://${admin}/ready`)).ok) return; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new MeshError(ErrorCodes.INTERNAL, `the client sidecar (admin ${admin}) did not become ready`);
}
