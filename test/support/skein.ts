/**
 * Shared helpers for black-box tests against a real `skein control-plane` process:
 * start/stop it on a temp data dir, call its SRE API, and canonical config fixtures.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { adminTokenFor, apiFetch, startControlPlaneProcess } from '../../harness/src/control-plane-process';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';

export const API_VERSION = 'skein.dev/v1alpha1';

export function reviewsService(): Record<string, unknown> {
  return {
    apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'reviews' },
    spec: { ports: [{ name: 'grpc', port: 50051 }], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
  };
}

export function reviewsRoute(v1 = 90, v2 = 10): Record<string, unknown> {
  return {
    apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'reviews' },
    spec: { parentRefs: [{ name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews', subset: 'v1', weight: v1 }, { name: 'reviews', subset: 'v2', weight: v2 }] }] },
  };
}

export function ratingsService(): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'ratings' }, spec: { ports: [{ name: 'grpc', port: 50052 }] } };
}

/** The Service and GRPCRoute for `reviews` as one multi-document YAML text (route 90/10). */
export const MESH_YAML = `# reviews: two subsets, 90/10
apiVersion: ${API_VERSION}
kind: Service
metadata:
  name: reviews
spec:
  ports:
    - name: grpc
      port: 50051
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
---
apiVersion: ${API_VERSION}
kind: GRPCRoute
metadata:
  name: reviews
spec:
  parentRefs: [{name: reviews}]
  rules:
    - backendRefs:
        - {name: reviews, subset: v1, weight: 90}
        - {name: reviews, subset: v2, weight: 10}
`;

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `skein-${prefix}-`));
}

export interface Plane {
  proc: ControlPlaneProcess;
  api: string;
  dataDir: string;
  /** Stops the process (SIGTERM) and resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** Starts a real control plane on free ports. The data dir is a fresh temp dir unless given. */
export async function startPlane(opts: { dataDir?: string; extraArgs?: string[] } = {}): Promise<Plane> {
  const dataDir = opts.dataDir ?? tempDir('data');
  const proc = await startControlPlaneProcess({ dataDir, logLevel: 'warn', ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}) });
  return { proc, api: proc.api, dataDir, stop: () => proc.stop() };
}

/** Stops a plane started by startPlane (if it started), removes its data dir, and fails unless it exited 0 (with its logs). */
export async function stopPlane(plane: Plane | undefined): Promise<void> {
  if (plane === undefined) return;
  const code = await plane.stop();
  fs.rmSync(plane.dataDir, { recursive: true, force: true });
  assert.equal(code, 0, `control plane exit code; logs:\n${plane.proc.logs()}`);
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

/**
 * One API call. An object body is sent as JSON; a string body with `type` (default
 * application/yaml). Every reply must be JSON.
 */
export async function call(api: string, method: string, urlPath: string, opts: { body?: unknown; type?: string; headers?: Record<string, string>; anonymous?: boolean } = {}): Promise<Reply> {
  // Calls carry the admin token of the control plane serving `api` (when the test started it),
  // unless the test asks for an anonymous call or sends its own authorization.
  const token = opts.anonymous === true ? undefined : adminTokenFor(api);
  const headers: Record<string, string> = { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] = opts.type ?? (typeof opts.body === 'string' ? 'application/yaml' : 'application/json');
  }
  const res = await apiFetch(new URL(urlPath, api), { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${method} ${urlPath}: reply is not JSON: ${text.slice(0, 200)}`);
  return { status: res.status, headers: res.headers, body: JSON.parse(text) };
}

export interface ErrorExpectation {
  status: number;
  code: string;
  /** A `details` entry must have exactly this path (and the message must name it). */
  path?: string;
  /** ...and this resource (`Kind/name`), when given. */
  resource?: string;
  /** What the top-level message must contain to name the field (default: `path`). */
  named?: string;
  /** Text the message (or the matching detail's message) must contain. */
  message?: string | RegExp;
}

/** Asserts the reply is the API's error shape {error: {code, message, details?}} with these properties. */
export function assertApiError(r: Reply, want: ErrorExpectation): void {
  const ctx = JSON.stringify(r.body);
  assert.equal(r.status, want.status, `status: ${ctx}`);
  assert.equal(typeof r.body.error, 'object', `no error object: ${ctx}`);
  assert.equal(r.body.error.code, want.code, `code: ${ctx}`);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  if (want.path !== undefined) {
    assert.ok(Array.isArray(r.body.error.details), `no details: ${ctx}`);
    const d = (r.body.error.details as { resource: string; path: string; message: string }[])
      .find((x) => x.path === want.path && (want.resource === undefined || x.resource === want.resource));
    assert.ok(d, `no detail with path ${want.path}${want.resource ? ` on ${want.resource}` : ''}: ${ctx}`);
    assert.ok(r.body.error.message.includes(want.named ?? want.path), `message does not name ${want.named ?? want.path}: ${ctx}`);
    if (want.message !== undefined) {
      if (typeof want.message === 'string') assert.ok(d.message.includes(want.message), `detail message: ${ctx}`);
      else assert.match(d.message, want.message, `detail message: ${ctx}`);
    }
  } else if (want.message !== undefined) {
    if (typeof want.message === 'string') assert.ok(r.body.error.message.includes(want.message), `message: ${ctx}`);
    else assert.match(r.body.error.message, want.message, `message: ${ctx}`);
  }
}

/** What a rejected request must leave untouched: the stored config and the served xDS snapshot. */
export interface State { config: unknown; revisions: unknown; xds: unknown }

export async function state(api: string): Promise<State> {
  const [config, revisions, xds] = await Promise.all([call(api, 'GET', '/v1/config'), call(api, 'GET', '/v1/revisions'), call(api, 'GET', '/v1/xds')]);
  return { config: config.body, revisions: revisions.body, xds: xds.body };
}

/** Asserts the config revision, revision history and xDS snapshot (revision and content) are unchanged. */
export async function assertUnchanged(api: string, before: State, what: string): Promise<void> {
  const after = await state(api);
  assert.equal((after.config as { revision: number }).revision, (before.config as { revision: number }).revision, `${what}: config revision changed`);
  assert.equal((after.xds as { revision: number }).revision, (before.xds as { revision: number }).revision, `${what}: xDS snapshot revision changed`);
  assert.deepEqual(after.config, before.config, `${what}: stored config changed`);
  assert.deepEqual(after.revisions, before.revisions, `${what}: revision history changed`);
  assert.deepEqual(after.xds, before.xds, `${what}: xDS snapshot changed`);
}

/** The weighted clusters (name -> weight) of the first route of route config `name`, or {cluster: 1} for a single cluster. */
export function routeTargets(xds: { routes: { name: string; resource: { virtual_hosts: { routes: { route: { cluster?: string; weighted_clusters?: { clusters: { name: string; weight: { value: number } }[] } } }[] }[] } }[] }, name: string): Record<string, number> {
  const rc = xds.routes.find((r) => r.name === name);
  assert.ok(rc, `no route config ${name} in ${JSON.stringify(xds.routes.map((r) => r.name))}`);
  const action = rc.resource.virtual_hosts[0]!.routes[0]!.route;
  if (action.cluster !== undefined) return { [action.cluster]: 1 };
  return Object.fromEntries(action.weighted_clusters!.clusters.map((c) => [c.name, c.weight.value]));
}

/** host:port of every endpoint in the xDS ClusterLoadAssignment for `cluster`. */
export function edsAddresses(xds: { endpoints: { name: string; resource: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } }[] }, cluster: string): string[] {
  const cla = xds.endpoints.find((e) => e.name === cluster);
  assert.ok(cla, `no ClusterLoadAssignment ${cluster}`);
  return cla.resource.endpoints.flatMap((l) => l.lb_endpoints.map((e) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`)).sort();
}
