import * as fs from 'node:fs';
import { writeFileAtomic } from '../../../shared/src/atomic-file';
import * as path from 'node:path';
import type { Logger } from '../../../shared/src/log';
import { systemClock } from '../../../shared/src/clock';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import type { EndpointRegistry, Lease } from './endpoint-registry';

/**
 * How often, at most, the registry is written (ms). A write is the whole registry with an fsync:
 * under churn (a rollout, autoscaling) writing on every change would cost more than serving it.
 * A crash loses at most this much of registrations, and instances re-register within a TTL.
 */
export const LEASE_SAVE_INTERVAL_MS = 1000;

/**
 * Keeps the endpoint registry in `<dataDir>/endpoints.json`, so a control-plane restart does not
 * empty EDS while instances re-register. Written atomically (temp file, fsync, rename) when
 * membership changes, at most once per LEASE_SAVE_INTERVAL_MS (the first change after a quiet
 * interval at once, later ones together at the interval's end); renewals alone do not write.
 */
export class LeaseFile {
  private readonly file: string;
  private timer: TimerHandle | undefined;
  private lastSaveAt = -Infinity;

  constructor(dataDir: string, private readonly registry: EndpointRegistry, private readonly log: Logger, private readonly clock: Clock = systemClock) {
    this.file = path.join(dataDir, 'endpoints.json');
  }

  /** Loads saved leases into the registry. A missing file is an empty registry; a corrupt one is logged and ignored. */
  load(): void {
    let saved: unknown;
    try {
      saved = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ file: this.file, err: (e as Error).message }, 'endpoint registry file is unreadable; starting with no registered endpoints');
      return;
    }
    const leases = (saved as { leases?: unknown }).leases;
    if (!Array.isArray(leases)) { this.log.error({ file: this.file }, 'endpoint registry file has no leases list; ignoring it'); return; }
    const r = this.registry.restore(leases as Omit<Lease, 'expiresAt'>[]);
    if (r.skipped.length > 0) this.log.warn({ skipped: r.skipped }, 'some saved endpoints were invalid and were not restored');
    this.log.info({ restored: r.restored }, 'restored endpoint leases; each has one TTL to renew');
  }

  /** Saves soon: on the next turn of the clock, or at the end of the interval since the last save. */
  schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = this.clock.setTimer(Math.max(0, this.lastSaveAt + LEASE_SAVE_INTERVAL_MS - this.clock.now()), () => { this.timer = undefined; this.save(); });
  }

  /** Saves now (a scheduled save is then not needed). */
  save(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.lastSaveAt = this.clock.now();
    const leases = this.registry.list().map(({ expiresAt: _drop, ...l }) => l);
    try {
      writeFileAtomic(this.file, `${JSON.stringify({ leases })}\n`, 0o600);
    } catch (e) {
      this.log.error({ file: this.file, err: (e as Error).message }, 'cannot save the endpoint registry; a restart would lose registrations until instances re-register');
    }
  }
}
