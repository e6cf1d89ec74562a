/**
 * Real tools the tests run (prometheus, tmux, nats-server) come from Debian: scripts/ensure-debian-tools.sh
 * installs the packages that are missing, so a fresh clone and CI need no step by hand.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ENSURE = path.resolve(__dirname, '../../../scripts/ensure-debian-tools.sh');
const ensured = new Set<string>();

/** Installs the Debian packages when missing (apt can take a minute or more: give the caller's hook a long timeout). */
export function ensureDebianTools(...packages: string[]): void {
  const need = packages.filter((p) => !ensured.has(p));
  if (need.length === 0) return;
  const r = spawnSync('bash', [ENSURE, ...need], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 540_000 });
  if (r.status !== 0) throw new Error(`scripts/ensure-debian-tools.sh ${need.join(' ')} failed (${r.status ?? r.signal})`);
  for (const p of need) ensured.add(p);
}
