/**
 * The control plane's own certificate for its TLS xDS port, issued by its CA with a key made in
 * this process (never written anywhere), renewed like a workload's (RotatingIdentity).
 *
 * Its names: the SPIFFE ID spiffe://<td>/ns/skein-system/sa/control-plane (what skein's sidecars
 * check), plus DNS control-plane.skein and localhost and the loopback IPs, and any --xds-san the
 * operator adds, for clients that verify a host name (Envoy, gRPC with file_watcher).
 */
import { isIP } from 'node:net';
import type { Clock } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';
import { RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import { generateKeyPair, privateKeyPem } from '../../../shared/src/identity/x509';
import { CONTROL_PLANE_HOST } from '../../../shared/src/identity/spiffe';
import type { CertificateAuthority } from './certificate-authority';

export function servingIdentity(ca: CertificateAuthority, extraNames: readonly string[], clock: Clock, log: Logger): RotatingIdentity {
  const names = [CONTROL_PLANE_HOST, 'localhost', '127.0.0.1', '::1', ...extraNames];
  const dns = [...new Set(names.filter((n) => isIP(n) === 0))];
  const ips = [...new Set(names.filter((n) => isIP(n) !== 0))];
  return new RotatingIdentity({
    what: 'control plane serving', clock, log,
    issue: async () => {
      const keys = await generateKeyPair();
      const issued = await ca.issueServing(keys.publicKey, { dns, ips });
      return { ...issued, keyPem: await privateKeyPem(keys.privateKey) };
    },
  });
}
