import type { ChangeResult } from '../store/config-store';
import type { RolloutReport } from '../discovery/rollout';

/** Renders an apply / delete / rollback / canary result as a readable diff. */
export function formatChange(r: ChangeResult): string {
  const lines: string[] = [];
  for (const d of r.diff) {
    if (d.op === 'added') lines.push(`+ ${d.key}`);
    else if (d.op === 'removed') lines.push(`- ${d.key}`);
    else {
      lines.push(`~ ${d.key}`);
      for (const f of d.fields ?? []) {
        if (f.op === 'changed') lines.push(`    ${f.path}: ${show(f.from)} -> ${show(f.to)}`);
        else if (f.op === 'added') lines.push(`    + ${f.path}: ${show(f.to)}`);
        else lines.push(`    - ${f.path}: ${show(f.from)}`);
      }
    }
  }
  if (r.dryRun) lines.push(r.changed ? `dry run: would create revision ${r.revision + 1} (nothing was stored)` : 'dry run: no change');
  else lines.push(r.changed ? `applied: revision ${r.revision}` : `no change: revision ${r.revision} is current`);
  return lines.join('\n');
}

/**
 * Renders a rollout: one summary line, then one line per proxy that has not ACKed (NACKED with
 * its user agent and error, PENDING and GONE with their types). ACKed proxies are counted only.
 */
export function formatRollout(r: RolloutReport, waited: boolean): string {
  const lines = [r.summary + (r.waitedMs === undefined || r.state === 'NONE' ? '' : ` (waited ${(r.waitedMs / 1000).toFixed(1)}s)`)];
  for (const x of r.proxies) {
    if (x.state === 'ACKED') continue;
    const types = x.types.filter((t) => t.state === x.state);
    if (x.state === 'NACKED') for (const t of types) lines.push(`  NACKED   ${x.nodeId} (${x.userAgent}) rejected ${t.type}: ${t.error ?? ''}`);
    else lines.push(`  ${x.state.padEnd(8)} ${x.nodeId} (${x.userAgent}): ${types.map((t) => t.type).join(', ')}`);
  }
  if (r.state === 'NACKED') lines.push('proxies that NACKed keep routing on the config they had; fix the change or roll back (skein rollback N)');
  else if (r.timedOut === true) lines.push(`the wait ran out with ${r.counts.pending} prox${r.counts.pending === 1 ? 'y' : 'ies'} still pending (see skein proxy-status)`);
  else if (!waited && r.state === 'PENDING') lines.push(`not waiting for the proxies; follow with: skein rollout ${r.revision} --wait`);
  return lines.join('\n');
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? 'undefined' : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A fixed-width text table. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
