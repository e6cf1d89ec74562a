/** Proxies that have rejected their config, or not answered it, for more than a minute. */
import type { ProxyStatus, TypeStatus } from '../discovery/proxy-status';
import { shortType } from '../discovery/rollout';
import type { CheckContext, Finding } from './finding';
import { iso, roughDuration } from './finding';

export const PROXY_CHECK_LIMITS = { stuckAfterMs: 60_000 } as const;

/**
 * Since when a type has been in its state (NACKED or STALE), from what proxy-status shows:
 * - NACKED: since its NACK (lastNack.at) of the response it was last sent; lastNack alone means
 *   nothing, as it is kept after later ACKs;
 * - STALE, a response sent and not answered: since that response was sent (sentAt);
 * - STALE, all it was sent ACKed but a newer push not out yet: no earlier than the later of its
 *   last send and last ACK (a lower bound on how long, so never a false alarm); never sent
 *   anything: since the stream connected.
 * Undefined when SYNCED.
 */
export function stateSince(t: TypeStatus, connectedAt: string): number | undefined {
  if (t.state === 'NACKED') return t.lastNack === null ? undefined : Date.parse(t.lastNack.at);
  if (t.state !== 'STALE') return undefined;
  if (t.sentVersion !== null && t.ackedVersion !== t.sentVersion) return Date.parse(t.sentAt!);
  const marks = [t.sentAt, t.ackedAt].filter((x): x is string => x !== null).map(Date.parse);
  return marks.length === 0 ? Date.parse(connectedAt) : Math.max(...marks);
}

/** One error per proxy with any type NACKED or STALE for longer than a minute. */
export function stuckProxies(ctx: CheckContext): Finding[] {
  const out: Finding[] = [];
  for (const p of ctx.proxies) {
    const stuck = p.types.map((t) => ({ t, since: stateSince(t, p.connectedAt) }))
      .filter((x): x is { t: TypeStatus; since: number } => x.since !== undefined && ctx.now - x.since > PROXY_CHECK_LIMITS.stuckAfterMs);
    if (stuck.length === 0) continue;
    out.push({
      severity: 'error', check: 'proxy-sync', subject: p.nodeId,
      what: `proxy ${p.nodeId} (${describe(p)}) is on revision ${p.ackedRevision} of ${p.currentRevision}: ${stuck.map(({ t, since }) => typeLine(t, since, ctx.now)).join('; ')}`,
      fix: stuck.some(({ t }) => t.state === 'NACKED')
        ? `see skein proxy-status ${p.nodeId}; fix what it rejects and apply again${p.ackedRevision > 0 ? `, or roll back to the revision it is on (skein rollback ${p.ackedRevision})` : ''}`
        : `see skein proxy-status ${p.nodeId}; check that the proxy is alive and reading its xDS stream (its logs, its connection to the control plane); restarting it resyncs it`,
    });
  }
  return out;
}

function describe(p: ProxyStatus): string {
  return `${p.userAgent || 'unknown user agent'}, ${p.identity === '' ? 'plaintext' : p.identity}`;
}

function typeLine(t: TypeStatus, since: number, now: number): string {
  const how = `since ${iso(since)} (${roughDuration(now - since)})`;
  if (t.state === 'NACKED') return `${shortType(t.typeUrl)} NACKED ${how}: revision ${t.sentRevision ?? '?'} rejected with "${t.lastNack?.message ?? ''}"`;
  return `${shortType(t.typeUrl)} STALE ${how}: ${t.sentVersion !== null && t.ackedVersion !== t.sentVersion ? `revision ${t.sentRevision ?? '?'} sent, not ACKed` : 'a newer config not yet taken'}`;
}
