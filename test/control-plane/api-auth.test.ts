/**
 * The SRE API's credentials, black-box against a real control plane: every change needs the
 * admin token the control plane wrote to its data dir; reads need none; join tokens are minted,
 * listed (never shown again) and revoked by an admin, and stored only as hashes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { MESH_YAML, assertApiError, assertUnchanged, call, startPlane, state } from '../support/skein';
import type { Plane } from '../support/skein';
import { SKEIN_MAIN } from '../../harness/src/control-plane-process';
import { Agent, fetch as undiciFetch } from 'undici';
import { workloadCert } from '../support/workload-cert';
import type { TestCert } from '../support/workload-cert';

describe('SRE API credentials', () => {
  let plane: Plane;
  let api = '';
  before(async () => { plane = await startPlane(); api = plane.api; });
  after(async () => { await plane?.stop(); });

  test('the admin token is written 0600 to the data dir at first start, and kept across restarts', async () => {
    const file = path.join(plane.dataDir, 'admin-token');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const token = fs.readFileSync(file, 'utf8').trim();
    assert.match(token, /^skein-admin\.[A-Za-z0-9_-]{43}$/);
    assert.equal(plane.proc.adminToken, token);
  });

  const changes: [string, string, unknown?][] = [
    ['POST', '/v1/config', MESH_YAML],
    ['DELETE', '/v1/config/Service/reviews'],
    ['POST', '/v1/revisions/1/rollback'],
    ['POST', '/v1/canary', { route: 'reviews', weights: { v1: 50, v2: 50 } }],
    ['POST', '/v1/tokens', { service: 'reviews' }],
    ['GET', '/v1/tokens'],
    ['DELETE', '/v1/tokens/0123456789ab'],
  ];
  for (const [method, p, body] of changes) {
    test(`${method} ${p} without the admin token: 401 UNAUTHENTICATED, nothing changed`, async () => {
      const before = await state(api);
      const r = await call(api, method, p, { anonymous: true, ...(body === undefined ? {} : { body }) });
      assertApiError(r, { status: 401, code: 'SKEIN_ERR_UNAUTHENTICATED', message: 'admin token' });
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="skein"');
      const wrong = await call(api, method, p, { headers: { authorization: 'Bearer skein-admin.not-the-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }, ...(body === undefined ? {} : { body }) });
      assertApiError(wrong, { status: 401, code: 'SKEIN_ERR_UNAUTHENTICATED' });
      await assertUnchanged(api, before, `${method} ${p}`);
    });
  }

  test('reads need no token', async () => {
    for (const p of ['/healthz', '/v1/config', '/v1/revisions', '/v1/proxies', '/v1/endpoints', '/v1/xds', '/v1/ca']) {
      const r = await call(api, 'GET', p, { anonymous: true });
      assert.equal(r.status, 200, `${p}: ${JSON.stringify(r.body)}`);
    }
  });

  test('with the admin token a change is stored', async () => {
    const r = await call(api, 'POST', '/v1/config', { body: MESH_YAML });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });

  test('a join token is shown once, listed without its secret, stored only as a hash, and revocable', async () => {
    const created = await call(api, 'POST', '/v1/tokens', { body: { service: 'reviews', ttl: '2h', reusable: true } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { token, id } = created.body as { token: string; id: string };
    assert.match(token, /^skein-jt\./);
    assert.deepEqual({ ...created.body, token: undefined, createdAt: undefined, expiresAt: undefined }, { id, service: 'reviews', namespace: 'default', serviceAccount: 'reviews', reusable: true, token: undefined, createdAt: undefined, expiresAt: undefined });
    const listed = await call(api, 'GET', '/v1/tokens');
    const mine = (listed.body.tokens as { id: string }[]).filter((t) => t.id === id);
    assert.equal(mine.length, 1);
    assert.ok(!JSON.stringify(listed.body).includes(token), 'the token is never listed');
    assert.ok(!JSON.stringify(listed.body).includes('hash'), 'nor its hash');
    const stored = fs.readFileSync(path.join(plane.dataDir, 'join-tokens.json'), 'utf8');
    assert.ok(!stored.includes(token), 'the token is not stored');
    assert.equal(fs.statSync(path.join(plane.dataDir, 'join-tokens.json')).mode & 0o777, 0o600);
    assert.equal(plane.proc.logs().includes(token), false, 'nor logged');
    const revoked = await call(api, 'DELETE', `/v1/tokens/${id}`);
    assert.equal(revoked.status, 200);
    const after = await call(api, 'GET', '/v1/tokens');
    assert.equal((after.body.tokens as { id: string }[]).some((t) => t.id === id), false);
    assertApiError(await call(api, 'DELETE', `/v1/tokens/${id}`), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: id });
  });

  const badTokens: [string, unknown, string, string][] = [
    ['no service', {}, 'body.service', 'required'],
    ['a service that is not a DNS label', { service: 'Reviews_1' }, 'service', 'DNS label'],
    ['an unknown field', { service: 'reviews', ttll: '1h' }, 'body.ttll', 'unknown field'],
    ['a ttl that is not a duration', { service: 'reviews', ttl: 'soon' }, 'body.ttl', 'duration'],
    ['a ttl over 30 days', { service: 'reviews', ttl: '721h' }, 'ttl', '720h'],
    ['reusable that is not a boolean', { service: 'reviews', reusable: 'yes' }, 'body.reusable', 'true or false'],
  ];
  for (const [name, body, named, message] of badTokens) {
    test(`POST /v1/tokens with ${name}: 422 naming ${named}, nothing minted`, async () => {
      const before = (await call(api, 'GET', '/v1/tokens')).body.tokens.length as number;
      const r = await call(api, 'POST', '/v1/tokens', { body });
      assertApiError(r, { status: 422, code: 'SKEIN_ERR_VALIDATION', message });
      assert.ok((r.body.error.message as string).includes(named), r.body.error.message);
      assert.equal((await call(api, 'GET', '/v1/tokens')).body.tokens.length, before);
    });
  }

  test('skein token create prints the bare token (for --token-file), list shows it, revoke removes it; the CLI finds the admin token in SKEIN_DATA_DIR', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, SKEIN_API: api, SKEIN_DATA_DIR: plane.dataDir, SKEIN_CA_FILE: plane.proc.trustBundleFile };
    delete env.SKEIN_TOKEN;
    const created = spawnSync(process.execPath, [SKEIN_MAIN, 'token', 'create', '--service', 'ratings', '--ttl', '10m'], { env, encoding: 'utf8' });
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /^skein-jt\.[A-Za-z0-9_-]+\n$/);
    assert.match(created.stderr, /join token [0-9a-f]{12} for ratings\.default \(service ratings\), single-use, expires/);
    const id = /join token ([0-9a-f]{12})/.exec(created.stderr)![1]!;
    const listed = spawnSync(process.execPath, [SKEIN_MAIN, 'token', 'list'], { env, encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${id}\\s+ratings\\s+ratings\\.default\\s+single`));
    assert.ok(!listed.stdout.includes(created.stdout.trim()));
    const revoked = spawnSync(process.execPath, [SKEIN_MAIN, 'token', 'revoke', id], { env, encoding: 'utf8' });
    assert.equal(revoked.status, 0, revoked.stderr);
    const anon = spawnSync(process.execPath, [SKEIN_MAIN, 'token', 'list'], { env: { ...env, SKEIN_DATA_DIR: '/nonexistent' }, encoding: 'utf8' });
    assert.equal(anon.status, 1);
    assert.match(anon.stderr, /admin token/);
    const viaEnv = spawnSync(process.execPath, [SKEIN_MAIN, 'token', 'list'], { env: { ...env, SKEIN_DATA_DIR: '/nonexistent', SKEIN_TOKEN: plane.proc.adminToken }, encoding: 'utf8' });
    assert.equal(viaEnv.status, 0, viaEnv.stderr);
  });

  test('the API is HTTPS from the mesh CA: plaintext gets no answer, and a CLI without the roots is refused, naming --ca-file', async () => {
    assert.match(api, /^https:\/\/127\.0\.0\.1:\d+$/);
    await assert.rejects(fetch(api.replace('https:', 'http:') + '/healthz', { signal: AbortSignal.timeout(5000) }));
    const r = spawnSync(process.execPath, [SKEIN_MAIN, 'get', '--api', api], { encoding: 'utf8', env: { ...process.env, SKEIN_DATA_DIR: '/nonexistent', SKEIN_CA_FILE: '' } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot reach the control plane API at https:.*SELF_SIGNED_CERT_IN_CHAIN.*--ca-file or SKEIN_CA_FILE/);
  });

  test('a client certificate for spiffe://<td>/ns/skein-system/sa/admin is an admin credential; another workload\'s is not', async () => {
    const admin = await workloadCert(plane.proc, 'admin', 'admin', 'skein-system');
    const other = await workloadCert(plane.proc, 'reviews');
    const ca = fs.readFileSync(plane.proc.trustBundleFile, 'utf8');
    const post = (c: TestCert) => undiciFetch(`${api}/v1/config?dryRun=true`, {
      method: 'POST', headers: { 'content-type': 'application/yaml' }, body: MESH_YAML,
      dispatcher: new Agent({ connect: { ca, key: c.keyPem, cert: c.certChainPem } }),
    });
    const ok = await post(admin);
    assert.equal(ok.status, 200, await ok.text());
    const refused = await post(other);
    assert.equal(refused.status, 401, await refused.text());
  });

  test('skein ca status shows the generated root', () => {
    const r = spawnSync(process.execPath, [SKEIN_MAIN, 'ca', 'status', '-o', 'json', '--api', api, '--ca-file', plane.proc.trustBundleFile], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { trustDomain: string; source: string; notAfter: string; trustBundle: string };
    assert.equal(s.trustDomain, 'skein.local');
    assert.equal(s.source, 'generated');
    assert.ok(Date.parse(s.notAfter) > Date.now() + 9 * 365 * 24 * 3600_000);
    assert.match(s.trustBundle, /^-----BEGIN CERTIFICATE-----/);
  });
});
