import * as http from 'node:http';
import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import { CONTROL_PLANE_NAMESPACE, spiffeId, spiffeIdInSan } from '../../../shared/src/identity/spiffe';
import { KINDS } from '../../../shared/src/config/types';
import { asMeshError, ErrorCodes, httpStatusOf, MeshError } from '../../../shared/src/errors';
import type { ApiBackend } from './api-backend';
import { parseListen } from '../../../shared/src/listen-address';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import { applyCanary, parseCanaryRequest } from './canary';
import { BodyParser } from './body-parser';
import { checkConfigMediaType, discardBody, flag, intParam, parseJsonBody, readBody, sendJson } from './http-io';
import type { ChangeResult } from '../store/config-store';
import type { RolloutReport } from '../discovery/rollout';
import type { ProxyStatus } from '../discovery/proxy-status';
import type { NackWarning } from '../discovery/nack-forecast';
import type { MeshConfig } from '../../../shared/src/config/mesh';
import { parseDuration } from '../../../shared/src/config/duration';
import { ADMIN_TOKEN_FILE } from '../identity/admin-token';
import type { CreateTokenRequest, TokenRecord } from '../identity/join-tokens';
import { runChecks } from '../check/checks';
import { MIN_WINDOW_MS, RETENTION_MS } from '../telemetry/route-stats-store';

/** A change's answer: the store's result and, unless it was a dry run, its rollout. */
export interface ChangeAnswer extends ChangeResult {
  rollout?: RolloutReport;
  /** Dry runs: the NACKs the change is certain to get from the proxies connected now. */
  warnings?: NackWarning[];
  /** Set instead of `rollout` when the change was stored but its push cannot be followed. */
  rolloutError?: string;
}

/** `?wait` with no value waits this long; the longest wait allowed. */
export const DEFAULT_WAIT_MS = 30_000;
export const MAX_WAIT_MS = 10 * 60_000;

/** A change request's options: the store's, plus the wait and (dry runs) the NACK forecast. */
interface ChangeRequestOptions {
  dryRun: boolean;
  author: string;
  message?: string;
  expectedRevision?: number;
  waitMs?: number;
  inspect?: (candidate: MeshConfig) => void;
  forecast: { warnings: NackWarning[] };
}

type Handler = (req: http.IncomingMessage, url: URL, params: string[]) => Promise<[number, unknown]>;
/**
 * Who may call a route: anyone who can reach the API ('read': reads, meant for loopback or a
 * trusted network), or only a caller with the admin token ('admin': every change, and anything
 * that mints or lists credentials). Registering an endpoint here is an admin change too (an
 * operator adding an instance by hand); sidecars register over gRPC with their certificate
 * (registry/registration-service.ts), which limits them to their own service.
 */
type Access = 'read' | 'admin';
interface Route { method: string; pattern: RegExp; handler: Handler; access?: Access }

/**
 * The SRE API v1: HTTP/JSON, documented route by route in README.md. Every error is mapped here,
 * once, to {error: {code, message, details}} with the status for its code.
 */
export class ApiServer {
  private readonly server: http.Server | https.Server;
  /** A client certificate with this SPIFFE ID is an admin credential, as the admin token is. */
  private readonly adminId: string | undefined;
  private readonly routes: Route[];
  private readonly parser = new BodyParser();

  /**
   * `tls`: serve HTTPS with the control plane's serving certificate (renewed in place: each
   * renewal reaches the next handshake). A client certificate is optional, and verified against
   * the mesh's roots when sent; spiffe://<td>/ns/skein-system/sa/admin is an admin credential.
   */
  constructor(private readonly cp: ApiBackend, private readonly opts: { maxBodyBytes: number; tls?: { serving: RotatingIdentity; trustDomain: string; trustBundlePem: () => string } }) {
    this.routes = [
      { method: 'GET', pattern: /^\/healthz$/, handler: async () => [200, { ok: true, revision: this.cp.store.current().revision }] },
      { method: 'GET', pattern: /^\/v1\/config$/, handler: async (_req, url) => [200, await this.getConfig(url)] },
      { method: 'POST', pattern: /^\/v1\/config$/, handler: (req, url) => this.apply(req, url), access: 'admin' },
      { method: 'DELETE', pattern: /^\/v1\/config\/([A-Za-z]+)\/([^/]+)$/, handler: (req, url, p) => this.remove(req, url, p), access: 'admin' },
      { method: 'GET', pattern: /^\/v1\/revisions$/, handler: async () => [200, { revisions: await this.cp.store.revisions() }] },
      { method: 'GET', pattern: /^\/v1\/revisions\/(\d{1,9})$/, handler: async (_r, _u, p) => [200, await this.cp.store.revision(Number(p[0]))] },
      { method: 'POST', pattern: /^\/v1\/revisions\/(\d{1,9})\/rollback$/, handler: (req, url, p) => this.rollback(req, url, p), access: 'admin' },
      { method: 'POST', pattern: /^\/v1\/canary$/, handler: (req, url) => this.canary(req, url), access: 'admin' },
      { method: 'GET', pattern: /^\/v1\/rollouts\/(\d{1,9})$/, handler: async (_r, url, p) => [200, await this.rolloutOf(Number(p[0]), url)] },
      { method: 'GET', pattern: /^\/v1\/proxies$/, handler: async (_r, url) => [200, this.proxies(url)] },
      { method: 'GET', pattern: /^\/v1\/endpoints$/, handler: async () => [200, { endpoints: this.cp.registry.list().map(leaseJson) }] },
      { method: 'POST', pattern: /^\/v1\/endpoints$/, handler: (req) => this.register(req), access: 'admin' },
      { method: 'PUT', pattern: /^\/v1\/endpoints\/([0-9a-f-]{36})$/, handler: async (_r, _u, p) => [200, leaseJson(this.cp.registry.renew(p[0]!))], access: 'admin' },
      { method: 'DELETE', pattern: /^\/v1\/endpoints\/([0-9a-f-]{36})$/, handler: async (_r, _u, p) => { this.cp.registry.deregister(p[0]!); return [200, { deregistered: p[0] }]; }, access: 'admin' },
      { method: 'GET', pattern: /^\/v1\/xds$/, handler: async (_r, url) => [200, this.xdsDump(url)] },
      { method: 'POST', pattern: /^\/v1\/tokens$/, handler: (req) => this.createToken(req), access: 'admin' },
      { method: 'GET', pattern: /^\/v1\/tokens$/, handler: async () => [200, { tokens: this.cp.identity.tokens.list().map(tokenJson) }], access: 'admin' },
      { method: 'DELETE', pattern: /^\/v1\/tokens\/([0-9a-f]{12})$/, handler: async (_r, _u, p) => { this.cp.identity.tokens.revoke(p[0]!); return [200, { revoked: p[0] }]; }, access: 'admin' },
      { method: 'GET', pattern: /^\/v1\/ca$/, handler: async () => [200, this.caStatus()] },
      { method: 'POST', pattern: /^\/v1\/ca\/rotate$/, handler: (req) => this.rotate(req), access: 'admin' },
      { method: 'GET', pattern: /^\/v1\/check$/, handler: async () => [200, runChecks(this.cp.checkContext())] },
      { method: 'GET', pattern: /^\/v1\/stats\/routes$/, handler: async (_r, url) => [200, this.routeStats(url)] },
    ];
    const serverOpts = { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 };
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => { void this.dispatch(req, res); };
    const tls = opts.tls;
    if (tls === undefined) {
      this.server = http.createServer(serverOpts, onRequest);
      this.adminId = undefined;
    } else {
      const secure = () => ({ key: tls.serving.current.keyPem, cert: tls.serving.current.certChainPem, ca: tls.trustBundlePem() });
      const server = https.createServer({ ...serverOpts, ...secure(), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, onRequest);
      tls.serving.onChange(() => server.setSecureContext(secure()));
      this.server = server;
      this.adminId = spiffeId({ trustDomain: tls.trustDomain, namespace: CONTROL_PLANE_NAMESPACE, serviceAccount: 'admin' });
    }
  }

  /** Whether the request carries an admin credential: the admin token, or a verified admin client certificate. */
  private isAdmin(req: http.IncomingMessage): boolean {
    if (this.cp.identity.admin.accepts(req.headers.authorization)) return true;
    const socket = req.socket as Partial<TLSSocket>;
    if (this.adminId === undefined || socket.authorized !== true || socket.getPeerCertificate === undefined) return false;
    return spiffeIdInSan(socket.getPeerCertificate().subjectaltname) === this.adminId;
  }

  listen(listen: string): Promise<number> {
    const { host, port } = parseListen(listen, '--api-listen');
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(new MeshError(ErrorCodes.STORE, `cannot listen for the API on ${listen}: ${e.message}`)));
      this.server.listen(port, host, () => resolve((this.server.address() as { port: number }).port));
    });
  }

  async close(): Promise<void> {
    await this.parser.close();
    return new Promise((resolve) => { this.server.close(() => resolve()); this.server.closeAllConnections(); });
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://api.local');
    try {
      const matching = this.routes.filter((r) => r.pattern.test(url.pathname));
      if (matching.length === 0) throw new MeshError(ErrorCodes.NOT_FOUND, `no API route ${url.pathname}; see README.md "SRE API"`);
      const route = matching.find((r) => r.method === req.method);
      if (route === undefined) {
        res.setHeader('allow', matching.map((r) => r.method).join(', '));
        throw new MeshError(ErrorCodes.METHOD_NOT_ALLOWED, `${req.method} is not allowed on ${url.pathname} (allowed: ${matching.map((r) => r.method).join(', ')})`);
      }
      if (route.access === 'admin' && !this.isAdmin(req)) {
        res.setHeader('www-authenticate', 'Bearer realm="skein"');
        throw new MeshError(ErrorCodes.UNAUTHENTICATED, `${req.method} ${url.pathname} needs the admin token: send "Authorization: Bearer <token>"; it is in the control plane's ${ADMIN_TOKEN_FILE} file in its data dir (the CLI reads it from there, from --admin-token-file or from SKEIN_TOKEN)`);
      }
      const params = route.pattern.exec(url.pathname)!.slice(1).map(decodePathSegment);
      const [status, body] = await route.handler(req, url, params);
      sendJson(res, status, body);
    } catch (e) {
      const err = asMeshError(e);
      if (err.code === ErrorCodes.INTERNAL) this.cp.log.error({ err: e, path: url.pathname }, 'API request failed');
      // The caller's mistake, worth a line (a client sending garbage), not a stack.
      else if (err.code === ErrorCodes.UNAUTHENTICATED) this.cp.log.warn({ path: url.pathname, method: req.method, remote: req.socket.remoteAddress }, 'API change refused: no valid admin token');
      else if (err.code === ErrorCodes.MALFORMED_INPUT) this.cp.log.warn({ path: url.pathname, code: err.code, reason: err.message }, 'API request refused: malformed input');
      // An answer before the body was read (too large, no credential): read and drop the rest, so
      // the client sees the answer rather than a reset.
      if (!req.complete) discardBody(req);
      if (!res.headersSent) sendJson(res, httpStatusOf(err), { error: err.toJSON() });
      else res.destroy();
    }
  }

  private async getConfig(url: URL): Promise<unknown> {
    const n = intParam(url.searchParams.get('revision'), 'query.revision');
    const rev = n === undefined ? this.cp.store.current() : await this.cp.store.revision(n);
    return rev;
  }

  private async apply(req: http.IncomingMessage, url: URL): Promise<[number, unknown]> {
    checkConfigMediaType(req);
    const mode = url.searchParams.get('mode') ?? 'merge';
    if (mode !== 'merge' && mode !== 'replace') throw new MeshError(ErrorCodes.VALIDATION, `query.mode: must be merge or replace, got "${mode}"`, { details: [{ resource: '', path: 'query.mode', message: 'must be merge or replace' }] });
    const opts = this.changeOptions(req, url);
    const docs = await this.parser.parse(await readBody(req, this.opts.maxBodyBytes));
    const result = await this.followed(this.cp.store.apply(docs, { ...opts, mode }), opts);
    return [result.changed && !result.dryRun ? 201 : 200, result];
  }

  private async remove(req: http.IncomingMessage, url: URL, [kind, name]: string[]): Promise<[number, unknown]> {
    if (!(KINDS as readonly string[]).includes(kind!)) throw new MeshError(ErrorCodes.NOT_FOUND, `unknown kind "${kind}" (kinds: ${KINDS.join(', ')})`);
    const opts = this.changeOptions(req, url);
    return [200, await this.followed(this.cp.store.delete([`${kind}/${name}`], opts), opts)];
  }

  private async rollback(req: http.IncomingMessage, url: URL, [n]: string[]): Promise<[number, unknown]> {
    const opts = this.changeOptions(req, url);
    return [200, await this.followed(this.cp.store.rollback(Number(n), opts), opts)];
  }

  private async canary(req: http.IncomingMessage, url: URL): Promise<[number, unknown]> {
    const opts = this.changeOptions(req, url);
    const body = parseCanaryRequest(parseJsonBody(await readBody(req, this.opts.maxBodyBytes)));
    const summary = body.weights.map((w) => `${w.subset}=${w.weight}`).join(' ');
    return [200, await this.followed(this.cp.store.update((docs) => applyCanary(docs, body), { ...opts, message: opts.message ?? `canary ${body.route} ${summary}` }), opts)];
  }

  /**
   * Adds the rollout to a change's answer: the proxies it reached and what each did with it,
   * after waiting up to `waitMs` for them when asked. A no-op change pushed nothing (NONE).
   * The change is stored by then, so a failure to follow it never turns into an error answer.
   * A dry run answers with the NACKs it forecast instead.
   */
  private async followed(change: Promise<ChangeResult>, opts: ChangeRequestOptions): Promise<ChangeAnswer> {
    const result = await change;
    const waitMs = opts.waitMs;
    if (result.dryRun) return { ...result, warnings: opts.forecast.warnings };
    if (!result.changed) return { ...result, rollout: noRollout(result.revision) };
    await this.cp.syncSnapshot();
    try {
      const rollout = waitMs === undefined ? this.cp.discovery.rollout(result.revision) : await this.cp.discovery.waitRollout(result.revision, waitMs);
      return { ...result, rollout };
    } catch (e) {
      this.cp.log.error({ err: e, revision: result.revision }, 'cannot follow the rollout of a stored change');
      return { ...result, rolloutError: (e as Error).message };
    }
  }

  /**
   * GET /v1/proxies: every connected proxy, by node id; with ?slow=true only the proxies behind
   * (a change or subscription not ACKed, or NACKed), furthest first, at most ?limit (default 10).
   */
  private proxies(url: URL): { revision: number; proxies: ProxyStatus[] } {
    const slow = flag(url, 'slow');
    const limit = intParam(url.searchParams.get('limit'), 'query.limit');
    if (limit !== undefined && !slow) throw queryError('limit', 'only applies with slow=true');
    if (limit !== undefined && (limit < 1 || limit > 10_000)) throw queryError('limit', `must be from 1 to 10000, got ${limit}`);
    return { revision: this.cp.cache.revision, proxies: slow ? this.cp.discovery.slowProxies(limit ?? DEFAULT_SLOW_LIMIT) : this.cp.discovery.proxies() };
  }

  private async rolloutOf(revision: number, url: URL): Promise<RolloutReport> {
    const waitMs = waitParam(url);
    await this.cp.syncSnapshot();
    return waitMs === undefined ? this.cp.discovery.rollout(revision) : this.cp.discovery.waitRollout(revision, waitMs);
  }

  private async register(req: http.IncomingMessage): Promise<[number, unknown]> {
    const lease = this.cp.registry.register(parseJsonBody(await readBody(req, 64 * 1024)));
    return [200, leaseJson(lease)];
  }

  private async createToken(req: http.IncomingMessage): Promise<[number, unknown]> {
    const body = parseTokenRequest(parseJsonBody(await readBody(req, 16 * 1024)));
    const { token, record } = this.cp.identity.tokens.create(body);
    this.cp.log.info({ id: record.id, service: record.service, namespace: record.namespace, serviceAccount: record.serviceAccount, reusable: record.reusable, expiresAt: new Date(record.expiresAt).toISOString() }, 'join token created');
    return [201, { token, ...tokenJson(record) }];
  }

  private caStatus(): unknown {
    const ca = this.cp.identity.ca;
    const r = this.cp.rotation.status();
    const rotation = r.state === undefined ? { phase: 'none' } : {
      phase: r.phase, startedAt: new Date(r.state.startedAt).toISOString(), oldRootSerial: r.state.oldRootSerial, newRootSerial: r.state.newRootSerial,
      ...(r.state.switchedAt === undefined ? {} : { switchedAt: new Date(r.state.switchedAt).toISOString() }),
      ...(r.state.oldLeavesExpireBy === undefined ? {} : { oldLeavesExpireBy: new Date(r.state.oldLeavesExpireBy).toISOString() }),
      waitingFor: r.waitingFor,
    };
    return { trustDomain: ca.trustDomain, source: ca.source, subject: ca.subject, notAfter: new Date(ca.notAfter).toISOString(), rotation, trustBundle: ca.trustBundlePem() };
  }

  /** POST /v1/ca/rotate: {} starts a root rotation; {"finish": true} ends its issue phase now. */
  private async rotate(req: http.IncomingMessage): Promise<[number, unknown]> {
    const text = await readBody(req, 1024);
    const body = text.trim() === '' ? {} : parseJsonBody(text);
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'finish') || ((body as { finish?: unknown }).finish !== undefined && typeof (body as { finish?: unknown }).finish !== 'boolean')) {
      throw new MeshError(ErrorCodes.VALIDATION, 'body: expected {} or {"finish": true}', { details: [{ resource: '', path: 'finish', message: 'must be a boolean; no other field' }] });
    }
    const finish = (body as { finish?: boolean }).finish === true;
    await (finish ? this.cp.rotation.finish() : this.cp.rotation.begin());
    this.cp.log.info({ finish }, 'root rotation requested through the API');
    return [200, this.caStatus()];
  }

  /** GET /v1/stats/routes?window=DURATION (default 1m, 5s to 15m). */
  private routeStats(url: URL): unknown {
    const v = url.searchParams.get('window') ?? '1m';
    const ms = parseDuration(v);
    if (typeof ms !== 'number') throw queryError('window', `${ms.error}; from 5s to 15m`);
    if (ms < MIN_WINDOW_MS || ms > RETENTION_MS) throw queryError('window', `must be from 5s to 15m, got "${v}"`);
    return { window: v, ...this.cp.routeStatsView(ms) };
  }

  private xdsDump(url: URL): unknown {
    const want = url.searchParams.get('type');
    const types: Record<string, string> = { listeners: TYPE_URLS.LISTENER, routes: TYPE_URLS.ROUTE, clusters: TYPE_URLS.CLUSTER, endpoints: TYPE_URLS.ENDPOINT, secrets: TYPE_URLS.SECRET };
    if (want !== null && types[want] === undefined) throw new MeshError(ErrorCodes.VALIDATION, `query.type: must be one of ${Object.keys(types).join(', ')}`, { details: [{ resource: '', path: 'query.type', message: 'unknown type' }] });
    const out: Record<string, unknown> = { revision: this.cp.cache.revision };
    for (const [key, typeUrl] of Object.entries(types)) {
      if (want !== null && want !== key) continue;
      out[key] = [...this.cp.cache.all(typeUrl).values()].map((r) => ({ name: r.name, version: r.version, resource: r.json }));
    }
    return out;
  }

  private changeOptions(req: http.IncomingMessage, url: URL): ChangeRequestOptions {
    const author = headerText(req, 'x-skein-author') ?? 'api';
    const message = headerText(req, 'x-skein-message');
    const expected = intParam(url.searchParams.get('expectedRevision'), 'query.expectedRevision');
    const dryRun = flag(url, 'dryRun');
    const waitMs = waitParam(url);
    if (dryRun && waitMs !== undefined) throw queryError('wait', 'cannot be combined with dryRun: a dry run pushes nothing to wait for');
    const forecast: { warnings: NackWarning[] } = { warnings: [] };
    const inspect = dryRun ? (candidate: MeshConfig): void => { forecast.warnings = this.cp.forecastNacks(candidate); } : undefined;
    return {
      dryRun, author, forecast, ...(inspect === undefined ? {} : { inspect }),
      ...(message === undefined ? {} : { message }), ...(expected === undefined ? {} : { expectedRevision: expected }), ...(waitMs === undefined ? {} : { waitMs }),
    };
  }
}

/**
 * `?wait=DURATION` (e.g. 30s, 1m30s; at most 10m), or `?wait` / `?wait=true` for the default 30s.
 * `?wait=false` or no parameter: do not wait.
 */
function waitParam(url: URL): number | undefined {
  const v = url.searchParams.get('wait');
  if (v === null || v === 'false' || v === '0') return undefined;
  if (v === '' || v === 'true') return DEFAULT_WAIT_MS;
  const ms = parseDuration(v);
  if (typeof ms !== 'number') throw queryError('wait', `${ms.error}, or true / false`);
  if (ms > MAX_WAIT_MS) throw queryError('wait', `must be at most 10m, got "${v}"`);
  return ms;
}

/** The proxies furthest behind GET /v1/proxies?slow=true lists unless ?limit says otherwise. */
export const DEFAULT_SLOW_LIMIT = 10;

function queryError(name: string, message: string): MeshError {
  return new MeshError(ErrorCodes.VALIDATION, `query.${name}: ${message}`, { details: [{ resource: '', path: `query.${name}`, message }] });
}

/** The rollout of a change that created no revision: nothing was pushed. */
function noRollout(revision: number): RolloutReport {
  return {
    revision, fromRevision: revision, state: 'NONE', complete: true, counts: { affected: 0, acked: 0, nacked: 0, pending: 0, gone: 0 }, proxies: [],
    summary: `no change: revision ${revision} is current and nothing was pushed`,
  };
}

function decodePathSegment(s: string): string {
  try { return decodeURIComponent(s); } catch { throw new MeshError(ErrorCodes.MALFORMED_INPUT, `path segment "${s}" is not valid percent-encoding`); }
}

function headerText(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (typeof v !== 'string' || v === '') return undefined;
  return v.slice(0, 256);
}

/** A stored token as the API shows it: never the token, nor its hash. */
function tokenJson(r: TokenRecord): Record<string, unknown> {
  return {
    id: r.id, service: r.service, namespace: r.namespace, serviceAccount: r.serviceAccount, reusable: r.reusable,
    createdAt: new Date(r.createdAt).toISOString(), expiresAt: new Date(r.expiresAt).toISOString(),
    ...(r.usedAt === undefined ? {} : { usedAt: new Date(r.usedAt).toISOString() }),
  };
}

const TOKEN_FIELDS = ['service', 'namespace', 'serviceAccount', 'ttl', 'reusable'];

/** POST /v1/tokens: {service, namespace?, serviceAccount?, ttl? (duration, default 1h), reusable?}. */
function parseTokenRequest(v: unknown): CreateTokenRequest {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fieldError('', 'must be a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!TOKEN_FIELDS.includes(k)) throw fieldError(k, `unknown field (fields: ${TOKEN_FIELDS.join(', ')})`);
  const text = (k: string): string | undefined => {
    if (o[k] === undefined) return undefined;
    if (typeof o[k] !== 'string') throw fieldError(k, 'must be a string');
    return o[k] as string;
  };
  const service = text('service');
  if (service === undefined) throw fieldError('service', 'required');
  const ttl = text('ttl');
  let ttlMs: number | undefined;
  if (ttl !== undefined) {
    const ms = parseDuration(ttl);
    if (typeof ms !== 'number') throw fieldError('ttl', ms.error);
    ttlMs = ms;
  }
  if (o.reusable !== undefined && typeof o.reusable !== 'boolean') throw fieldError('reusable', 'must be true or false');
  const namespace = text('namespace');
  const serviceAccount = text('serviceAccount');
  return {
    service, ...(namespace === undefined ? {} : { namespace }), ...(serviceAccount === undefined ? {} : { serviceAccount }),
    ...(ttlMs === undefined ? {} : { ttlMs }), reusable: o.reusable === true,
  };
}

function fieldError(path: string, message: string): MeshError {
  return new MeshError(ErrorCodes.VALIDATION, path === '' ? `body: ${message}` : `body.${path}: ${message}`, { details: [{ resource: '', path: path === '' ? 'body' : `body.${path}`, message }] });
}

function leaseJson(l: ReturnType<ApiBackend['registry']['list']>[number]): unknown {
  return { ...l, registeredAt: new Date(l.registeredAt).toISOString(), expiresAt: new Date(l.expiresAt).toISOString(), ttl: `${l.ttlMs}ms` };
}
