/**
 * The workload certificates the control plane issued, for `skein check`: the latest per SPIFFE
 * ID, in memory (a restart forgets them; workloads renew at half their lifetime, so the record
 * fills again). Bounded: at most `maxIdentities`, the identity issued to longest ago dropped first.
 *
 * Latest per identity: when several instances share one identity (a reusable token, replicas of
 * a service), one instance renewing hides another that does not.
 */

/** One issued certificate: who, which, when valid, and how the caller proved who it was. */
export interface IssuedRecord {
  spiffeId: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  how: 'token' | 'renewal';
}

export const ISSUED_DEFAULTS = { maxIdentities: 10_000 } as const;

export class IssuedCertificates {
  /** Insertion order = least recently issued first. */
  private readonly bySpiffeId = new Map<string, IssuedRecord>();

  constructor(private readonly maxIdentities: number = ISSUED_DEFAULTS.maxIdentities) {}

  record(r: IssuedRecord): void {
    this.bySpiffeId.delete(r.spiffeId);
    this.bySpiffeId.set(r.spiffeId, r);
    if (this.bySpiffeId.size > this.maxIdentities) {
      const oldest = this.bySpiffeId.keys().next().value;
      if (oldest !== undefined) this.bySpiffeId.delete(oldest);
    }
  }

  /** The latest certificate of each identity. */
  latest(): IterableIterator<IssuedRecord> { return this.bySpiffeId.values(); }

  get size(): number { return this.bySpiffeId.size; }
}
