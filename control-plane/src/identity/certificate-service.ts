/**
 * skein.identity.v1.Certificates/Sign (proto/skein/identity/v1/certificates.proto), served on the
 * control plane's gRPC port next to ADS. The caller is authenticated first, then the CA signs
 * only that caller's own identity:
 *   - a join token (`authorization: Bearer skein-jt.…` metadata) for the first certificate;
 *   - its current workload certificate (TLS client certificate) to renew.
 * Every issue and every refusal is logged with the identity and the reason; tokens and keys never are.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { asMeshError, ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { ErrorCode } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { PROTO_DIR } from '../../../shared/src/paths';
import { parseSpiffeId, spiffeId } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity } from '../../../shared/src/identity/spiffe';
import type { MeshIdentity } from './mesh-identity';

export interface SignRequest { csr_pem?: string; ttl?: { seconds?: string; nanos?: number } }
export interface SignResponse { spiffe_id: string; cert_chain_pem: string; trust_bundle_pem: string; not_before_ms: string; not_after_ms: string; serial: string }

let definition: grpc.ServiceDefinition | undefined;

/** The grpc-js definition of skein.identity.v1.Certificates (also used by clients). */
export function certificatesServiceDefinition(): grpc.ServiceDefinition {
  if (definition !== undefined) return definition;
  const pkg = protoLoader.loadSync(path.join(PROTO_DIR, 'skein/identity/v1/certificates.proto'), { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const ctor = (grpc.loadPackageDefinition(pkg) as unknown as { skein: { identity: { v1: { Certificates: grpc.ServiceClientConstructor } } } }).skein.identity.v1.Certificates;
  definition = ctor.service;
  return definition;
}

/** How the caller proved who it is; `token` when by a join token, used up only once a certificate is issued. */
interface Caller { identity: WorkloadIdentity; via: string; token?: string }

export class CertificateService {
  constructor(private readonly id: MeshIdentity, private readonly log: Logger) {}

  register(server: grpc.Server): void {
    server.addService(certificatesServiceDefinition(), {
      Sign: (call: grpc.ServerUnaryCall<SignRequest, SignResponse>, cb: grpc.sendUnaryData<SignResponse>) => { void this.sign(call, cb); },
    });
  }

  private async sign(call: grpc.ServerUnaryCall<SignRequest, SignResponse>, cb: grpc.sendUnaryData<SignResponse>): Promise<void> {
    const peer = call.getPeer();
    let caller: Caller | undefined;
    try {
      caller = this.authenticate(call);
      const ttlMs = durationMs(call.request.ttl);
      const issued = await this.id.ca.sign(call.request.csr_pem ?? '', caller.identity, ttlMs);
      // A refused CSR does not burn a single-use token; a token used by a concurrent call while
      // this one was signing is refused here, and this certificate is never sent.
      if (caller.token !== undefined) this.id.tokens.redeem(caller.token);
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
      cb({ code: grpcStatusOf(err.code), details: `${err.code}: ${err.message}` });
    }
  }

  /** The caller's certificate (renewal) first, else its join token; neither is an error. */
  private authenticate(call: grpc.ServerUnaryCall<SignRequest, SignResponse>): Caller {
    const cert = call.getAuthContext().sslPeerCertificate;
    if (cert !== undefined) {
      const uri = /(?:^|, )URI:(spiffe:\/\/[^,]+)/.exec(cert.subjectaltname ?? '')?.[1];
      if (uri === undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'the client certificate carries no SPIFFE ID');
      const identity = parseSpiffeId(uri, 'client certificate');
      if (identity.trustDomain !== this.id.ca.trustDomain) throw new MeshError(ErrorCodes.PERMISSION_DENIED, `client certificate ${uri} is from trust domain ${identity.trustDomain}, not ${this.id.ca.trustDomain}`);
      return { identity, via: `certificate ${cert.serialNumber}` };
    }
    const auth = call.metadata.get('authorization')[0];
    if (typeof auth !== 'string') throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'no credential: send a join token (authorization: Bearer skein-jt.…) or renew with the current certificate');
    const m = /^Bearer\s+(\S+)$/i.exec(auth.trim());
    if (m === null) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'authorization: expected "Bearer <join token>"');
    const binding = this.id.tokens.check(m[1]!);
    return { identity: this.id.identityOf(binding), via: `join token for service ${binding.service}`, token: m[1]! };
  }
}

function durationMs(d: SignRequest['ttl']): number | undefined {
  if (d === undefined || d === null) return undefined;
  const ms = Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
  if (!Number.isFinite(ms) || ms <= 0) throw new MeshError(ErrorCodes.VALIDATION, 'ttl: must be a positive duration');
  return ms;
}

/** The gRPC status for an error at this edge. */
function grpcStatusOf(code: ErrorCode): grpc.status {
  switch (code) {
    case ErrorCodes.UNAUTHENTICATED: return grpc.status.UNAUTHENTICATED;
    case ErrorCodes.PERMISSION_DENIED: return grpc.status.PERMISSION_DENIED;
    case ErrorCodes.VALIDATION: case ErrorCodes.MALFORMED_INPUT: case ErrorCodes.BODY_TOO_LARGE: return grpc.status.INVALID_ARGUMENT;
    default: return grpc.status.INTERNAL;
  }
}
