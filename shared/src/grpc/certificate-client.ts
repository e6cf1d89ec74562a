/**
 * The client side of skein.identity.v1.Certificates/Sign, shared by everything that buys a
 * workload certificate from the control plane: the sidecar (sidecar/src/identity/
 * workload-identity.ts) and `skein cert issue|renew` (control-plane/src/cli/cert-commands.ts).
 *
 * - A fresh ECDSA P-256 key for every certificate, made here; only the CSR leaves the process.
 * - The control plane is verified by its trust bundle and its SPIFFE ID
 *   (spiffe://<td>/ns/skein-system/sa/control-plane), never by the address dialled: TLS names it
 *   CONTROL_PLANE_HOST whatever host:port the channel connects to.
 * - The first certificate is bought with a join token (bearer metadata); a renewal presents the
 *   current certificate as its TLS client certificate instead, and sends no token.
 */
import * as fs from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ErrorCodes, MeshError } from '../errors';
import { CONTROL_PLANE_HOST, controlPlaneSpiffeId, spiffeIdInSan } from '../identity/spiffe';
import type { IssuedIdentity } from '../identity/rotating-identity';
import { EC_P256, generateKeyPair, privateKeyPem, x509 } from '../identity/x509';
import { CERTIFICATES_SERVICE, skeinService } from './skein-services';
import type { SignRequest, SignResponse } from './skein-services';

/** Channel options for every channel to the control plane: TLS names it by CONTROL_PLANE_HOST, whatever address is dialled. */
export const CONTROL_PLANE_CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc.ssl_target_name_override': CONTROL_PLANE_HOST };

/** TLS verification that believes the server only if its certificate carries the control plane's SPIFFE ID. */
export function controlPlaneVerifyOptions(trustDomain: string): grpc.VerifyOptions {
  const want = controlPlaneSpiffeId(trustDomain);
  return { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkControlPlane(cert, want) };
}

function checkControlPlane(cert: PeerCertificate, want: string): Error | undefined {
  const got = spiffeIdInSan(cert.subjectaltname);
  return got === want ? undefined : new Error(`the xDS server is not this mesh's control plane: its certificate names ${got ?? 'no SPIFFE ID'}, expected ${want}`);
}

/**
 * TLS to the control plane: its roots `caPem`, its SPIFFE ID checked, and `client` (the current
 * key and chain) as the client certificate when renewing.
 */
export function controlPlaneTls(caPem: Buffer | string, trustDomain: string, client?: { keyPem: string; certChainPem: string }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(caPem), client === undefined ? null : Buffer.from(client.keyPem), client === undefined ? null : Buffer.from(client.certChainPem), controlPlaneVerifyOptions(trustDomain));
}

export interface CertificateRequest {
  /** host:port of the control plane's TLS xDS port. */
  server: string;
  /** The SPIFFE ID to ask for (the only name in the CSR). */
  spiffeId: string;
  /** TLS to the control plane (controlPlaneTls, or a rotating provider's credentials when renewing). */
  credentials: grpc.ChannelCredentials;
  /** The join token, for a first certificate; none when renewing with the certificate. */
  token?: string;
  /** The lifetime to ask for; default: the control plane's --workload-cert-ttl. */
  ttlMs?: number;
  /** Deadline of the call. Default 10s. */
  timeoutMs?: number;
  /** How the caller authenticates, for the error message ("with the join token from FILE"). */
  how: string;
}

type SignClient = grpc.Client & { Sign(req: SignRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: SignResponse) => void): void };

/**
 * Makes a key, sends a CSR for `spiffeId`, and returns the key with what the control plane
 * issued. A refusal is a MeshError with the control plane's reason (UNAUTHENTICATED,
 * PERMISSION_DENIED, else UPSTREAM_CONNECT_FAILURE).
 */
export async function requestCertificate(r: CertificateRequest): Promise<IssuedIdentity> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: '', keys, signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: r.spiffeId }])],
  });
  const md = new grpc.Metadata();
  if (r.token !== undefined) md.set('authorization', `Bearer ${r.token}`);
  const Ctor = skeinService(CERTIFICATES_SERVICE);
  const client = new Ctor(r.server, r.credentials, CONTROL_PLANE_CHANNEL_OPTIONS) as unknown as SignClient;
  const req: SignRequest = { csr_pem: csr.toString('pem'), ...(r.ttlMs === undefined ? {} : { ttl: { seconds: String(Math.floor(r.ttlMs / 1000)), nanos: (r.ttlMs % 1000) * 1e6 } }) };
  try {
    const res = await new Promise<SignResponse>((resolve, reject) => {
      client.Sign(req, md, { deadline: Date.now() + (r.timeoutMs ?? 10_000) }, (err, out) => (err ? reject(err) : resolve(out!)));
    });
    if (res.spiffe_id !== r.spiffeId) throw new MeshError(ErrorCodes.PROTOCOL, `the control plane issued ${res.spiffe_id}, not ${r.spiffeId}`);
    return {
      spiffeId: res.spiffe_id, serial: res.serial, keyPem: await privateKeyPem(keys.privateKey),
      certChainPem: res.cert_chain_pem, trustBundlePem: res.trust_bundle_pem,
      notBefore: Number(res.not_before_ms), notAfter: Number(res.not_after_ms),
    };
  } catch (e) {
    const err = e as grpc.ServiceError;
    if (err.code === undefined) throw e;
    throw new MeshError(err.code === grpc.status.UNAUTHENTICATED ? ErrorCodes.UNAUTHENTICATED : err.code === grpc.status.PERMISSION_DENIED ? ErrorCodes.PERMISSION_DENIED : ErrorCodes.UPSTREAM_CONNECT_FAILURE,
      `could not get a certificate for ${r.spiffeId} from the control plane at ${r.server} (${r.how}): ${err.details || err.message}`);
  } finally {
    client.close();
  }
}

/** A join token from a file (one token, nothing else), or a VALIDATION error naming `flag`. */
export function readJoinTokenFile(file: string, flag: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (text === '' || /\s/.test(text)) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: ${file} must hold one join token (skein token create --service NAME > FILE)`);
  return text;
}

/** The control plane's trust bundle (PEM roots) from a file, or a VALIDATION error naming `flag`. */
export function readTrustBundleFile(file: string, flag: string): Buffer {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; it is the control plane's trust bundle (<data-dir>/ca/trust-bundle.pem, or GET /v1/ca)`);
  }
  if (!pem.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) throw new MeshError(ErrorCodes.VALIDATION, `${flag}: ${file} holds no PEM certificate`);
  return pem;
}
