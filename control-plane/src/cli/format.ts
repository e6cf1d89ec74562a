import type { ChangeResult } from '../store/config-store';

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
