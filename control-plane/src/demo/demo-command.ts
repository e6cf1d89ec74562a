import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GreeterBackend, GreeterClient } from '../../../shared/src/sample-app/greeter';
import type { SplitCount } from '../../../shared/src/sample-app/load';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { ApiClient } from '../cli/api-client';
import { intFlag } from '../cli/args';
import type { Command } from '../cli/config-commands';
import { table } from '../cli/format';
import type { ProxyStatus } from '../discovery/proxy-status';
import { startControlPlaneProcess } from './control-plane-process';
import type { ControlPlaneProcess } from './control-plane-process';
import { demoConfig } from './demo-config';

const CALLS_PER_TICK = 150;

export const demo: Command = {
  spec: {
    name: 'demo', usage: 'demo [flags]',
    summary: 'Run a small mesh on this machine: the control plane, four Greeter backends (v1 x2, v2 x2) and four proxyless\n' +
      'gRPC clients (xds:///greeter). Prints the observed v1/v2 split every second and shifts the canary weights half-way.',
    flags: [
      { name: 'duration', type: 'string', value: 'SECONDS', default: '30', help: 'run this long, then exit 0; 0 runs until Ctrl-C (shifting weights every 15s)' },
    ],
  },
  async run(p, out) {
    const duration = intFlag(p, 'duration', 0, 86_400)!;
    // gRPC and the protos load only when the demo runs, keeping other commands quick to start.
    const { startGreeter } = await import('../../../shared/src/sample-app/greeter');
    const { emptyCount, sendAndCount, shares } = await import('../../../shared/src/sample-app/load');
    const { xdsGreeterClient } = await import('../../../shared/src/sample-app/xds-client');
    const stop = new AbortController();
    const onSignal = () => { out('\nstopping...'); stop.abort(); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-demo-'));
    const backends: GreeterBackend[] = [];
    const clients: GreeterClient[] = [];
    const heartbeats: NodeJS.Timeout[] = [];
    let cp: ControlPlaneProcess | undefined;
    try {
      out('starting the control plane (skein control-plane) ...');
      cp = await startControlPlaneProcess({ dataDir, logLevel: 'warn' });
      const api = new ApiClient(cp.api);
      out(`  xDS on ${cp.xds}, SRE API on ${cp.api}`);
      for (const [backend, version] of [['v1-a', 'v1'], ['v1-b', 'v1'], ['v2-a', 'v2'], ['v2-static', 'v2']] as const) {
        backends.push(await startGreeter({ backend, version }));
      }
      const staticV2 = backends[3]!;
      await api.call('POST', '/v1/config', { text: JSON.stringify(demoConfig(staticV2.port, { v1: 90, v2: 10 })), type: 'application/json' }, { 'x-skein-author': 'demo', 'x-skein-message': 'demo mesh' });
      for (const b of backends.slice(0, 3)) {
        const lease = await api.call<{ id: string }>('POST', '/v1/endpoints', { text: JSON.stringify({ service: 'greeter', address: b.address, port: b.port, labels: { version: b.version }, ttl: '6s', node: b.backend }), type: 'application/json' });
        heartbeats.push(setInterval(() => { api.call('PUT', `/v1/endpoints/${lease.id}`).catch(() => undefined); }, 2000));
      }
      out(`  backends: ${backends.map((b) => `${b.backend}@${b.address}:${b.port}`).join(', ')} (v2-static is a static endpoint in config)`);
      for (let i = 1; i <= 4; i++) clients.push(xdsGreeterClient('greeter', cp.xds, `demo-client-${i}`));
      out('  4 proxyless gRPC clients dialing xds:///greeter\n');
      out(`config: GRPCRoute/greeter splits v1=90 v2=10. To shift it yourself while it runs:\n  SKEIN_API=${cp.api} node ${path.relative(process.cwd(), path.resolve(__dirname, '../cli/main.js'))} canary greeter v1=50 v2=50\n`);

      const started = Date.now();
      const phases = [{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v1: 10, v2: 90 }];
      const shiftEveryMs = duration === 0 ? 15_000 : (duration * 1000) / 2;
      let phase = 0;
      let phaseCount = emptyCount();
      const summary: { weights: string; count: SplitCount }[] = [{ weights: 'v1=90 v2=10', count: phaseCount }];
      out(`${'TIME'.padEnd(6)}${'WEIGHTS'.padEnd(13)}${'CALLS/S'.padEnd(9)}${'ERRORS'.padEnd(8)}${'v1 %'.padEnd(6)}v2 %`);
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
        const tick = emptyCount();
        const t0 = Date.now();
        await sendAndCount(clients, CALLS_PER_TICK, 8, tick);
        for (const [v, n] of tick.byVersion) phaseCount.byVersion.set(v, (phaseCount.byVersion.get(v) ?? 0) + n);
        phaseCount.total += tick.total; phaseCount.errors += tick.errors;
        const s = shares(tick);
        const w = phases[phase % phases.length]!;
        out(`${`${((Date.now() - started) / 1000).toFixed(0)}s`.padEnd(6)}${`v1=${w.v1} v2=${w.v2}`.padEnd(13)}${String(Math.round(tick.total / Math.max(0.001, (Date.now() - t0) / 1000))).padEnd(9)}${String(tick.errors).padEnd(8)}${(s['v1'] ?? 0).toFixed(1).padEnd(6)}${(s['v2'] ?? 0).toFixed(1)}${tick.lastError ? `   last error: ${tick.lastError}` : ''}`);
        await sleep(Math.max(0, 1000 - (Date.now() - t0)), stop.signal);
      }
      out('\nobserved split per phase:');
      out(table(['WEIGHTS', 'CALLS', 'ERRORS', 'v1 %', 'v2 %'], summary.map(({ weights, count }) => {
        const s = shares(count);
        return [weights, String(count.total), String(count.errors), (s['v1'] ?? 0).toFixed(1), (s['v2'] ?? 0).toFixed(1)];
      })));
      const status = await api.call<{ revision: number; proxies: ProxyStatus[] }>('GET', '/v1/proxies');
      out(`\nproxy status (config revision ${status.revision}):`);
      out(table(['NODE', 'STATE', 'USER AGENT'], status.proxies.map((x) => [x.nodeId, x.state, x.userAgent])));
      const failed = summary.reduce((n, s) => n + s.count.errors, 0);
      if (failed > 0) throw new MeshError(ErrorCodes.INTERNAL, `${failed} calls failed during the demo`);
      return 0;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      for (const h of heartbeats) clearInterval(h);
      for (const c of clients) c.close();
      await Promise.all(backends.map((b) => b.close()));
      await cp?.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
