/**
 * The certificate authority and join tokens, with real keys and certificates (@peculiar/x509 and
 * Node's crypto), checked with Node's own X509Certificate, on a fake clock.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { FakeClock } from '../../shared/src/clock';
import { MeshError } from '../../shared/src/errors';
import { CertificateAuthority, CA_DEFAULTS } from '../../control-plane/src/identity/certificate-authority';
import { JoinTokenStore } from '../../control-plane/src/identity/join-tokens';
import { EC_P256, generateKeyPair, privateKeyPem, x509 } from '../../shared/src/identity/x509';
import { parseSpiffeId, spiffeId } from '../../shared/src/identity/spiffe';

const TD = 'skein.local';
const REVIEWS = { trustDomain: TD, namespace: 'default', serviceAccount: 'reviews' };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skein-ca-'));
const mode = (f: string) => fs.statSync(f).mode & 0o777;

async function csrFor(names: { type: string; value: string }[], subject = ''): Promise<string> {
  const keys = await generateKeyPair();
  const exts = names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names as never)];
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys, signingAlgorithm: EC_P256, extensions: exts })).toString('pem');
}
const spiffeCsr = (id = spiffeId(REVIEWS)) => csrFor([{ type: 'url', value: id }]);

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof MeshError && e.code === code && message.test(e.message));
}

describe('certificate authority', () => {
  test('generates an ECDSA P-256 root valid 10 years at first start, key 0600 in a 0700 dir; the next start loads the same root', async () => {
    const dir = tmp();
    const clock = new FakeClock();
    const ca = await CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock });
    assert.equal(ca.source, 'generated');
    const root = new X509Certificate(fs.readFileSync(path.join(dir, 'ca', 'root-cert.pem')));
    assert.equal(root.ca, true);
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(Math.abs(Date.parse(root.validTo) - (clock.now() + CA_DEFAULTS.rootValidityMs)) < 2000);
    assert.equal(mode(path.join(dir, 'ca', 'root-key.pem')), 0o600);
    assert.equal(mode(path.join(dir, 'ca')), 0o700);
    const again = await CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock });
    assert.equal(again.source, 'loaded');
    assert.equal(again.trustBundlePem(), ca.trustBundlePem());
  });

  test('refuses to start with a root key readable by others', async () => {
    const dir = tmp();
    await CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock: new FakeClock() });
    fs.chmodSync(path.join(dir, 'ca', 'root-key.pem'), 0o644);
    await rejects(CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock: new FakeClock() }), 'SKEIN_ERR_STORE', /readable by group or others.*chmod 600/);
  });

  test('issues a 24h workload certificate with exactly the SPIFFE URI SAN, for client and server auth, chaining to the root', async () => {
    const clock = new FakeClock();
    const ca = await CertificateAuthority.open({ dataDir: tmp(), trustDomain: TD, clock });
    const issued = await ca.sign(await spiffeCsr(), REVIEWS);
    const leaf = new X509Certificate(issued.certChainPem);
    const root = new X509Certificate(issued.trustBundlePem);
    assert.equal(leaf.subjectAltName, `URI:spiffe://skein.local/ns/default/sa/reviews`);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.verify(root.publicKey));
    assert.ok(leaf.checkIssued(root));
    assert.deepEqual(leaf.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(issued.notAfter - clock.now(), 24 * 3600_000);
    assert.equal(Date.parse(leaf.validTo), Math.floor(issued.notAfter / 1000) * 1000);
  });

  test('never issues past the CA\'s own expiry', async () => {
    const clock = new FakeClock();
    const ca = await CertificateAuthority.open({ dataDir: tmp(), trustDomain: TD, clock });
    clock.advance(CA_DEFAULTS.rootValidityMs - 3600_000); // one hour of CA life left
    const issued = await ca.sign(await spiffeCsr(), REVIEWS);
    assert.equal(issued.notAfter, ca.notAfter);
  });

  const refusals: { name: string; csr: () => Promise<string>; code: string; message: RegExp }[] = [
    { name: 'a CSR for another service', csr: () => spiffeCsr('spiffe://skein.local/ns/default/sa/ratings'), code: 'SKEIN_ERR_PERMISSION_DENIED', message: /asks for url:spiffe:\/\/skein\.local\/ns\/default\/sa\/ratings; this caller may only get spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews/ },
    { name: 'a CSR with an extra SAN', csr: () => csrFor([{ type: 'url', value: spiffeId(REVIEWS) }, { type: 'dns', value: 'evil.example' }]), code: 'SKEIN_ERR_PERMISSION_DENIED', message: /dns:evil\.example/ },
    { name: 'a CSR with a subject CN', csr: () => csrFor([{ type: 'url', value: spiffeId(REVIEWS) }], 'CN=admin'), code: 'SKEIN_ERR_PERMISSION_DENIED', message: /dns:admin/ },
    { name: 'a CSR with no SAN', csr: () => csrFor([]), code: 'SKEIN_ERR_PERMISSION_DENIED', message: /asks for no SAN/ },
    { name: 'a malformed CSR', csr: async () => '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----', code: 'SKEIN_ERR_MALFORMED_INPUT', message: /not a PEM PKCS#10/ },
    { name: 'an empty CSR', csr: async () => '', code: 'SKEIN_ERR_MALFORMED_INPUT', message: /csr: required/ },
    { name: 'an oversized CSR', csr: async () => 'A'.repeat(CA_DEFAULTS.maxCsrBytes + 1), code: 'SKEIN_ERR_BODY_TOO_LARGE', message: /at most 8192/ },
    {
      name: 'a CSR whose signature does not verify (tampered)',
      csr: async () => {
        const der = Buffer.from(x509.PemConverter.decode(await spiffeCsr())[0]!);
        der[der.length - 5] ^= 0xff; // inside the signature
        return x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
      },
      code: 'SKEIN_ERR_VALIDATION', message: /signature does not verify/,
    },
  ];
  for (const r of refusals) {
    test(`refuses ${r.name}, naming the problem, and issues nothing`, async () => {
      const ca = await CertificateAuthority.open({ dataDir: tmp(), trustDomain: TD, clock: new FakeClock() });
      await rejects(ca.sign(await r.csr(), REVIEWS), r.code, r.message);
    });
  }

  test('a plugged intermediate (--ca-cert with its chain, --ca-key) issues leaves that chain through it to the root', async () => {
    const dir = tmp();
    const clock = new FakeClock();
    const now = clock.now();
    const rootKeys = await generateKeyPair();
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=corp root', notBefore: new Date(now - 1000), notAfter: new Date(now + 365 * 864e5), keys: rootKeys, signingAlgorithm: EC_P256,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const midKeys = await generateKeyPair();
    const mid = await x509.X509CertificateGenerator.create({
      serialNumber: '02', subject: 'CN=skein intermediate', issuer: root.subject, notBefore: new Date(now - 1000), notAfter: new Date(now + 30 * 864e5),
      signingKey: rootKeys.privateKey, publicKey: midKeys.publicKey, signingAlgorithm: EC_P256,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const certFile = path.join(dir, 'ca-cert.pem');
    const keyFile = path.join(dir, 'ca-key.pem');
    fs.writeFileSync(certFile, `${mid.toString('pem')}\n${root.toString('pem')}\n`);
    fs.writeFileSync(keyFile, await privateKeyPem(midKeys.privateKey), { mode: 0o600 });
    const ca = await CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock, caCertFile: certFile, caKeyFile: keyFile });
    assert.equal(ca.source, 'plugged');
    assert.equal(fs.existsSync(path.join(dir, 'ca')), false, 'nothing generated');
    const issued = await ca.sign(await spiffeCsr(), REVIEWS);
    const chain = x509.PemConverter.decode(issued.certChainPem).map((d) => new X509Certificate(Buffer.from(d)));
    const bundle = new X509Certificate(issued.trustBundlePem);
    assert.equal(chain.length, 2, 'leaf and intermediate');
    assert.ok(chain[0]!.checkIssued(chain[1]!) && chain[0]!.verify(chain[1]!.publicKey));
    assert.ok(chain[1]!.checkIssued(bundle) && chain[1]!.verify(bundle.publicKey));
    assert.equal(issued.notAfter - clock.now(), 24 * 3600_000);
    assert.equal(ca.notAfter, now + 30 * 864e5, 'the issuing CA is the intermediate (30 days)');
  });

  test('plugged CA errors name the flag: a key that is not the certificate\'s, a non-CA certificate, one flag without the other', async () => {
    const dir = tmp();
    const clock = new FakeClock();
    const gen = await CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock });
    const otherKey = path.join(dir, 'other-key.pem');
    fs.writeFileSync(otherKey, await privateKeyPem((await generateKeyPair()).privateKey), { mode: 0o600 });
    const rootFile = path.join(dir, 'ca', 'root-cert.pem');
    await rejects(CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock, caCertFile: rootFile, caKeyFile: otherKey }), 'SKEIN_ERR_VALIDATION', /--ca-key: the key does not belong to --ca-cert/);
    const leafFile = path.join(dir, 'leaf.pem');
    fs.writeFileSync(leafFile, (await gen.sign(await spiffeCsr(), REVIEWS)).certChainPem);
    await rejects(CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock, caCertFile: leafFile, caKeyFile: otherKey }), 'SKEIN_ERR_VALIDATION', /--ca-cert: .* is not a CA certificate/);
    await rejects(CertificateAuthority.open({ dataDir: dir, trustDomain: TD, clock, caCertFile: rootFile }), 'SKEIN_ERR_VALIDATION', /give both or neither/);
  });
});

describe('SPIFFE IDs', () => {
  const cases: [string, string | RegExp][] = [
    ['spiffe://skein.local/ns/default/sa/reviews', 'reviews'],
    ['spiffe://skein.local/ns/default/sa/Reviews', /must be a DNS label/],
    ['spiffe://skein.local/ns/default/sa/reviews/extra', /is not spiffe:\/\//],
    ['https://skein.local/ns/default/sa/reviews', /is not spiffe:\/\//],
    ['spiffe://SKEIN/ns/default/sa/reviews', /not a trust domain/],
  ];
  for (const [uri, want] of cases) {
    test(uri, () => {
      if (typeof want === 'string') assert.equal(parseSpiffeId(uri).serviceAccount, want);
      else assert.throws(() => parseSpiffeId(uri), want);
    });
  }
});

describe('join tokens', () => {
  test('are stored only as hashes, in a 0600 file, and bind one service identity', () => {
    const dir = tmp();
    const store = JoinTokenStore.open(dir, new FakeClock());
    const { token, record } = store.create({ service: 'reviews' });
    const file = fs.readFileSync(path.join(dir, 'join-tokens.json'), 'utf8');
    assert.ok(!file.includes(token.slice('skein-jt.'.length)), 'the token is not in the file');
    assert.ok(file.includes(record.hash));
    assert.equal(mode(path.join(dir, 'join-tokens.json')), 0o600);
    assert.deepEqual(JoinTokenStore.open(dir, new FakeClock()).redeem(token), { service: 'reviews', namespace: 'default', serviceAccount: 'reviews' }, 'survives a restart');
  });

  test('single-use: a replay is refused; reusable ones are not used up', () => {
    const store = JoinTokenStore.open(tmp(), new FakeClock());
    const once = store.create({ service: 'reviews' }).token;
    store.redeem(once);
    assert.throws(() => store.redeem(once), /already used/);
    const many = store.create({ service: 'ratings', reusable: true, namespace: 'shop', serviceAccount: 'ratings-sa' }).token;
    for (let i = 0; i < 3; i++) assert.deepEqual(store.redeem(many), { service: 'ratings', namespace: 'shop', serviceAccount: 'ratings-sa' });
  });

  test('expire after their TTL (1h by default); unknown, malformed and revoked tokens are refused', () => {
    const clock = new FakeClock();
    const store = JoinTokenStore.open(tmp(), clock);
    const t = store.create({ service: 'reviews' });
    const short = store.create({ service: 'reviews', ttlMs: 60_000, reusable: true });
    clock.advance(60_000);
    assert.throws(() => store.redeem(short.token), /expired at/);
    clock.advance(3600_000 - 60_000);
    assert.throws(() => store.redeem(t.token), /expired at/);
    assert.throws(() => store.redeem('skein-jt.nope'), /unknown/);
    assert.throws(() => store.redeem('Bearer x'), /malformed/);
    const r = store.create({ service: 'reviews', reusable: true });
    store.revoke(r.record.id);
    assert.throws(() => store.redeem(r.token), /unknown/);
  });

  test('bad requests name the field', () => {
    const store = JoinTokenStore.open(tmp(), new FakeClock());
    assert.throws(() => store.create({ service: 'Reviews!' }), /service: "Reviews!" must be a DNS label/);
    assert.throws(() => store.create({ service: 'reviews', ttlMs: 31 * 24 * 3600_000 }), /ttl: must be from 1s to 720h \(30 days\)/);
  });
});
