/** `skein token …` (join tokens for workloads) and `skein ca …` (the mesh's certificate authority). */
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { API_FLAG, optStr } from '../../../shared/src/cli/args';
import type { Command } from '../../../shared/src/cli/command';
import { ADMIN_TOKEN_FLAG, API_CA_FLAG } from './admin-credential';
import { client, outputFormat } from './config-commands';
import { table } from './format';

interface TokenJson { id: string; service: string; namespace: string; serviceAccount: string; reusable: boolean; createdAt: string; expiresAt: string; usedAt?: string; token?: string }

const OUTPUT = { name: 'output', short: 'o', type: 'string' as const, value: 'FORMAT', default: 'table', help: 'output format: table or json (create: the bare token, or json)' };

export const token: Command = {
  spec: {
    name: 'token', usage: 'token create --service NAME [flags] | token list | token revoke ID',
    summary: 'Join tokens: how a workload proves which service it is before it has a certificate. Needs the admin token.\n' +
      'create prints the token alone on stdout (it is shown once; only its hash is stored), so it can go straight to a file\n' +
      'for the sidecar\'s --token-file. A token is single-use unless --reusable, and expires after --ttl.',
    flags: [
      API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG,
      { name: 'service', type: 'string', value: 'NAME', help: 'create: the service the token binds a workload to (required)' },
      { name: 'namespace', type: 'string', value: 'NS', default: 'default', help: 'create: the namespace of the identity' },
      { name: 'service-account', type: 'string', value: 'SA', help: 'create: the service account of the identity (default: the service name)' },
      { name: 'ttl', type: 'string', value: 'DURATION', default: '1h', help: 'create: how long the token can be used (1s to 720h, i.e. 30 days)' },
      { name: 'reusable', type: 'boolean', help: 'create: many instances may use it until it expires (default: single-use)' },
      OUTPUT,
    ],
    more: 'Examples:\n  skein token create --service reviews > reviews.token\n  skein token create --service reviews --ttl 24h --reusable\n  skein token list\n  skein token revoke 3f2a9c0d1e4b',
  },
  async run(p, out) {
    const [verb, ...rest] = p.positionals;
    const fmt = outputFormat(p, ['table', 'json']);
    const api = client(p);
    if (verb === 'create' && rest.length === 0) {
      const service = optStr(p, 'service');
      if (service === undefined) throw new MeshError(ErrorCodes.VALIDATION, '--service is required: the service the token binds a workload to');
      const sa = optStr(p, 'service-account');
      const body = { service, namespace: optStr(p, 'namespace') ?? 'default', ...(sa === undefined ? {} : { serviceAccount: sa }), ttl: optStr(p, 'ttl') ?? '1h', reusable: p.values.reusable === true };
      const t = await api.call<TokenJson>('POST', '/v1/tokens', { text: JSON.stringify(body), type: 'application/json' });
      if (fmt === 'json') { out(JSON.stringify(t, null, 2)); return 0; }
      out(t.token!);
      process.stderr.write(`join token ${t.id} for ${t.serviceAccount}.${t.namespace} (service ${t.service}), ${t.reusable ? 'reusable' : 'single-use'}, expires ${t.expiresAt}\n`);
      return 0;
    }
    if (verb === 'list' && rest.length === 0) {
      const { tokens } = await api.call<{ tokens: TokenJson[] }>('GET', '/v1/tokens');
      if (fmt === 'json') { out(JSON.stringify({ tokens }, null, 2)); return 0; }
      out(table(['ID', 'SERVICE', 'IDENTITY', 'USE', 'EXPIRES', 'USED'], tokens.map((t) => [t.id, t.service, `${t.serviceAccount}.${t.namespace}`, t.reusable ? 'reusable' : 'single', t.expiresAt, t.usedAt ?? '-'])));
      return 0;
    }
    if (verb === 'revoke' && rest.length === 1) {
      await api.call('DELETE', `/v1/tokens/${encodeURIComponent(rest[0]!)}`);
      out(`revoked join token ${rest[0]}`);
      return 0;
    }
    throw new MeshError(ErrorCodes.VALIDATION, 'expected: token create --service NAME | token list | token revoke ID');
  },
};

interface CaStatus {
  trustDomain: string; source: string; subject: string; notAfter: string; trustBundle: string;
  rotation: { phase: 'none' | 'trust' | 'issue'; startedAt?: string; oldRootSerial?: string; newRootSerial?: string; switchedAt?: string; oldLeavesExpireBy?: string; waitingFor?: string };
}

export const ca: Command = {
  spec: {
    name: 'ca', usage: 'ca status | ca rotate [--finish] [flags]',
    summary: 'Show the mesh certificate authority (trust domain, where the CA came from, its expiry, a root rotation in progress),\n' +
      'or rotate its root with overlap: `ca rotate` trusts a new root next to the old one; once every proxy has it, the new\n' +
      'root issues and sidecars renew from it; the old root leaves the trust bundle when its last certificate expires,\n' +
      'or at once with `ca rotate --finish`. `ca status` shows the phase and what it waits for.',
    flags: [API_FLAG, ADMIN_TOKEN_FLAG, API_CA_FLAG, { name: 'finish', type: 'boolean', help: 'ca rotate: end the rotation now, removing the old root (when every workload has renewed). Default: off' }, { ...OUTPUT, help: 'output format: table or json' }],
  },
  async run(p, out) {
    const fmt = outputFormat(p, ['table', 'json']);
    const verb = p.positionals[0];
    if (p.positionals.length !== 1 || (verb !== 'status' && verb !== 'rotate')) throw new MeshError(ErrorCodes.VALIDATION, 'expected: ca status, or ca rotate [--finish]');
    if (verb === 'status' && p.values['finish'] === true) throw new MeshError(ErrorCodes.VALIDATION, '--finish goes with ca rotate');
    const s = verb === 'status'
      ? await client(p).call<CaStatus>('GET', '/v1/ca')
      : await client(p).call<CaStatus>('POST', '/v1/ca/rotate', { text: JSON.stringify(p.values['finish'] === true ? { finish: true } : {}), type: 'application/json' });
    if (fmt === 'json') { out(JSON.stringify(s, null, 2)); return 0; }
    out(table(['TRUST DOMAIN', 'SOURCE', 'SUBJECT', 'EXPIRES', 'ROTATION'], [[s.trustDomain, s.source, s.subject, s.notAfter, s.rotation.phase]]));
    if (s.rotation.phase !== 'none') out(`rotation: ${s.rotation.phase} phase since ${s.rotation.switchedAt ?? s.rotation.startedAt}; waiting for ${s.rotation.waitingFor}`);
    return 0;
  },
};
