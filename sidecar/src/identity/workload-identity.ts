/**
 * The sidecar's workload identity: a key made here (it never leaves this process), a certificate
 * for spiffe://<td>/ns/<namespace>/sa/<service-account> from the control plane's CA, renewed
 * before it expires (RotatingIdentity).
 *
 * - The first certificate is bought with the join token (--token-file) over TLS, trusting the
 *   control plane through --xds-ca-file (its trust bundle); the control plane is believed only
 *   if its certificate carries the control plane's SPIFFE ID.
 * - Renewals authenticate with the current certificate; the token is not needed again. Each
 *   renewal makes a fresh key. The Sign call itself is shared/src/grpc/certificate-client.ts,
 *   which `skein cert issue|renew` uses too.
 * - `controlPlaneCredentials()` is the mTLS the xDS stream and endpoint registration use; it
 *   picks up each renewed certificate for its next handshake.
 */
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { spiffeId } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity as Identity } from '../../../shared/src/identity/spiffe';
import { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import type { IssuedIdentity } from '../../../shared/src/identity/rotating-identity';
import { controlPlaneTls, controlPlaneVerifyOptions, readJoinTokenFile, readTrustBundleFile, requestCertificate } from '../../../shared/src/grpc/certificate-client';

export interface WorkloadIdentityOptions {
  /**
   * host:port of the control planes' TLS xDS ports (--xds, in order). A Sign call that cannot
   * reach one (unreachable, timed out) goes to the next, which is kept for the next renewal:
   * replicas sharing the mesh CA all sign a renewal (it is authenticated by the current
   * certificate). A refusal (bad token, not allowed) does not move on.
   */
  servers: readonly string[];
  identity: Identity;
  /** File holding the join token (skein token create). */
  tokenFile: string;
  /** PEM roots to verify the control plane with before this workload has its own trust bundle. */
  caFile: string;
  clock: Clock;
  log: Logger;
  /** Deadline of one Sign call. Default 10s. */
  signTimeoutMs?: number;
  /** Renewal time as a fraction of the lifetime, and its jitter (defaults 0.5 and 0.1: RotatingIdentity). */
  renewAt?: number;
  renewJitter?: number;
}

export class WorkloadIdentity {
  readonly rotating: RotatingIdentity;
  readonly spiffeId: string;
  private readonly token: string;
  private readonly bootstrapCa: Buffer;
  private readonly verify: grpc.VerifyOptions;
  /** The control plane the last Sign call reached (an index into `servers`). */
  private current = 0;

  private constructor(private readonly o: WorkloadIdentityOptions) {
    this.spiffeId = spiffeId(o.identity);
    this.token = readJoinTokenFile(o.tokenFile, '--token-file');
    this.bootstrapCa = readTrustBundleFile(o.caFile, '--xds-ca-file');
    this.verify = controlPlaneVerifyOptions(o.identity.trustDomain);
    this.rotating = new RotatingIdentity({
      issue: () => this.issue(), clock: o.clock, log: o.log, what: 'workload',
      ...(o.renewAt !== undefined ? { renewAt: o.renewAt } : {}), ...(o.renewJitter !== undefined ? { jitter: o.renewJitter } : {}),
    });
  }

  /** Gets the first certificate; fails (with the control plane's reason) if the token is refused. */
  static async start(o: WorkloadIdentityOptions): Promise<WorkloadIdentity> {
    const w = new WorkloadIdentity(o);
    const id = await w.rotating.start();
    o.log.info({ spiffeId: id.spiffeId, serial: id.serial, notAfter: new Date(id.notAfter).toISOString() }, 'workload certificate issued');
    return w;
  }

  /** mTLS to the control plane with the current certificate; checks the control plane's SPIFFE ID. */
  controlPlaneCredentials(): grpc.ChannelCredentials {
    return grpc.experimental.createCertificateProviderChannelCredentials(this.rotating.provider, this.rotating.provider, this.verify);
  }

  close(): void { this.rotating.close(); }

  private async issue(): Promise<IssuedIdentity> {
    const servers = this.o.servers;
    let lastErr: unknown;
    for (let i = 0; i < servers.length; i++) {
      const at = (this.current + i) % servers.length;
      try {
        const id = await this.signAt(servers[at]!);
        if (at !== this.current) this.o.log.warn({ from: servers[this.current], to: servers[at] }, 'certificate signing moved to another control plane (the previous one cannot be reached)');
        this.current = at;
        return id;
      } catch (e) {
        if (!(e instanceof MeshError) || e.code !== ErrorCodes.UPSTREAM_CONNECT_FAILURE) throw e;
        lastErr = e;
      }
    }
    throw lastErr;
  }

  private signAt(server: string): Promise<IssuedIdentity> {
    const renewing = this.rotating.issued;
    return requestCertificate({
      server, spiffeId: this.spiffeId,
      credentials: renewing ? this.controlPlaneCredentials() : controlPlaneTls(this.bootstrapCa, this.o.identity.trustDomain),
      ...(renewing ? {} : { token: this.token }),
      ...(this.o.signTimeoutMs === undefined ? {} : { timeoutMs: this.o.signTimeoutMs }),
      how: renewing ? 'renewing with the current certificate' : `with the join token from --token-file ${this.o.tokenFile}`,
    });
  }

}
