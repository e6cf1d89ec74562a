/**
 * Everything the control plane needs to hand out and check identities, opened from its data
 * dir at start: the certificate authority, the join tokens and the admin token.
 */
import type { Clock } from '../../../shared/src/clock';
import { checkTrustDomain, DEFAULT_TRUST_DOMAIN } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity } from '../../../shared/src/identity/spiffe';
import { AdminToken } from './admin-token';
import { CertificateAuthority } from './certificate-authority';
import { JoinTokenStore } from './join-tokens';

export interface IdentityOptions {
  dataDir: string;
  clock: Clock;
  /** Default skein.local. */
  trustDomain?: string;
  /** A plugged CA (PEM chain up to the root) and its key; default: a root generated in <dataDir>/ca. */
  caCertFile?: string;
  caKeyFile?: string;
  /** Default 24h. */
  workloadCertTtlMs?: number;
}

export class MeshIdentity {
  private constructor(readonly ca: CertificateAuthority, readonly tokens: JoinTokenStore, readonly admin: AdminToken) {}

  static async open(opts: IdentityOptions): Promise<MeshIdentity> {
    const trustDomain = checkTrustDomain(opts.trustDomain ?? DEFAULT_TRUST_DOMAIN, '--trust-domain');
    const ca = await CertificateAuthority.open({
      dataDir: opts.dataDir, trustDomain, clock: opts.clock,
      ...(opts.caCertFile === undefined ? {} : { caCertFile: opts.caCertFile }),
      ...(opts.caKeyFile === undefined ? {} : { caKeyFile: opts.caKeyFile }),
      ...(opts.workloadCertTtlMs === undefined ? {} : { workloadTtlMs: opts.workloadCertTtlMs }),
    });
    return new MeshIdentity(ca, JoinTokenStore.open(opts.dataDir, opts.clock), AdminToken.open(opts.dataDir));
  }

  /** The workload identity a join token's binding stands for, in this mesh's trust domain. */
  identityOf(binding: { namespace: string; serviceAccount: string }): WorkloadIdentity {
    return { trustDomain: this.ca.trustDomain, namespace: binding.namespace, serviceAccount: binding.serviceAccount };
  }
}
