/**
 * Root rotation with overlap, one command (`skein ca rotate`), no dropped request:
 *
 *   trust  the new root is added to the trust bundle (SDS ROOTCA, the control plane's own TLS);
 *          the old root still issues. Waits until every proxy that takes ROOTCA has ACKed the
 *          bundle with both roots, so nobody can meet a certificate it does not trust.
 *   issue  the new root issues and comes first in the bundle. Sidecars see that their
 *          certificate is from a root that no longer issues and renew at once (jittered), so
 *          every live leaf moves to the new root within seconds; the old root stays trusted
 *          until the last leaf it ever issued has expired (persisted, so a restart keeps it).
 *   done   the old root leaves the bundle. `skein ca rotate --finish` ends the issue phase
 *          early, for an operator who has seen every workload renew (skein ca status).
 * Each step is persisted before it takes effect (certificate-authority.ts); a control plane
 * restarted mid-rotation carries on from the same phase.
 */
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { TYPE_URLS } from '../../../shared/src/xds/protos';
import type { ProxyStatus } from '../discovery/proxy-status';
import type { CertificateAuthority, RotationState } from './certificate-authority';

export interface RotationStatus {
  phase: 'none' | 'trust' | 'issue';
  state?: RotationState;
  /** What the next step waits for, in words. */
  waitingFor?: string;
}

export class RootRotation {
  private timer: TimerHandle | undefined;

  constructor(private readonly o: {
    ca: CertificateAuthority;
    clock: Clock;
    log: Logger;
    /** The connected proxies and the ROOTCA version they were sent and ACKed. */
    proxies: () => readonly ProxyStatus[];
    /** The trust bundle changed: rewrite the file, renew the serving certificate, push ROOTCA. */
    bundleChanged: () => Promise<void>;
    /** How often to look whether the next step may run (default 1s). */
    pollMs?: number;
  }) {
    if (o.ca.rotationState !== undefined) this.watch();
  }

  async begin(): Promise<RotationStatus> {
    const r = await this.o.ca.beginRotation();
    this.o.log.warn({ oldRoot: r.oldRootSerial, newRoot: r.newRootSerial }, 'root rotation started: the new root is trusted next to the old one');
    await this.o.bundleChanged();
    this.watch();
    return this.status();
  }

  /** Ends the issue phase now (the operator has seen every workload renew). */
  async finish(): Promise<RotationStatus> {
    this.o.ca.finishRotation();
    this.o.log.warn({}, 'root rotation finished by request: the old root left the trust bundle');
    this.timer?.cancel();
    this.timer = undefined;
    await this.o.bundleChanged();
    return this.status();
  }

  status(): RotationStatus {
    const r = this.o.ca.rotationState;
    if (r === undefined) return { phase: 'none' };
    if (r.phase === 'trust') {
      const behind = this.behind();
      return { phase: 'trust', state: r, waitingFor: behind.length === 0 ? 'nothing: the new root issues at the next check' : `${behind.length} proxies to ACK the trust bundle with both roots: ${behind.slice(0, 10).join(', ')}` };
    }
    return { phase: 'issue', state: r, waitingFor: `the old root's last certificate to expire at ${new Date(r.oldLeavesExpireBy ?? 0).toISOString()} (or skein ca rotate --finish)` };
  }

  close(): void { this.timer?.cancel(); this.timer = undefined; }

  private watch(): void {
    this.timer?.cancel();
    this.timer = this.o.clock.setTimer(this.o.pollMs ?? 1000, () => { void this.step().finally(() => { if (this.o.ca.rotationState !== undefined) this.watch(); }); });
  }

  /** Node ids of connected proxies that take ROOTCA and have not ACKed its current version. */
  private behind(): string[] {
    const out: string[] = [];
    for (const p of this.o.proxies()) {
      const t = p.types.find((x) => x.typeUrl === TYPE_URLS.SECRET);
      if (t === undefined) continue;
      if (t.sentVersion === null || t.ackedVersion !== t.sentVersion || t.state !== 'SYNCED') out.push(p.nodeId);
    }
    return out;
  }

  private async step(): Promise<void> {
    const r = this.o.ca.rotationState;
    if (r === undefined) return;
    try {
      if (r.phase === 'trust' && this.behind().length === 0) {
        const s = this.o.ca.switchIssuer();
        this.o.log.warn({ newRoot: s.newRootSerial, oldLeavesExpireBy: new Date(s.oldLeavesExpireBy ?? 0).toISOString() }, 'root rotation: every proxy trusts the new root; it issues from now on');
        await this.o.bundleChanged();
      } else if (r.phase === 'issue' && this.o.clock.now() >= (r.oldLeavesExpireBy ?? 0)) {
        this.o.ca.finishRotation();
        this.o.log.warn({}, 'root rotation finished: the old root\'s certificates have all expired; it left the trust bundle');
        await this.o.bundleChanged();
      }
    } catch (e) {
      this.o.log.error({ err: e }, 'root rotation step failed; retrying');
    }
  }
}
