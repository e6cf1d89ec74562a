/**
 * skein.identity.v1.Certificates/Sign (proto/skein/identity/v1/certificates.proto), served on the
 * control plane's gRPC port next to ADS. The caller is authenticated first, then the CA signs
 * only that caller's own identity:
 *   - a join token (`authorization: Bearer skein-jt.…` metadata) for the first certificate;
 *   - its current workload certificate (TLS client certificate) to renew.
 * Every issue and every refusal is logged with the identity and the reason; tokens and keys never are.
 * Every issue is also recorded (`issued`: the latest per identity, in memory) for `skein check`.
 */
import * as grpc from '@grpc/grpc-js';
import { asMeshError, ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { spiffeId } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity } from '../../../shared/src/identity/spiffe';
import { callerIdentity, CERTIFICATES_SERVICE, durationMs, grpcError, skeinService } from '../../../shared/src/grpc/skein-services';
import type { SignRequest, SignResponse } from '../../../shared/src/grpc/skein-services';
import type { MeshIdentity } from './mesh-identity';
import { IssuedCertificates } from './issued-certificates';

/** How the caller proved who it is; `token` when by a join token, used up only once a certificate is issued. */
interface Caller { identity: WorkloadIdentity; via: string; token?: string }

export class CertificateService {
  /** The latest certificate issued to each identity. */
  readonly issued = new IssuedCertificates();

  constructor(private readonly id: MeshIdentity, private readonly log: Logger) {}

  register(server: grpc.Server): void {
    server.addService(skeinService(CERTIFICATES_SERVICE).service, {
      Sign: (call: grpc.ServerUnaryCall<SignRequest, SignResponse>, cb: grpc.sendUnaryData<SignResponse>) => { void this.sign(call, cb); },
    });
  }

  private async sign(call: grpc.ServerUnaryCall<SignRequest, SignResponse>, cb: grpc.sendUnaryData<SignResponse>): Promise<void> {
    const peer = call.getPeer();
    let caller: Caller | undefined;
    try {
      caller = this.authenticate(call);
      const ttlMs = durationMs(call.request.ttl, 'ttl');
      const issued = await this.id.ca.sign(call.request.csr_pem ?? '', caller.identity, ttlMs);
      // A refused CSR does not burn a single-use token; a token used by a concurrent call while
      // this one was signing is refused here, and this certificate is never sent.
      if (caller.token !== undefined) this.id.tokens.redeem(caller.token);
      this.issued.record({ spiffeId: issued.spiffeId, serial: issued.serial, notBefore: issued.notBefore, notAfter: issued.notAfter, how: caller.token === undefined ? 'renewal' : 'token' });
      this.log.info({ spiffeId: issued.spiffeId, serial: issued.serial, notAfter: new Date(issued.notAfter).toISOString(), via: caller.via, peer }, 'workload certificate issued');
      cb(null, {
        spiffe_id: issued.spiffeId, cert_chain_pem: issued.certChainPem, trust_bundle_pem: issued.trustBundlePem,
        not_before_ms: String(issued.notBefore), not_after_ms: String(issued.notAfter), serial: issued.serial,
      });
    } catch (e) {
      const err = asMeshError(e);
      const who = caller === undefined ? {} : { spiffeId: spiffeId(caller.identity), via: caller.via };
      if (err.code === ErrorCodes.INTERNAL) this.log.error({ err: e, peer, ...who }, 'certificate signing failed');
      else this.log.warn({ peer, ...who, code: err.code, reason: err.message }, 'certificate request refused');
      cb(grpcError(err));
    }
  }

  /** The caller's certificate (renewal) first, else its join token; neither is an error. */
  private authenticate(call: grpc.ServerUnaryCall<SignRequest, SignResponse>): Caller {
    const identity = callerIdentity(call, this.id.ca.trustDomain);
    if (identity !== undefined) return { identity, via: `certificate ${call.getAuthContext().sslPeerCertificate!.serialNumber}` };
    const auth = call.metadata.get('authorization')[0];
    if (typeof auth !== 'string') throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'no credential: send a join token (authorization: Bearer skein-jt.…) or renew with the current certificate');
    const m = /^Bearer\s+(\S+)$/i.exec(auth.trim());
    if (m === null) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'authorization: expected "Bearer <join token>"');
    const binding = this.id.tokens.check(m[1]!);
    return { identity: this.id.identityOf(binding), via: `join token for service ${binding.service}`, token: m[1]! };
  }
}
