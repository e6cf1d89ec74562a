import * as http from 'node:http';
import { asMeshError, ErrorCodes, httpStatusOf, MeshError } from '../../../shared/src/errors';
import type { Stats } from '../stats/stats';
import type { MetricsExposition } from '../../../shared/src/metrics/exposition';
import { closeHttp, listenHttp } from '../../../shared/src/listen-address';

/** Readiness as the proxy sees it: ok once it has the config it needs to serve. */
export interface Readiness { ok: boolean; reason?: string }

/**
 * What the admin server shows. Providers are plain functions so the server knows nothing of
 * the proxy's internals; each is called per request and may return a promise.
 */
export interface AdminProviders {
  ready: () => Readiness | Promise<Readiness>;
  /** xDS resources with their versions, as the proxy holds them. */
  configDump: () => unknown;
  /** Clusters -> hosts with health and active requests. */
  clusters: () => unknown;
  stats: Stats;
  /** GET /metrics (Prometheus text, or OpenMetrics by Accept); without it /metrics is 404. */
  metrics?: MetricsExposition;
  /** Counts of what the proxy holds (clusters, stat scopes), shown by /memory with the process's memory. */
  memory?: () => Record<string, unknown>;
  /** Brings sampled stats (gauges read from elsewhere) up to date before /stats answers. */
  beforeStats?: () => void;
  /** The workload identity: SPIFFE ID, certificate serial and validity, where the roots came from, the inbound mode. Never the key. */
  identity?: () => unknown;
}

type Handler = (url: URL, req: http.IncomingMessage) => Promise<Reply>;
/** `contentType`: the body is a string sent as is with this type. */
interface Reply { status: number; body: unknown; text?: boolean; contentType?: string }

/**
 * The sidecar's local admin API (read-only, GET/HEAD, JSON):
 *   GET /            the routes below
 *   GET /healthz     200 {ok: true} while the process serves HTTP (liveness)
 *   GET /ready       200 {ready: true}, or 503 {ready: false, reason} (readiness)
 *   GET /config_dump the configDump provider's answer
 *   GET /clusters    the clusters provider's answer
 *   GET /stats       Stats.snapshot(); ?filter=SUBSTRING keeps stats whose key contains it;
 *                    ?format=text gives `name: value` lines (text/plain)
 *   GET /metrics     Prometheus text format 0.0.4, or OpenMetrics 1.0 (with exemplars) when the
 *                    Accept header asks for application/openmetrics-text (stats/prometheus.ts)
 *   GET /memory      process.memoryUsage() in bytes and the memory provider's counts;
 *                    ?gc=true runs a full garbage collection first, when the process runs
 *                    with `node --expose-gc` (else 422 naming query.gc)
 * Errors are {error: {code, message}} with the status for the code: 404 unknown path, 405
 * other methods (with `allow`), 422 bad query, 500 a provider threw.
 * It binds 127.0.0.1 by default: it shows config and is meant for the local operator only.
 */
export class AdminServer {
  private readonly server: http.Server;
  private readonly routes: ReadonlyMap<string, Handler>;

  constructor(private readonly providers: AdminProviders) {
    this.routes = new Map<string, Handler>([
      ['/', async () => ({ status: 200, body: { routes: [...this.routes.keys()] } })],
      ['/healthz', async () => ({ status: 200, body: { ok: true } })],
      ['/ready', () => this.ready()],
      ['/config_dump', async () => ({ status: 200, body: await this.providers.configDump() })],
      ['/clusters', async () => ({ status: 200, body: await this.providers.clusters() })],
      ['/stats', async (url) => this.stats(url)],
      ['/memory', async (url) => this.memory(url)],
      ...(providers.metrics === undefined ? [] : [['/metrics', async (_url: URL, req: http.IncomingMessage) => {
        this.providers.beforeStats?.();
        const r = await providers.metrics!.render(req.headers.accept);
        return { status: 200, body: r.body, contentType: r.contentType };
      }] as [string, Handler]]),
      ['/identity', async () => ({ status: 200, body: this.providers.identity?.() ?? { identity: null, reason: 'no workload identity (--xds-insecure)' } })],
    ]);
    this.server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => { void this.dispatch(req, res); });
  }

  /** Listens on host:port (port 0: any free port); resolves to the bound port. */
  listen(host = '127.0.0.1', port = 0): Promise<number> { return listenHttp(this.server, host, port, 'admin'); }

  close(): Promise<void> { return closeHttp(this.server); }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let status: number;
    let text: string;
    let type = JSON_TYPE;
    try {
      const url = new URL(req.url ?? '/', 'http://admin.local');
      const handler = this.routes.get(url.pathname);
      if (handler === undefined) throw new MeshError(ErrorCodes.NOT_FOUND, `no admin route ${url.pathname}; GET / lists them`);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        throw new MeshError(ErrorCodes.METHOD_NOT_ALLOWED, `${req.method} is not allowed on ${url.pathname} (allowed: GET, HEAD)`);
      }
      const reply = await handler(url, req);
      status = reply.status;
      if (reply.contentType !== undefined) {
        text = String(reply.body);
        type = reply.contentType;
      } else if (reply.text === true) {
        text = String(reply.body);
        type = TEXT_TYPE;
      } else {
        text = json(reply.body);
      }
    } catch (e) {
      const err = asMeshError(e);
      status = httpStatusOf(err);
      text = json({ error: err.toJSON() });
    }
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  }

  private async ready(): Promise<Reply> {
    let r: Readiness;
    try {
      r = await this.providers.ready();
    } catch (e) {
      r = { ok: false, reason: `readiness check failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    return r.ok
      ? { status: 200, body: { ready: true } }
      : { status: 503, body: { ready: false, reason: r.reason ?? 'not ready' } };
  }

  private memory(url: URL): Reply {
    const gc = url.searchParams.get('gc') ?? 'false';
    if (gc !== 'true' && gc !== 'false') {
      throw new MeshError(ErrorCodes.VALIDATION, `query parameter gc: must be true or false, got "${gc}"`, { details: [{ resource: '', path: 'query.gc', message: 'must be true or false' }] });
    }
    const collect = exposedGc();
    if (gc === 'true') {
      if (collect === undefined) {
        throw new MeshError(ErrorCodes.VALIDATION, 'query parameter gc: this process runs without node --expose-gc, so it cannot collect on demand', { details: [{ resource: '', path: 'query.gc', message: 'needs node --expose-gc' }] });
      }
      collect();
    }
    const m = process.memoryUsage();
    return {
      status: 200,
      body: {
        rssBytes: m.rss, heapTotalBytes: m.heapTotal, heapUsedBytes: m.heapUsed, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers,
        gcExposed: collect !== undefined, collected: gc === 'true',
        ...this.providers.memory?.(),
      },
    };
  }

  private stats(url: URL): Reply {
    this.providers.beforeStats?.();
    const filter = url.searchParams.get('filter') ?? undefined;
    const format = url.searchParams.get('format') ?? 'json';
    if (format === 'text') return { status: 200, body: this.providers.stats.text(filter), text: true };
    if (format === 'json') return { status: 200, body: this.providers.stats.snapshot(filter) };
    throw new MeshError(ErrorCodes.VALIDATION, `query parameter format: must be json or text, got "${format}"`, {
      details: [{ resource: '', path: 'query.format', message: 'must be json or text' }],
    });
  }
}

/** The collector `node --expose-gc` puts on globalThis, if any. */
function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as () => void) : undefined;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/** Pretty JSON; a provider's undefined becomes null. Throws on cycles and BigInt (-> 500). */
function json(body: unknown): string {
  return `${JSON.stringify(body ?? null, null, 2)}\n`;
}
