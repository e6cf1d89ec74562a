/**
 * Workload certificates for tests, bought the way a sidecar buys them: a key made here, a CSR,
 * and Certificates/Sign on the control plane's TLS port with a join token.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { CERTIFICATES_SERVICE, skeinService } from '../../shared/src/grpc/skein-services';
import type { SignRequest, SignResponse } from '../../shared/src/grpc/skein-services';
import { CONTROL_PLANE_HOST, controlPlaneSpiffeId, spiffeIdInSan } from '../../shared/src/identity/spiffe';
import { EC_P256, generateKeyPair, privateKeyPem, x509 } from '../../shared/src/identity/x509';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { call } from './skein';

export interface TestCert { spiffeId: string; keyPem: string; certChainPem: string; trustBundlePem: string }

/** Channel options for the control plane's TLS port (it is named control-plane.skein whatever the address). */
export const CP_TLS_OPTIONS: grpc.ChannelOptions = { 'grpc.ssl_target_name_override': CONTROL_PLANE_HOST };

/** TLS to the control plane, verifying its SPIFFE ID; presenting `cert` when given. */
export function controlPlaneTls(cp: ControlPlaneProcess, cert?: TestCert, trustDomain = 'skein.local'): grpc.ChannelCredentials {
  const want = controlPlaneSpiffeId(trustDomain);
  return grpc.credentials.createSsl(fs.readFileSync(cp.trustBundleFile), cert === undefined ? null : Buffer.from(cert.keyPem), cert === undefined ? null : Buffer.from(cert.certChainPem), {
    checkServerIdentity: (_h, c) => (spiffeIdInSan(c.subjectaltname) === want ? undefined : new Error(`not the control plane: ${c.subjectaltname}`)),
  });
}

/** A certificate for service `service` (service account `serviceAccount ?? service`), via a fresh join token. */
export async function workloadCert(cp: ControlPlaneProcess, service: string, serviceAccount = service, namespace = 'default'): Promise<TestCert> {
  const t = await call(cp.api, 'POST', '/v1/tokens', { body: { service, serviceAccount, namespace } });
  if (t.status !== 201) throw new Error(`token: ${JSON.stringify(t.body)}`);
  const keys = await generateKeyPair();
  const spiffe = `spiffe://skein.local/ns/${namespace}/sa/${serviceAccount}`;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: EC_P256, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffe }])] });
  const Ctor = skeinService(CERTIFICATES_SERVICE);
  const client = new Ctor(cp.xds, controlPlaneTls(cp), CP_TLS_OPTIONS) as unknown as grpc.Client & { Sign(r: SignRequest, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: SignResponse) => void): void };
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${t.body.token as string}`);
  try {
    const res = await new Promise<SignResponse>((resolve, reject) => client.Sign({ csr_pem: csr.toString('pem') }, md, (e, r) => (e ? reject(e) : resolve(r!))));
    return { spiffeId: res.spiffe_id, keyPem: await privateKeyPem(keys.privateKey), certChainPem: res.cert_chain_pem, trustBundlePem: res.trust_bundle_pem };
  } finally {
    client.close();
  }
}
