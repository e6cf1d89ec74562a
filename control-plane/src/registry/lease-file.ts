import * as fs from 'node:fs';
import { writeFileAtomic } from '../../../shared/src/atomic-file';
import * as path from 'node:path';
import type { Logger } from '../../../shared/src/log';
import type { EndpointRegistry, Lease } from './endpoint-registry';

/**
 * Keeps the endpoint registry in `<dataDir>/endpoints.json`, so a control-plane restart does not
 * empty EDS while instances re-register. Written atomically (temp file, fsync, rename) whenever
 * membership changes; renewals alone do not write.
 */
export class LeaseFile {
  private readonly file: string;
  private scheduled = false;

  constructor(dataDir: string, private readonly registry: EndpointRegistry, private readonly log: Logger) {
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

  /** Saves on the next tick (bursts of changes write once). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.save(); });
  }

  save(): void {
    const leases = this.registry.list().map(({ expiresAt: _drop, ...l }) => l);
    try {
      writeFileAtomic(this.file, `${JSON.stringify({ leases })}\n`, 0o600);
    } catch (e) {
      this.log.error({ file: this.file, err: (e as Error).message }, 'cannot save the endpoint registry; a restart would lose registrations until instances re-register');
    }
  }
}
