import * as fs from 'node:fs';
import { stringify } from 'yaml';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Revision, RevisionMeta } from '../store/config-store';
import type { ProxyStatus } from '../discovery/proxy-status';
import type { RolloutReport } from '../discovery/rollout';
import { shortType } from '../discovery/rollout';
import type { ChangeAnswer } from '../api/api-server';
import { parseDuration } from '../../../shared/src/config/duration';
import { ApiClient } from './api-client';
import { ADMIN_TOKEN_FLAG, adminToken, API_CA_FLAG, apiTrust } from './admin-credential';
import { API_FLAG, intFlag, optStr, str } from '../../../shared/src/cli/args';
import type { FlagSpec, Parsed } from '../../../shared/src/cli/args';
import type { Command } from '../../../shared/src/cli/command';
import { formatChange, formatRollout, table } from './format';


const DRY_RUN = { name: 'dry-run', type: 'boolean' as const, help: 'validate and show the diff; store nothing. Warns (exit 3) about NACKs certain to come from connected proxies' };
const MESSAGE = { name: 'message', short: 'm', type: 'string' as const, value: 'TEXT', help: 'why: recorded with the revision' };
const AUTHOR = { name: 'author', type: 'string' as const, value: 'NAME', env: 'USER', default: 'cli', help: 'who: recorded with the revision' };
const EXPECT = { name: 'expect-revision', type: 'string' as const, value: 'N', help: 'fail unless N is still the current revision (optimistic locking)' };
/** The wait a bare --wait stands for. */
const DEFAULT_WAIT = '30s';
const WAIT = (dflt: boolean): FlagSpec => ({
  name: 'wait', type: 'string', value: 'DURATION', bare: DEFAULT_WAIT,
  help: `wait until every affected connected proxy has ACKed or NACKed the change, at most DURATION (bare --wait: ${DEFAULT_WAIT}; at most 10m). Exit 0 only if all ACKed, 3 if any NACKed, 4 if the wait ran out${dflt ? ` (default: --wait=${DEFAULT_WAIT})` : ' (default: do not wait)'}`,
});
const NO_WAIT: FlagSpec = { name: 'no-wait', type: 'boolean', help: 'answer as soon as the change is stored; do not wait for the proxies' };

/**
 * Exit codes of a change that was stored: every proxy ACKed (or none was affected), one NACKed,
 * or the wait ran out. A dry run exits 3 when a connected proxy is certain to NACK the change.
 */
export const EXIT_ACKED = 0;
export const EXIT_NACKED = 3;
export const EXIT_NOT_ALL_ACKED = 4;

/** The wait asked for on the command line, validated; undefined for none. */
function waitFlag(p: Parsed, byDefault: boolean): string | undefined {
  const w = optStr(p, 'wait');
  if (p.values['no-wait'] === true) {
    if (w !== undefined) throw new MeshError(ErrorCodes.VALIDATION, '--wait and --no-wait: give one or the other');
    return undefined;
  }
  if (w === undefined) return byDefault ? DEFAULT_WAIT : undefined;
  const ms = parseDuration(w);
  if (typeof ms !== 'number') throw new MeshError(ErrorCodes.VALIDATION, `--wait: ${ms.error}`);
  if (ms < 1 || ms > 600_000) throw new MeshError(ErrorCodes.VALIDATION, `--wait: must be from 1ms to 10m, got "${w}"`);
  if (p.values['dry-run'] === true) throw new MeshError(ErrorCodes.VALIDATION, '--wait: a dry run pushes nothing to wait for; drop --wait or --dry-run');
  return w;
}

/** Prints a change and its rollout; the exit code says whether every affected proxy ACKed. */
async function runChange(p: Parsed, out: (s: string) => void, method: string, path: string, extra: Record<string, string>, body: { text: string; type: string } | undefined, waitByDefault: boolean): Promise<number> {
  const wait = waitFlag(p, waitByDefault);
  const q = changeQuery(p, wait === undefined ? extra : { ...extra, wait });
  const waitMs = wait === undefined ? 0 : parseDuration(wait) as number;
  const r = await client(p, waitMs).call<ChangeAnswer>(method, `${path}${q}`, body, changeHeaders(p));
  out(formatChange(r));
  if (r.dryRun) {
    for (const w of r.warnings ?? []) out(`warning: ${w.nodeId} (${w.userAgent}) will reject ${shortType(w.typeUrl)} ${w.resource}: ${w.message}`);
    return (r.warnings ?? []).length > 0 ? EXIT_NACKED : EXIT_ACKED;
  }
  if (r.rolloutError !== undefined) { out(`warning: the change is stored, but its rollout cannot be followed: ${r.rolloutError}`); return EXIT_NOT_ALL_ACKED; }
  if (r.rollout === undefined || !r.changed) return EXIT_ACKED;
  out(formatRollout(r.rollout, wait !== undefined));
  return rolloutExit(r.rollout, wait !== undefined);
}

/** Without a wait, a stored change succeeds whatever the proxies have not yet said. */
function rolloutExit(r: RolloutReport, waited: boolean): number {
  if (r.state === 'NACKED') return EXIT_NACKED;
  if (!waited) return EXIT_ACKED;
  return r.state === 'ACKED' || r.state === 'NONE' ? EXIT_ACKED : EXIT_NOT_ALL_ACKED;
}

const OUTPUT = (dflt: string) => ({ name: 'output', short: 'o', type: 'string' as const, value: 'FORMAT', default: dflt, help: 'output format: table, yaml or json' });

/** An API client whose request timeout covers a server-side wait of `waitMs`. */
export function client(p: Parsed, waitMs = 0): ApiClient { return new ApiClient(str(p, 'api'), 30_000 + waitMs, adminToken(p), apiTrust(p)); }

function changeQuery(p: Parsed, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams(extra);
  if (p.values['dry-run'] === true) q.set('dryRun', 'true');
  const expected = intFlag(p, 'expect-revision', 0, 999_999_999);
  if (expected !== undefined) q.set('expectedRevision', String(expected));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

function changeHeaders(p: Parsed): Record<string, string> {
  const h: Record<string, string> = { 'x-skein-author': str(p, 'author') };
  const m = optStr(p, 'message');
  if (m !== undefined) h['x-skein-message'] = m;
  return h;
}

export function outputFormat(p: Parsed, allowed: string[]): string {
  const o = str(p, 'output');
  if (!allowed.includes(o)) throw new MeshError(ErrorCodes.VALIDATION, `--output: must be one of ${allowed.join(', ')}, got "${o}"`);
  return o;
}

export const apply: Command = {
  spec: {
    name: 'apply', usage: 'apply -f FILE [flags]', summary: 'Validate and apply config documents (YAML or JSON; several per file). Prints the diff.',
    flags: [{ name: 'file', short: 'f', type: 'string', value: 'FILE', help: "config file, or '-' for standard input (required)" }, API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, DRY_RUN,
      { name: 'replace', type: 'boolean', help: 'the file becomes the whole config: resources not in it are deleted (default: merge, upsert only)' }, MESSAGE, AUTHOR, EXPECT, WAIT(false), NO_WAIT],
    more: 'Examples:\n  skein apply -f mesh.yaml --dry-run\n  skein apply -f mesh.yaml -m "shift reviews to v2" --wait=1m',
  },
  async run(p, out) {
    const file = optStr(p, 'file');
    if (file === undefined) throw new MeshError(ErrorCodes.VALIDATION, '--file (-f) is required: the config file to apply, or - for stdin');
    let text: string;
    try { text = fs.readFileSync(file === '-' ? 0 : file, 'utf8'); } catch (e) { throw new MeshError(ErrorCodes.NOT_FOUND, `--file: cannot read ${file}: ${(e as Error).message}`); }
    return runChange(p, out, 'POST', '/v1/config', p.values['replace'] === true ? { mode: 'replace' } : {}, { text, type: 'application/yaml' }, false);
  },
};

export const del: Command = {
  spec: { name: 'delete', usage: 'delete KIND/NAME [flags]', summary: 'Delete one resource. Refused if anything still references it.', flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, DRY_RUN, MESSAGE, AUTHOR, EXPECT, WAIT(false), NO_WAIT] },
  async run(p, out) {
    const [ref] = p.positionals;
    const m = /^([A-Za-z]+)\/([a-z0-9-]+)$/.exec(ref ?? '');
    if (m === null || p.positionals.length !== 1) throw new MeshError(ErrorCodes.VALIDATION, 'expected one KIND/NAME, e.g. skein delete HTTPRoute/reviews');
    return runChange(p, out, 'DELETE', `/v1/config/${m[1]}/${m[2]}`, {}, undefined, false);
  },
};

export const get: Command = {
  spec: {
    name: 'get', usage: 'get [KIND[/NAME]] [flags]', summary: 'Show the current config (or an older revision), optionally one kind or one resource.',
    flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, { name: 'revision', type: 'string', value: 'N', help: 'show revision N instead of the current one' }, OUTPUT('yaml')],
  },
  async run(p, out) {
    const fmt = outputFormat(p, ['yaml', 'json', 'table']);
    const n = intFlag(p, 'revision', 0, 999_999_999);
    const rev = await client(p).call<Revision>('GET', `/v1/config${n === undefined ? '' : `?revision=${n}`}`);
    const [kind, name] = (p.positionals[0] ?? '').split('/');
    const docs = rev.resources.filter((r) => (!kind || r.kind === kind) && (!name || r.metadata.name === name));
    if (name && docs.length === 0) throw new MeshError(ErrorCodes.NOT_FOUND, `${p.positionals[0]} does not exist in revision ${rev.revision}`);
    if (fmt === 'json') out(JSON.stringify({ revision: rev.revision, resources: docs }, null, 2));
    else if (fmt === 'table') out(table(['KIND', 'NAME'], docs.map((d) => [d.kind, d.metadata.name])) + `\n(revision ${rev.revision})`);
    else out(`# revision ${rev.revision}\n${docs.map((d) => stringify(d)).join('---\n')}`);
    return 0;
  },
};

export const revisions: Command = {
  spec: { name: 'revisions', usage: 'revisions [flags]', summary: 'List config revisions, newest last, with who changed what and why.', flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, OUTPUT('table')] },
  async run(p, out) {
    const fmt = outputFormat(p, ['table', 'json']);
    const { revisions: list } = await client(p).call<{ revisions: RevisionMeta[] }>('GET', '/v1/revisions');
    if (fmt === 'json') { out(JSON.stringify(list, null, 2)); return 0; }
    const changes = (m: RevisionMeta) => [...m.summary.added.map((k) => `+${k}`), ...m.summary.changed.map((k) => `~${k}`), ...m.summary.removed.map((k) => `-${k}`)].join(' ');
    out(table(['REV', 'CREATED', 'AUTHOR', 'MESSAGE', 'CHANGES'], list.map((m) => [String(m.revision), m.createdAt, m.author, m.message, changes(m)])));
    return 0;
  },
};

export const rollback: Command = {
  spec: { name: 'rollback', usage: 'rollback REVISION [flags]', summary: "Make an older revision's config current again. This creates a new revision; history is never rewritten.", flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, DRY_RUN, MESSAGE, AUTHOR, EXPECT, WAIT(false), NO_WAIT] },
  async run(p, out) {
    const n = p.positionals[0];
    if (n === undefined || !/^\d+$/.test(n) || p.positionals.length !== 1) throw new MeshError(ErrorCodes.VALIDATION, 'expected one REVISION number, e.g. skein rollback 3');
    return runChange(p, out, 'POST', `/v1/revisions/${n}/rollback`, {}, undefined, false);
  },
};

export const canary: Command = {
  spec: {
    name: 'canary', usage: 'canary ROUTE SUBSET=WEIGHT... [flags]',
    summary: "Set a route's traffic split across its service's subsets. Weights are relative (weight / sum); 0 sends no traffic.",
    flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, { name: 'rule', type: 'string', value: 'NAME', help: 'only this rule of the route (default: every rule that already splits traffic, or the only rule)' }, DRY_RUN, MESSAGE, AUTHOR, EXPECT, WAIT(true), NO_WAIT],
    more: 'Waits by default until every affected proxy has ACKed or NACKed the new weights, and exits 0 only if all ACKed.\n\nExamples:\n  skein canary reviews v1=90 v2=10\n  skein canary GRPCRoute/greeter v1=0 v2=100 --dry-run\n  skein canary reviews v1=50 v2=50 --wait=2m',
  },
  async run(p, out) {
    const [route, ...pairs] = p.positionals;
    if (route === undefined || pairs.length === 0) throw new MeshError(ErrorCodes.VALIDATION, 'expected ROUTE SUBSET=WEIGHT..., e.g. skein canary reviews v1=90 v2=10');
    const weights: Record<string, number> = {};
    for (const pair of pairs) {
      const m = /^([a-z0-9-]+)=(\d+)$/.exec(pair);
      if (m === null) throw new MeshError(ErrorCodes.VALIDATION, `"${pair}": expected SUBSET=WEIGHT with a whole-number weight, e.g. v2=10`);
      if (weights[m[1]!] !== undefined) throw new MeshError(ErrorCodes.VALIDATION, `subset ${m[1]} is given twice`);
      weights[m[1]!] = Number(m[2]);
    }
    const rule = optStr(p, 'rule');
    const body = JSON.stringify({ route, weights, ...(rule === undefined ? {} : { rule }) });
    return runChange(p, out, 'POST', '/v1/canary', {}, { text: body, type: 'application/json' }, p.values['dry-run'] !== true);
  },
};

const SLOW: FlagSpec = { name: 'slow', type: 'boolean', help: 'only the proxies furthest behind (a change or subscription not ACKed, or NACKed), furthest first: how long, which type, the last NACK' };
const LIMIT: FlagSpec = { name: 'limit', type: 'string', value: 'N', help: 'with --slow: how many (default 10, at most 10000)' };

export const proxyStatus: Command = {
  spec: {
    name: 'proxy-status', usage: 'proxy-status [NODE_ID] [flags]',
    summary: 'Show every connected xDS client and whether it has ACKed the current config: SYNCED, STALE (sent, not yet ACKed) or NACKED (rejected, with its error). --slow: the proxies furthest behind.',
    flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, SLOW, LIMIT, OUTPUT('table')],
  },
  async run(p, out) {
    const fmt = outputFormat(p, ['table', 'json']);
    const slow = p.values['slow'] === true;
    const limit = intFlag(p, 'limit', 1, 10_000);
    if (limit !== undefined && !slow) throw new MeshError(ErrorCodes.VALIDATION, '--limit: only applies with --slow');
    const query = slow ? `?slow=true${limit === undefined ? '' : `&limit=${limit}`}` : '';
    const res = await client(p).call<{ revision: number; proxies: ProxyStatus[] }>('GET', `/v1/proxies${query}`);
    const node = p.positionals[0];
    const proxies = res.proxies.filter((x) => node === undefined || x.nodeId === node);
    if (fmt === 'json') { out(JSON.stringify({ revision: res.revision, proxies }, null, 2)); return 0; }
    if (slow) {
      if (proxies.length === 0) { out(`no proxy is behind (config revision ${res.revision})`); return 0; }
      const nackOf = (x: ProxyStatus) => { const t = x.types.find((y) => y.lastNack !== null && y.state === 'NACKED') ?? x.types.find((y) => y.lastNack !== null); return t?.lastNack ? `${shortType(t.typeUrl)} ${t.lastNack.at}: ${t.lastNack.message}` : '-'; };
      out(table(['NODE', 'BEHIND', 'TYPE', 'STATE', 'REVISION', 'USER AGENT', 'LAST NACK'], proxies.map((x) => [
        x.nodeId, x.behind === null ? '-' : `${x.behind.seconds.toFixed(1)}s`, x.behind === null ? '-' : shortType(x.behind.typeUrl), x.state, `${x.ackedRevision} of ${res.revision}`, x.userAgent, nackOf(x)])));
      out(`\n(the ${proxies.length} furthest behind; config revision ${res.revision})`);
      return 0;
    }
    if (proxies.length === 0) { out(node === undefined ? 'no xDS clients connected' : `no xDS client with node id ${node}`); return node === undefined ? 0 : 1; }
    const per = (x: ProxyStatus) => x.types.map((t) => `${shortType(t.typeUrl)}:${t.state}@${t.ackedRevision ?? '-'}`).join(' ');
    out(table(['NODE', 'STATE', 'REVISION', 'IDENTITY', 'USER AGENT', 'CONNECTED', 'TYPES'], proxies.map((x) => [x.nodeId, x.state, `${x.ackedRevision} of ${res.revision}`, identityColumn(x.identity), x.userAgent, x.connectedAt, per(x)])));
    for (const x of proxies) for (const t of x.types) {
      if (t.state === 'NACKED' && t.lastNack) out(`\n${x.nodeId} rejected ${shortType(t.typeUrl)} version ${t.lastNack.version}:\n  ${t.lastNack.message}`);
    }
    out(`\n(config revision ${res.revision})`);
    return 0;
  },
};

export const rollout: Command = {
  spec: {
    name: 'rollout', usage: 'rollout REVISION [flags]',
    summary: 'Show what the connected proxies did with a config revision: ACKed, NACKed (with their error), still pending, or disconnected.',
    flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, WAIT(false), OUTPUT('table')],
    more: 'Exit 0 when every affected proxy ACKed (or none was affected), 3 if any NACKed, 4 if some are still pending after --wait.\n\nExample:\n  skein rollout 14 --wait=1m',
  },
  async run(p, out) {
    const fmt = outputFormat(p, ['table', 'json']);
    const n = p.positionals[0];
    if (n === undefined || !/^\d{1,9}$/.test(n) || p.positionals.length !== 1) throw new MeshError(ErrorCodes.VALIDATION, 'expected one REVISION number, e.g. skein rollout 14');
    const wait = waitFlag(p, false);
    const r = await client(p, wait === undefined ? 0 : parseDuration(wait) as number).call<RolloutReport>('GET', `/v1/rollouts/${n}${wait === undefined ? '' : `?wait=${encodeURIComponent(wait)}`}`);
    out(fmt === 'json' ? JSON.stringify(r, null, 2) : formatRollout(r, wait !== undefined));
    return r.state === 'NACKED' ? EXIT_NACKED : r.complete ? EXIT_ACKED : EXIT_NOT_ALL_ACKED;
  },
};

export const endpoints: Command = {
  spec: { name: 'endpoints', usage: 'endpoints [flags]', summary: 'List live endpoint registrations (leases).', flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, OUTPUT('table')] },
  async run(p, out) {
    const fmt = outputFormat(p, ['table', 'json']);
    const res = await client(p).call<{ endpoints: { id: string; service: string; address: string; port: number; labels: Record<string, string>; health: string; identity?: string; expiresAt: string; node: string }[] }>('GET', '/v1/endpoints');
    if (fmt === 'json') { out(JSON.stringify(res, null, 2)); return 0; }
    // IDENTITY: the workload (namespace/service-account) that registered it over mTLS, i.e. its
    // sidecar; '-' for one an operator added over HTTP.
    out(table(['SERVICE', 'ADDRESS', 'LABELS', 'HEALTH', 'IDENTITY', 'NODE', 'EXPIRES'], res.endpoints.map((e) => [e.service, `${e.address}:${e.port}`, Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(','), e.health, e.identity === undefined ? '-' : identityColumn(e.identity), e.node, e.expiresAt])));
    return 0;
  },
};

/** The identity a proxy authenticated with, without the trust domain; plaintext streams say so. */
function identityColumn(id: string | undefined): string {
  if (id === undefined || id === '') return 'none (plaintext)';
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  return m === null ? id : `${m[1]}/${m[2]}`;
}
