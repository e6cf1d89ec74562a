/**
 * The sidecar's workload identity: a key made here (it never leaves this process), a certificate
 * for spiffe://<td>/ns/<namespace>/sa/<service-account> from the control plane's CA, renewed
 * before it expires (RotatingIdentity).
 *
 * - The first certificate is bought with the join token (--token-file) over TLS, trusting the
 *   control plane through --xds-ca-file (its trust bundle); the control plane is believed only
 *   if its certificate carries the control plane's SPIFFE ID.
 * - Renewals authenticate with the current certificate; the token is not needed again. Each
 *   renewal makes a fresh key.
 * - `controlPlaneCredentials()` is the mTLS the xDS stream and endpoint registration use; it
 *   picks up each renewed certificate for its next handshake.
 */
import * as fs from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../shared/src/clock';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { CONTROL_PLANE_HOST, controlPlaneSpiffeId, spiffeId, spiffeIdInSan } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity as Identity } from '../../../shared/src/identity/spiffe';
import { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import type { IssuedIdentity } from '../../../shared/src/identity/rotating-identity';
import { EC_P256, generateKeyPair, privateKeyPem, x509 } from '../../../shared/src/identity/x509';
import { CERTIFICATES_SERVICE, skeinService } from '../../../shared/src/grpc/skein-services';
import type { SignRequest, SignResponse } from '../../../shared/src/grpc/skein-services';

/** Channel options for every channel to the control plane: TLS names it by CONTROL_PLANE_HOST, whatever address is dialled. */
export const CONTROL_PLANE_CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc.ssl_target_name_override': CONTROL_PLANE_HOST };

export interface WorkloadIdentityOptions {
  /** host:port of the control plane's TLS xDS port. */
  server: string;
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

type SignClient = grpc.Client & { Sign(req: SignRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: SignResponse) => void): void };

export class WorkloadIdentity {
  readonly rotating: RotatingIdentity;
  readonly spiffeId: string;
  private readonly token: string;
  private readonly bootstrapCa: Buffer;
  private readonly verify: grpc.VerifyOptions;

  private constructor(private readonly o: WorkloadIdentityOptions) {
    this.spiffeId = spiffeId(o.identity);
    this.token = readSecret(o.tokenFile, '--token-file');
    this.bootstrapCa = readPem(o.caFile, '--xds-ca-file');
    const want = controlPlaneSpiffeId(o.identity.trustDomain);
    this.verify = { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkControlPlane(cert, want) };
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
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: '', keys, signingAlgorithm: EC_P256,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: this.spiffeId }])],
    });
    const renewing = this.rotating.issued;
    const creds = renewing ? this.controlPlaneCredentials() : grpc.credentials.createSsl(this.bootstrapCa, null, null, this.verify);
    const md = new grpc.Metadata();
    if (!renewing) md.set('authorization', `Bearer ${this.token}`);
    const Ctor = skeinService(CERTIFICATES_SERVICE);
    const client = new Ctor(this.o.server, creds, CONTROL_PLANE_CHANNEL_OPTIONS) as unknown as SignClient;
    try {
      const res = await new Promise<SignResponse>((resolve, reject) => {
        client.Sign({ csr_pem: csr.toString('pem') }, md, { deadline: Date.now() + (this.o.signTimeoutMs ?? 10_000) }, (err, r) => (err ? reject(err) : resolve(r!)));
      });
      if (res.spiffe_id !== this.spiffeId) throw new MeshError(ErrorCodes.PROTOCOL, `the control plane issued ${res.spiffe_id}, not ${this.spiffeId}`);
      return {
        spiffeId: res.spiffe_id, serial: res.serial, keyPem: await privateKeyPem(keys.privateKey),
        certChainPem: res.cert_chain_pem, trustBundlePem: res.trust_bundle_pem,
        notBefore: Number(res.not_before_ms), notAfter: Number(res.not_after_ms),
      };
    } catch (e) {
      const err = e as grpc.ServiceError;
      if (err.code === undefined) throw e;
      const how = renewing ? 'renewing with the current certificate' : `with the join token from --token-file ${this.o.tokenFile}`;
      throw new MeshError(err.code === grpc.status.UNAUTHENTICATED ? ErrorCodes.UNAUTHENTICATED : err.code === grpc.status.PERMISSION_DENIED ? ErrorCodes.PERMISSION_DENIED : ErrorCodes.UPSTREAM_CONNECT_FAILURE,
        `could not get a certificate for ${this.spiffeId} from the control plane at ${this.o.server} (${how}): ${err.details || err.message}`);
    } finally {
      client.close();
    }
  }
}

function checkControlPlane(cert: PeerCertificate, want: string): Error | undefined {
  const got = spiffeIdInSan(cert.subjectaltname);
  return got === want ? undefined : new Error(`the xDS server is not this mesh's control plane: its certificate names ${got ?? 'no SPIFFE ID'}, expected ${want}`);
}

function readSecret(file: string, flag: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (text === '' || /\s/.test(text)) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: ${file} must hold one join token (skein token create --service NAME > FILE)`);
  return text;
}

function readPem(file: string, flag: string): Buffer {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; it is the control plane's trust bundle (<data-dir>/ca/trust-bundle.pem, or GET /v1/ca)`);
  }
  if (!pem.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: ${file} holds no PEM certificate`);
  return pem;
}
