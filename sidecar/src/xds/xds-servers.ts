/**
 * The control planes a sidecar may get its config from (--xds): a comma-separated list of
 * host:port, each an IP or a DNS name. A name stands for every address it resolves to; the list
 * is resolved again each time the client has tried every address of the previous round.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';

export interface XdsServer { host: string; port: number }

/** Parses `a:1,b:2,[::1]:3`; throws a VALIDATION MeshError naming `flag` and the bad entry. */
export function parseXdsServers(list: string, flag = '--xds'): XdsServer[] {
  const entries = list.split(',').map((e) => e.trim());
  if (entries.length === 0 || entries.some((e) => e === '')) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: give one or more HOST:PORT separated by commas, got "${list}"`);
  return entries.map((e) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(e);
    const port = m === null ? NaN : Number(m[3]);
    if (m === null || !(port >= 1 && port <= 65535)) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: "${e}" is not HOST:PORT (an IPv6 address goes in brackets)`);
    return { host: m[1] ?? m[2]!, port };
  });
}

/** host:port as a gRPC target (IPv6 in brackets). */
export function targetOf(host: string, port: number): string { return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`; }

/** The targets of one round, without a DNS lookup when every host is an IP; else undefined. */
export function literalTargets(servers: readonly XdsServer[]): string[] | undefined {
  return servers.every((s) => net.isIP(s.host) !== 0) ? servers.map((s) => targetOf(s.host, s.port)) : undefined;
}

/** The targets of one round: each name replaced by every address it resolves to, in order (a name that does not resolve stays, so the attempt fails and the round goes on). */
export async function resolveTargets(servers: readonly XdsServer[]): Promise<string[]> {
  const out: string[] = [];
  for (const s of servers) {
    if (net.isIP(s.host) !== 0) { out.push(targetOf(s.host, s.port)); continue; }
    try {
      const addrs = await dns.promises.lookup(s.host, { all: true });
      if (addrs.length === 0) out.push(targetOf(s.host, s.port));
      for (const a of addrs) out.push(targetOf(a.address, s.port));
    } catch {
      out.push(targetOf(s.host, s.port));
    }
  }
  return [...new Set(out)];
}
