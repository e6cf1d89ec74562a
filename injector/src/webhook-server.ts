/**
 * The injector's HTTPS server, what the Kubernetes API server calls:
 *
 *   POST /inject/pod         pods that opted in themselves (label skein.io/inject=enabled)
 *   POST /inject/namespace   pods of a namespace labelled skein.io/inject=enabled (opt-out still wins)
 *   GET  /healthz            200 while it serves (probes)
 *
 * A POST body is an AdmissionReview v1; the answer is one (admission-review.ts). A body that is
 * not JSON, too large (over 4 MiB) or has no request uid gets a 400/413 JSON error (the API
 * server then applies the webhook's failurePolicy); a review with a uid that the injector cannot
 * take is denied, saying why. Nothing a client sends ends the process: every handler error is
 * answered 500 and logged. Pods are never logged, only their review's uid, namespace and name.
 * The certificate and key are re-read every `tlsReloadMs` and swapped in when they changed
 * (cert-manager or deploy/kubernetes/injector-tls.sh renewing the Secret).
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import type * as http from 'node:http';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import { closeHttp, listenHttp, parseListen } from '../../shared/src/listen-address';
import type { Logger } from '../../shared/src/log';
import { answer, readReview, refuse, reviewUid } from './admission-review';
import type { InjectorSettings } from './injection-settings';
import { decide } from './pod-patch';
import type { Selection } from './workload';

export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  listen: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  settings: InjectorSettings;
  log: Logger;
  /** How often the certificate files are checked for a change (default 60 s; 0: never). */
  tlsReloadMs?: number;
}

const PATHS: Record<string, Selection> = { '/inject/pod': 'pod', '/inject/namespace': 'namespace' };

export class WebhookServer {
  private readonly server: https.Server;
  private reloadTimer: NodeJS.Timeout | undefined;
  private tls: { cert: string; key: string };
  port = 0;
  /** Reviews answered, by outcome: injected, skipped, denied, refused (malformed), error. */
  readonly counts = { injected: 0, skipped: 0, denied: 0, refused: 0, aborted: 0, error: 0 };
  reloads = 0;

  private constructor(private readonly opts: WebhookServerOptions) {
    this.tls = readTls(opts.tlsCertFile, opts.tlsKeyFile);
    this.server = https.createServer({ ...this.tls, minVersion: 'TLSv1.2' }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        this.counts.error++;
        opts.log.error({ err: (e as Error).message }, 'injector: request failed');
        if (!res.headersSent) reply(res, 500, { code: ErrorCodes.INTERNAL, message: 'internal error' });
        else res.destroy();
      });
    });
    // A review is small and the API server waits at most the webhook's timeoutSeconds (max 30 s).
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.on('tlsClientError', (e) => opts.log.debug({ err: e.message }, 'injector: TLS handshake failed'));
  }

  static async start(opts: WebhookServerOptions): Promise<WebhookServer> {
    const s = new WebhookServer(opts);
    const { host, port } = parseListen(opts.listen, '--listen');
    s.port = await listenHttp(s.server, host, port, '--listen');
    const every = opts.tlsReloadMs ?? 60_000;
    if (every > 0) { s.reloadTimer = setInterval(() => s.reloadTls(), every); s.reloadTimer.unref(); }
    opts.log.info({ listen: `${host}:${s.port}`, xds: opts.settings.xds, image: opts.settings.sidecarImage }, 'injector: serving');
    return s;
  }

  /** Re-reads the certificate files; new TLS connections use them if they changed. */
  reloadTls(): void {
    let next: { cert: string; key: string };
    try { next = readTls(this.opts.tlsCertFile, this.opts.tlsKeyFile); } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'injector: cannot re-read the TLS files; keeping the current certificate');
      return;
    }
    if (next.cert === this.tls.cert && next.key === this.tls.key) return;
    try { this.server.setSecureContext(next); } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'injector: the new TLS files do not make a certificate and key pair; keeping the current one');
      return;
    }
    this.tls = next;
    this.reloads++;
    this.opts.log.info('injector: TLS certificate reloaded');
  }

  async close(): Promise<void> {
    if (this.reloadTimer !== undefined) clearInterval(this.reloadTimer);
    await closeHttp(this.server as unknown as http.Server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/healthz') { reply(res, req.method === 'GET' ? 200 : 405, req.method === 'GET' ? { ok: true } : { code: ErrorCodes.METHOD_NOT_ALLOWED, message: 'GET only' }); return; }
    const selection = PATHS[path];
    if (selection === undefined) { reply(res, 404, { code: ErrorCodes.NOT_FOUND, message: `no route ${path}: POST /inject/pod or /inject/namespace` }); return; }
    if (req.method !== 'POST') { reply(res, 405, { code: ErrorCodes.METHOD_NOT_ALLOWED, message: 'POST an AdmissionReview' }); return; }
    const text = await readBody(req);
    if (text === null) { this.counts.aborted++; return; }
    if (text === undefined) { this.counts.refused++; reply(res, 413, { code: ErrorCodes.BODY_TOO_LARGE, message: `an AdmissionReview is at most ${MAX_REVIEW_BYTES} bytes` }); return; }
    let body: unknown;
    try { body = JSON.parse(text); } catch (e) {
      this.counts.refused++;
      reply(res, 400, { code: ErrorCodes.MALFORMED_INPUT, message: `the body is not JSON: ${(e as Error).message}` });
      return;
    }
    const uid = reviewUid(body);
    let review;
    try { review = readReview(body); } catch (e) {
      if (!(e instanceof MeshError)) throw e;
      this.counts.refused++;
      this.opts.log.warn({ uid, err: e.message }, 'injector: review refused');
      if (uid === undefined) reply(res, 400, e.toJSON());
      else reply(res, 200, refuse(uid, e));
      return;
    }
    const d = decide(review.pod, review.namespace, selection, this.opts.settings);
    const name = review.pod.metadata?.name ?? review.pod.metadata?.generateName ?? '';
    if (d.kind === 'inject') this.counts.injected++;
    else if (d.kind === 'skip') this.counts.skipped++;
    else this.counts.denied++;
    this.opts.log.info({ uid: review.uid, namespace: review.namespace, pod: name, decision: d.kind, ...(d.kind === 'skip' ? { reason: d.reason } : {}), ...(d.kind === 'inject' ? { service: d.workload.inbound?.service ?? null } : {}) }, 'injector: review');
    reply(res, 200, answer(review.uid, d));
  }
}

function readTls(certFile: string, keyFile: string): { cert: string; key: string } {
  const read = (file: string, flag: string) => {
    try { return fs.readFileSync(file, 'utf8'); } catch (e) { throw new MeshError(ErrorCodes.VALIDATION, `${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  };
  return { cert: read(certFile, '--tls-cert'), key: read(keyFile, '--tls-key') };
}

/** The body as text; undefined past MAX_REVIEW_BYTES (the rest is drained, not kept); null if the client left. */
function readBody(req: http.IncomingMessage): Promise<string | undefined | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_REVIEW_BYTES) chunks.push(c); });
    req.on('end', () => resolve(size > MAX_REVIEW_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(null));
    req.on('close', () => { if (!req.complete) resolve(null); });
  });
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
