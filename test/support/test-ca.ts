/**
 * A mesh CA in a temp dir and workload identities from it, for tests of the data path's mTLS
 * without a control plane: the same CertificateAuthority the control plane runs, real CSRs and
 * keys. A FakeClock makes certificates that are expired, or not yet valid, on purpose.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock, systemClock } from '../../shared/src/clock';
import type { Clock } from '../../shared/src/clock';
import { CertificateAuthority } from '../../control-plane/src/identity/certificate-authority';
import { EC_P256, generateKeyPair, privateKeyPem, x509 } from '../../shared/src/identity/x509';
import type { IssuedIdentity } from '../../shared/src/identity/rotating-identity';

export interface TestCa { ca: CertificateAuthority; dir: string; clock: Clock; close(): void }

export async function testCa(trustDomain = 'skein.local', clock: Clock = systemClock): Promise<TestCa> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-test-ca-'));
  const ca = await CertificateAuthority.open({ dataDir: dir, trustDomain, clock });
  return { ca, dir, clock, close: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A workload identity (key + certificate) for service account `sa` in namespace `ns`.
 * `issuedAt`: sign as of that time (a certificate that expired long ago, with a short ttl).
 */
export async function workloadIdentity(t: TestCa, sa: string, opts: { ns?: string; ttlMs?: number; issuedAt?: number } = {}): Promise<IssuedIdentity> {
  const keys = await generateKeyPair();
  const id = { trustDomain: t.ca.trustDomain, namespace: opts.ns ?? 'default', serviceAccount: sa };
  const spiffe = `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${sa}`;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: EC_P256, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffe }])] });
  let ca = t.ca;
  if (opts.issuedAt !== undefined) {
    // The same root, opened again with a clock set back: it signs as of then.
    ca = await CertificateAuthority.open({ dataDir: t.dir, trustDomain: t.ca.trustDomain, clock: new FakeClock(opts.issuedAt) });
  }
  const issued = await ca.sign(csr.toString('pem'), id, opts.ttlMs);
  return { ...issued, keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * A self-signed root CA valid for `validMs` from `now`, written as the files
 * `skein control-plane --ca-cert/--ca-key` plug in (key 0600); returns their paths.
 */
export async function writeRootCaFiles(dir: string, validMs: number, now = Date.now()): Promise<{ certFile: string; keyFile: string }> {
  const keys = await generateKeyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=short-lived test root', notBefore: new Date(now - 60_000), notAfter: new Date(now + validMs), keys, signingAlgorithm: EC_P256,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const certFile = path.join(dir, 'ca-cert.pem');
  const keyFile = path.join(dir, 'ca-key.pem');
  fs.writeFileSync(certFile, root.toString('pem'));
  fs.writeFileSync(keyFile, await privateKeyPem(keys.privateKey), { mode: 0o600 });
  return { certFile, keyFile };
}
