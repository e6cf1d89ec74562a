/**
 * skein.identity.v1.Certificates/Sign against a real control plane process, with a real grpc-js
 * client and real CSRs: a workload with a join token gets a certificate for exactly its own
 * SPIFFE ID; everything else is refused with the reason, logged, and nothing is issued.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { CERTIFICATES_SERVICE, skeinService } from '../../../shared/src/grpc/skein-services';
import type { SignRequest, SignResponse } from '../../../shared/src/grpc/skein-services';
import { controlPlaneTls, CP_TLS_OPTIONS } from '../../support/workload-cert';
import { EC_P256, generateKeyPair, privateKeyPem, x509 } from '../../../shared/src/identity/x509';
import { call, startPlane } from '../../support/skein';
import type { Plane } from '../../support/skein';
import { until } from '../../support/until';

type SignClient = grpc.Client & { Sign(req: SignRequest, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: SignResponse) => void): void };

async function csrFor(names: { type: string; value: string }[], keep?: { keyPem?: string }): Promise<string> {
  const keys = await generateKeyPair();
  if (keep !== undefined) keep.keyPem = await privateKeyPem(keys.privateKey);
  const exts = names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names as never)];
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: EC_P256, extensions: exts })).toString('pem');
}
const spiffe = (sa: string) => `spiffe://skein.local/ns/default/sa/${sa}`;
const csrOf = (sa: string) => csrFor([{ type: 'url', value: spiffe(sa) }]);

describe('workload certificates: Certificates/Sign on the control plane', () => {
  let plane: Plane;
  let client: SignClient;
  const lines = (msg: string) => plane.proc.logs().split('\n').filter((l) => l.includes(msg)).length;
  let calls = 0;
  /** Issued certificates, counted from the log once every call so far has logged its outcome (stderr arrives late). */
  async function issuedLines(): Promise<number> {
    await until(() => lines('workload certificate issued') + lines('certificate request refused') === calls, `a log line for each of ${calls} Sign calls`);
    return lines('workload certificate issued');
  }

  const tls = (client?: { keyPem: string; certChainPem: string }) => controlPlaneTls(plane.proc, client === undefined ? undefined : { spiffeId: '', trustBundlePem: '', ...client });
  const Ctor = () => skeinService(CERTIFICATES_SERVICE);

  before(async () => {
    plane = await startPlane({ extraArgs: ['--log-level', 'info'] });
    client = new (Ctor())(plane.proc.xds, tls(), CP_TLS_OPTIONS) as unknown as SignClient;
  });
  after(async () => { client?.close(); await plane?.stop(); });

  async function token(service: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await call(plane.api, 'POST', '/v1/tokens', { body: { service, ...extra } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.token as string;
  }
  function sign(req: SignRequest, bearer?: string): Promise<SignResponse> {
    const md = new grpc.Metadata();
    if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
    calls++;
    return new Promise((resolve, reject) => client.Sign(req, md, (err, res) => (err ? reject(err) : resolve(res!))));
  }
  async function refused(p: Promise<unknown>, status: grpc.status, message: RegExp): Promise<void> {
    await assert.rejects(p, (e: grpc.ServiceError) => {
      assert.equal(e.code, status, e.message);
      assert.match(e.details, message);
      return true;
    });
  }

  test('a join token for reviews gets a 24h certificate for spiffe://skein.local/ns/default/sa/reviews, chained to the mesh root', async () => {
    const res = await sign({ csr_pem: await csrOf('reviews') }, await token('reviews'));
    assert.equal(res.spiffe_id, spiffe('reviews'));
    const leaf = new X509Certificate(res.cert_chain_pem);
    const root = new X509Certificate(res.trust_bundle_pem);
    assert.equal(leaf.subjectAltName, `URI:${spiffe('reviews')}`);
    assert.ok(leaf.verify(root.publicKey), 'signed by the root');
    assert.equal(Number(res.not_after_ms) - Number(res.not_before_ms), 24 * 3600_000 + 60_000, '24h, backdated 1 minute');
    const ca = await call(plane.api, 'GET', '/v1/ca');
    assert.equal(ca.body.trustBundle.trim(), res.trust_bundle_pem.trim());
    await until(() => plane.proc.logs().includes(`"serial":"${res.serial}"`), 'the issue is logged with its serial');
  });

  test('a token for reviews cannot get a certificate for ratings; the refusal does not burn the token', async () => {
    const t = await token('reviews');
    const before = await issuedLines();
    await refused(sign({ csr_pem: await csrOf('ratings') }, t), grpc.status.PERMISSION_DENIED, /asks for url:spiffe:\/\/skein\.local\/ns\/default\/sa\/ratings; this caller may only get spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews/);
    await until(() => /certificate request refused.*sa\/ratings|sa\/ratings.*certificate request refused/.test(plane.proc.logs()), 'the refusal is logged');
    const res = await sign({ csr_pem: await csrOf('reviews') }, t);
    assert.equal(res.spiffe_id, spiffe('reviews'));
    assert.equal(await issuedLines(), before + 1);
  });

  const bad: [string, () => Promise<string>, grpc.status, RegExp][] = [
    ['an extra SAN', () => csrFor([{ type: 'url', value: spiffe('reviews') }, { type: 'dns', value: 'evil.example' }]), grpc.status.PERMISSION_DENIED, /dns:evil\.example/],
    ['no SAN', () => csrFor([]), grpc.status.PERMISSION_DENIED, /no SAN/],
    ['a malformed CSR', async () => '-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----', grpc.status.INVALID_ARGUMENT, /csr: not a PEM PKCS#10/],
    ['an oversized CSR', async () => `${await csrOf('reviews')}${'x'.repeat(9000)}`, grpc.status.INVALID_ARGUMENT, /csr: \d+ bytes; at most 8192/],
    ['an empty CSR', async () => '', grpc.status.INVALID_ARGUMENT, /csr: required/],
  ];
  for (const [name, make, status, message] of bad) {
    test(`${name} is refused with the reason, and nothing is issued`, async () => {
      const before = await issuedLines();
      await refused(sign({ csr_pem: await make() }, await token('reviews')), status, message);
      assert.equal(await issuedLines(), before);
    });
  }

  test('a single-use token replayed, an expired token, an unknown one and none at all: UNAUTHENTICATED, naming why', async () => {
    const t = await token('reviews');
    await sign({ csr_pem: await csrOf('reviews') }, t);
    const before = await issuedLines();
    await refused(sign({ csr_pem: await csrOf('reviews') }, t), grpc.status.UNAUTHENTICATED, /already used at .*single-use/);
    const short = await token('reviews', { ttl: '1s' });
    await new Promise((r) => setTimeout(r, 1100));
    await refused(sign({ csr_pem: await csrOf('reviews') }, short), grpc.status.UNAUTHENTICATED, /expired at/);
    await refused(sign({ csr_pem: await csrOf('reviews') }, 'skein-jt.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), grpc.status.UNAUTHENTICATED, /unknown/);
    await refused(sign({ csr_pem: await csrOf('reviews') }), grpc.status.UNAUTHENTICATED, /no credential/);
    await refused(sign({ csr_pem: await csrOf('reviews') }, 'garbage'), grpc.status.UNAUTHENTICATED, /malformed/);
    assert.equal(await issuedLines(), before);
    assert.ok(!plane.proc.logs().includes(t), 'tokens are never logged');
  });

  test('a reusable token serves many instances until revoked', async () => {
    const r = await call(plane.api, 'POST', '/v1/tokens', { body: { service: 'reviews', reusable: true } });
    for (let i = 0; i < 3; i++) assert.equal((await sign({ csr_pem: await csrOf('reviews') }, r.body.token)).spiffe_id, spiffe('reviews'));
    await call(plane.api, 'DELETE', `/v1/tokens/${r.body.id}`);
    await refused(sign({ csr_pem: await csrOf('reviews') }, r.body.token), grpc.status.UNAUTHENTICATED, /unknown/);
  });

  test('a workload renews with its current certificate and no token, only for its own identity; plaintext gets nothing', async () => {
    const keep: { keyPem?: string } = {};
    const first = await sign({ csr_pem: await csrFor([{ type: 'url', value: spiffe('reviews') }], keep) }, await token('reviews'));
    const mtls = new (Ctor())(plane.proc.xds, tls({ keyPem: keep.keyPem!, certChainPem: first.cert_chain_pem }), CP_TLS_OPTIONS) as unknown as SignClient;
    const signWith = (req: SignRequest) => {
      calls++;
      return new Promise<SignResponse>((resolve, reject) => mtls.Sign(req, new grpc.Metadata(), (e, r) => (e ? reject(e) : resolve(r!))));
    };
    try {
      const renewed = await signWith({ csr_pem: await csrOf('reviews') });
      assert.equal(renewed.spiffe_id, spiffe('reviews'));
      assert.notEqual(renewed.serial, first.serial);
      await refused(signWith({ csr_pem: await csrOf('ratings') }), grpc.status.PERMISSION_DENIED, /this caller may only get spiffe:\/\/skein\.local\/ns\/default\/sa\/reviews/);
      await until(() => plane.proc.logs().includes(`"via":"certificate `), 'the renewal is logged as authenticated by the certificate');
    } finally {
      mtls.close();
    }
    const plain = new (Ctor())(plane.proc.xds, grpc.credentials.createInsecure()) as unknown as SignClient;
    try {
      await assert.rejects(new Promise((resolve, reject) => plain.Sign({ csr_pem: '' }, new grpc.Metadata(), (e, r) => (e ? reject(e) : resolve(r)))), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
    } finally {
      plain.close();
    }
  });
});
