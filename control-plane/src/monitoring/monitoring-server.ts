/**
 * The control plane's monitoring listener (--monitoring-listen, default 127.0.0.1:15014): plain
 * HTTP, read-only, for Prometheus. GET /metrics answers the control plane's MetricsExposition in
 * the Prometheus text format, or OpenMetrics when the Accept header asks for it; GET / lists it.
 * Nothing else is served: no config, no credential.
 */
import * as http from 'node:http';
import type { MetricsExposition } from '../../../shared/src/metrics/exposition';
import { closeHttp, listenHttp, parseListen } from '../../../shared/src/listen-address';

export class MonitoringServer {
  private readonly server: http.Server;

  constructor(private readonly metrics: MetricsExposition) {
    this.server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => { void this.handle(req, res); });
  }

  /** Listens on host:port (port 0: a free port); resolves to the bound port. */
  listen(listen: string): Promise<number> {
    const { host, port } = parseListen(listen, '--monitoring-listen');
    return listenHttp(this.server, host, port, '--monitoring-listen');
  }

  close(): Promise<void> { return closeHttp(this.server); }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    let status = 200;
    let type = 'text/plain; charset=utf-8';
    let body: string;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      status = 405;
      res.setHeader('allow', 'GET, HEAD');
      body = `${req.method} is not allowed (allowed: GET, HEAD)\n`;
    } else if (path === '/metrics') {
      try {
        const r = await this.metrics.render(req.headers.accept);
        type = r.contentType;
        body = r.body;
      } catch (e) {
        status = 500;
        body = `cannot collect metrics: ${(e as Error).message}\n`;
      }
    } else if (path === '/') {
      body = 'GET /metrics\n';
    } else {
      status = 404;
      body = `no route ${path}; GET /metrics\n`;
    }
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
