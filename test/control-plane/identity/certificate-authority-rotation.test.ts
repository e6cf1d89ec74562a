/**
 * The CA's root rotation steps (certificate-authority.ts), each persisted in the data dir: a
 * control plane restarted in any phase opens the same roots, issues from the same one, and the
 * old root's key is gone once the new root issues.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { CertificateAuthority } from '../../../control-plane/src/identity/certificate-authority';
import { FakeClock } from '../../../shared/src/clock';
import { testCa, workloadIdentity } from '../../support/test-ca';

const roots = (ca: CertificateAuthority) => (ca.trustBundlePem().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p).serialNumber.toLowerCase());

test('begin, switch and finish survive a reopen in every phase; the old key is deleted when the new root issues; leaves chain to the issuing root', async () => {
  const t = await testCa();
  after(() => t.close());
  const clock = new FakeClock(Date.now());
  const reopen = () => CertificateAuthority.open({ dataDir: t.dir, trustDomain: 'skein.local', clock });
  const dir = path.join(t.dir, 'ca');
  const oldRoot = roots(t.ca)[0]!;
  const leafOld = await workloadIdentity(t, 'reviews');
  const begun = await t.ca.beginRotation();
  assert.equal(begun.phase, 'trust');
  assert.equal((fs.statSync(path.join(dir, 'next-root-key.pem')).mode & 0o777).toString(8), '600');
  let ca = await reopen();
  assert.deepEqual(roots(ca), [oldRoot, begun.newRootSerial], 'trust phase: both roots, the old one first (it still issues)');
  assert.equal(ca.rotationState?.phase, 'trust');
  const switched = ca.switchIssuer();
  assert.equal(switched.phase, 'issue');
  assert.ok((switched.oldLeavesExpireBy ?? 0) >= leafOld.notAfter, 'the old root stays until its last leaf expires');
  assert.ok(!fs.existsSync(path.join(dir, 'next-root-key.pem')));
  ca = await reopen();
  assert.deepEqual(roots(ca), [begun.newRootSerial, oldRoot], 'issue phase: the new root first, the old one still trusted');
  const leafNew = await workloadIdentity({ ...t, ca }, 'reviews');
  assert.ok(new X509Certificate(leafNew.certChainPem).checkIssued(new X509Certificate(ca.trustBundlePem().split('-----END CERTIFICATE-----')[0]! + '-----END CERTIFICATE-----')), 'new leaves come from the new root');
  await assert.rejects(ca.beginRotation(), /already in its issue phase/);
  ca.finishRotation();
  ca = await reopen();
  assert.deepEqual(roots(ca), [begun.newRootSerial]);
  assert.equal(ca.rotationState, undefined);
  assert.ok(!fs.existsSync(path.join(dir, 'previous-root-cert.pem')));
  assert.throws(() => ca.finishRotation(), /no root rotation in progress/);
});
