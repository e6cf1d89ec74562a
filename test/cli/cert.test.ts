/**
 * `skein cert issue|renew` against a real control plane process: the files and their modes, the
 * certificate's SPIFFE ID and chain, a renewal with the certificate alone (no token, no admin
 * credential) giving a new serial and a new key, and a refused token writing nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { SKEIN_MAIN } from '../../harness/src/control-plane-process';
import { call, startPlane, stopPlane, tempDir } from '../support/skein';
import type { Plane } from '../support/skein';
import { show, skein } from '../support/skein-cli';
import type { Run } from '../support/skein-cli';

const spiffe = (ns: string, sa: string) => `spiffe://skein.local/ns/${ns}/sa/${sa}`;
const mode = (p: string) => fs.statSync(p).mode & 0o777;

interface Files { key: string; chain: string; ca: string; leaf: X509Certificate }
function files(dir: string): Files {
  const key = fs.readFileSync(path.join(dir, 'key.pem'), 'utf8');
  const chain = fs.readFileSync(path.join(dir, 'cert-chain.pem'), 'utf8');
  const ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  return { key, chain, ca, leaf: new X509Certificate(chain) };
}

/** The lines `cert issue` / `cert renew` print, by their label. */
function printed(r: Run): Record<string, string> {
  return Object.fromEntries(r.stdout.trimEnd().split('\n').map((l) => /^(\S+(?: id)?)\s+(.*)$/.exec(l)!).map((m) => [m[1]!, m[2]!]));
}

describe('skein cert', () => {
  let plane: Plane | undefined;
  const work = tempDir('cert');
  const noCredentials = tempDir('cert-no-admin'); // SKEIN_DATA_DIR with no admin token in it
  /** skein with the control plane's xDS port; SKEIN_DATA_DIR `dataDir` (the admin token's, or none). */
  const cli = (args: string[], dataDir = noCredentials) => skein(args, { env: { SKEIN_API: plane!.api, SKEIN_CA_FILE: plane!.proc.trustBundleFile, SKEIN_XDS: plane!.proc.xds, SKEIN_DATA_DIR: dataDir, SKEIN_TOKEN: undefined, SKEIN_XDS_CA_FILE: undefined } });
  async function tokenFile(service: string): Promise<string> {
    const r = await call(plane!.api, 'POST', '/v1/tokens', { body: { service } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const f = path.join(work, `${service}-${r.body.id as string}.token`);
    fs.writeFileSync(f, `${r.body.token as string}\n`, { mode: 0o600 });
    return f;
  }
  const tokens = async () => (await call(plane!.api, 'GET', '/v1/tokens')).body.tokens as { service: string; namespace: string; serviceAccount: string; reusable: boolean; createdAt: string; expiresAt: string; usedAt?: string }[];

  before(async () => { plane = await startPlane(); });
  after(async () => {
    await stopPlane(plane);
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(noCredentials, { recursive: true, force: true });
  });

  const dir = path.join(work, 'reviews', 'certs');

  test('issue with --token-file writes key.pem 0600 (dir 0700), the chain and the trust bundle, and prints the SPIFFE ID, serial and expiry', async () => {
    const r = await cli(['cert', 'issue', '--service', 'reviews', '--token-file', await tokenFile('reviews'), '--out', dir, '--xds-ca-file', plane!.proc.trustBundleFile]);
    assert.equal(r.code, 0, show(r));
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(path.join(dir, 'key.pem')), 0o600);
    assert.equal(mode(path.join(dir, 'cert-chain.pem')), 0o644);
    assert.equal(mode(path.join(dir, 'ca.pem')), 0o644);
    const f = files(dir);
    assert.equal(f.leaf.subjectAltName, `URI:${spiffe('default', 'reviews')}`);
    assert.equal(f.ca.trim(), fs.readFileSync(plane!.proc.trustBundleFile, 'utf8').trim(), 'ca.pem is the trust bundle');
    const root = new X509Certificate(f.ca);
    assert.ok(f.leaf.checkIssued(root) && f.leaf.verify(root.publicKey), 'the chain leads to the mesh root');
    assert.ok(f.leaf.checkPrivateKey(createPrivateKey(f.key)), 'key.pem is the certificate\'s key');
    const out = printed(r);
    assert.equal(out['spiffe id'], spiffe('default', 'reviews'));
    assert.equal(out['serial']!.toUpperCase().replace(/^0+/, ''), f.leaf.serialNumber.replace(/^0+/, ''));
    assert.equal(Date.parse(out['expires']!), Date.parse(f.leaf.validTo), 'the expiry printed is the certificate\'s');
    assert.match(out['files']!, /key\.pem \(0600\)/);
    assert.ok((await tokens()).every((t) => t.usedAt !== undefined), 'the token is used up');
  });

  test('renew uses the certificate alone (no token, no admin credential): a new serial and a new key for the same identity, key still 0600', async () => {
    const before = files(dir);
    const tokensBefore = (await tokens()).length;
    const r = await cli(['cert', 'renew', '--dir', dir]);
    assert.equal(r.code, 0, show(r));
    const after = files(dir);
    assert.equal(after.leaf.subjectAltName, before.leaf.subjectAltName);
    assert.notEqual(after.leaf.serialNumber, before.leaf.serialNumber);
    assert.notEqual(after.key, before.key, 'a fresh key');
    assert.ok(after.leaf.checkPrivateKey(createPrivateKey(after.key)));
    assert.equal(mode(path.join(dir, 'key.pem')), 0o600);
    assert.equal(printed(r)['spiffe id'], spiffe('default', 'reviews'));
    assert.equal((await tokens()).length, tokensBefore, 'no token minted');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ca.pem', 'cert-chain.pem', 'key.pem'], 'no temp files left');
  });

  test('issue with no --token-file mints a single-use 10m token for exactly that identity with the admin token', async () => {
    const out = path.join(work, 'ratings');
    const r = await cli(['cert', 'issue', '--service', 'ratings', '--namespace', 'prod', '--service-account', 'ratings-sa', '--out', out, '--ttl', '2h'], plane!.dataDir);
    assert.equal(r.code, 0, show(r));
    const f = files(out);
    assert.equal(f.leaf.subjectAltName, `URI:${spiffe('prod', 'ratings-sa')}`);
    assert.equal(Date.parse(f.leaf.validTo) - Date.parse(f.leaf.validFrom), 2 * 3600_000 + 60_000, '--ttl 2h (backdated 1m)');
    const minted = (await tokens()).filter((t) => t.service === 'ratings');
    assert.equal(minted.length, 1);
    assert.deepEqual({ ns: minted[0]!.namespace, sa: minted[0]!.serviceAccount, reusable: minted[0]!.reusable, used: minted[0]!.usedAt !== undefined }, { ns: 'prod', sa: 'ratings-sa', reusable: false, used: true });
    assert.equal(Date.parse(minted[0]!.expiresAt) - Date.parse(minted[0]!.createdAt), 10 * 60_000);
  });

  test('without --token-file and without the admin token, issue fails saying so, and writes nothing', async () => {
    const out = path.join(work, 'no-admin');
    const r = await cli(['cert', 'issue', '--service', 'details', '--out', out, '--xds-ca-file', plane!.proc.trustBundleFile]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /no --token-file, so a join token is minted through the API, which failed: .*needs the admin token/);
    assert.equal(fs.existsSync(out), false);
  });

  test('a token for another service is refused with the control plane\'s reason, and nothing is written', async () => {
    const out = path.join(work, 'stolen');
    const r = await cli(['cert', 'issue', '--service', 'reviews', '--token-file', await tokenFile('ratings'), '--out', out, '--xds-ca-file', plane!.proc.trustBundleFile]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /SKEIN_ERR_PERMISSION_DENIED/);
    assert.ok(r.stderr.includes(`asks for url:${spiffe('default', 'reviews')}; this caller may only get ${spiffe('default', 'ratings')}`), r.stderr);
    assert.equal(fs.existsSync(out), false, 'no directory, no key');
    assert.equal(r.stdout, '');
  });

  test('renew of a directory without a certificate fails naming the file', async () => {
    const r = await cli(['cert', 'renew', '--dir', path.join(work, 'nothing-here')]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /--dir: cannot read .*nothing-here\/key\.pem: ENOENT/);
  });

  test('renew --loop keeps running with the certificate in place until SIGTERM, then exits 0', async () => {
    const before = files(dir);
    const child = spawn(process.execPath, [SKEIN_MAIN, 'cert', 'renew', '--dir', dir, '--loop', '--xds', plane!.proc.xds, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines = readline.createInterface({ input: child.stdout });
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (l) => { seen.push(l); if (l.startsWith('renewing at about half its lifetime')) resolve(); });
      void exited.then((code) => reject(new Error(`exited ${code} before it was running: ${seen.join('\n')}\n${stderr}`)));
    });
    assert.ok(seen.includes(`spiffe id  ${spiffe('default', 'reviews')}`), seen.join('\n'));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.equal(files(dir).key, before.key, 'a certificate far from half its lifetime is not renewed at start');
  });
});
