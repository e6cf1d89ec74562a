/**
 * A real Prometheus server (the Debian `prometheus` package, installed by
 * scripts/ensure-debian-tools.sh when missing) scraping the given targets every second, on
 * loopback (OpenMetrics, exemplar storage on), with its data in a temp dir; query() runs PromQL
 * through its HTTP API, exemplars() reads the exemplars it stored.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { eventually } from './ads-client';
import { ensureDebianTools } from './debian-tools';
import { closedPort } from './ports';

/** Installs the Debian package when missing (apt can take a minute or more: give the caller's hook a long timeout). */
export function ensurePrometheus(): void {
  ensureDebianTools('prometheus');
}

export interface PromSample { metric: Record<string, string>; value: [number, string] }

export class Prometheus {
  private constructor(private readonly proc: ChildProcess, readonly base: string, private readonly dir: string, private readonly logs: () => string) {}

  /** `jobs`: job name -> host:port targets (scraped at /metrics every 1s). */
  static async start(jobs: Record<string, string[]>): Promise<Prometheus> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-prometheus-'));
    const config = ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:',
      ...Object.entries(jobs).flatMap(([job, targets]) => [`  - job_name: ${JSON.stringify(job)}`, '    metrics_path: /metrics', '    static_configs:', `      - targets: ${JSON.stringify(targets)}`])].join('\n');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), `${config}\n`);
    const port = await closedPort();
    const proc = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--enable-feature=exemplar-storage', '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
    const p = new Prometheus(proc, `http://127.0.0.1:${port}`, dir, () => stderr);
    try {
      await eventually(async () => (proc.exitCode === null && (await fetch(`${p.base}/-/ready`)).status === 200 ? true : undefined), 'prometheus to be ready', 30_000);
    } catch (e) {
      await p.stop();
      throw new Error(`${(e as Error).message}\n${stderr}`);
    }
    return p;
  }

  /** An instant PromQL query; its vector result. */
  async query(promql: string): Promise<PromSample[]> {
    const r = await fetch(`${this.base}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error ?? r.status}\n${this.logs()}`);
    return body.data!.result;
  }

  /** Exemplars of a series selector over the last `seconds`: their label sets. */
  async exemplars(selector: string, seconds = 600): Promise<{ seriesLabels: Record<string, string>; exemplars: { labels: Record<string, string>; value: string }[] }[]> {
    const now = Date.now() / 1000;
    const r = await fetch(`${this.base}/api/v1/query_exemplars?query=${encodeURIComponent(selector)}&start=${now - seconds}&end=${now + 60}`);
    const body = (await r.json()) as { status: string; error?: string; data?: { seriesLabels: Record<string, string>; exemplars: { labels: Record<string, string>; value: string }[] }[] };
    if (body.status !== 'success') throw new Error(`exemplars ${selector}: ${body.error ?? r.status}\n${this.logs()}`);
    return body.data!;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.kill('SIGTERM');
      const kill = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
