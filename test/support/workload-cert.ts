/**
 * Workload certificates for tests, bought the way a sidecar buys them: the shared Sign client
 * (shared/src/grpc/certificate-client.ts) with a fresh join token, over the control plane's TLS port.
 */
import * as fs from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { CONTROL_PLANE_CHANNEL_OPTIONS, controlPlaneTls as tlsTo, requestCertificate } from '../../shared/src/grpc/certificate-client';
import type { ControlPlaneProcess } from '../../harness/src/control-plane-process';
import { call } from './skein';

export interface TestCert { spiffeId: string; keyPem: string; certChainPem: string; trustBundlePem: string }

/** Channel options for the control plane's TLS port (it is named control-plane.skein whatever the address). */
export const CP_TLS_OPTIONS: grpc.ChannelOptions = CONTROL_PLANE_CHANNEL_OPTIONS;

/** TLS to the control plane, verifying its SPIFFE ID; presenting `cert` when given. */
export function controlPlaneTls(cp: ControlPlaneProcess, cert?: TestCert, trustDomain = 'skein.local'): grpc.ChannelCredentials {
  return tlsTo(fs.readFileSync(cp.trustBundleFile), trustDomain, cert);
}

/** A certificate for service `service` (service account `serviceAccount ?? service`), via a fresh join token. */
export async function workloadCert(cp: ControlPlaneProcess, service: string, serviceAccount = service, namespace = 'default'): Promise<TestCert> {
  const t = await call(cp.api, 'POST', '/v1/tokens', { body: { service, serviceAccount, namespace } });
  if (t.status !== 201) throw new Error(`token: ${JSON.stringify(t.body)}`);
  return requestCertificate({
    server: cp.xds, spiffeId: `spiffe://skein.local/ns/${namespace}/sa/${serviceAccount}`, credentials: controlPlaneTls(cp),
    token: t.body.token as string, how: 'test join token',
  });
}
