/**
 * `skein injector` as a process: flags checked before anything starts (each error names its
 * flag), the ready line, an AdmissionReview answered over HTTPS with the flags' settings in the
 * injected sidecar, and a clean exit on SIGTERM.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { SKEIN_MAIN } from '../../../harness/src/control-plane-process';
import { PACKAGE_ROOT } from '../../../shared/src/paths';
import { tempDir } from '../../support/skein';
import { show, skein } from '../../support/skein-cli';

describe('skein injector', () => {
  const dir = tempDir('injector-cli');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('bash', [path.join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'injector-tls.sh'), '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const tls = ['--tls-cert', path.join(dir, 'tls.crt'), '--tls-key', path.join(dir, 'tls.key')];

  const refused: [string, string[], RegExp][] = [
    ['no certificate', [], /--tls-cert and --tls-key are required/],
    ['a certificate file that is not there', ['--tls-cert', path.join(dir, 'nope.crt'), '--tls-key', path.join(dir, 'tls.key')], /--tls-cert: cannot read .*nope\.crt: ENOENT/],
    ['a bad --xds', [...tls, '--xds', 'cp:18000,'], /--xds: must be HOST:PORT/],
    ['a bad --trust-domain', [...tls, '--trust-domain', 'Not A Domain'], /--trust-domain/],
    ['a bad --trust-bundle-configmap', [...tls, '--trust-bundle-configmap', 'Bad_Name'], /--trust-bundle-configmap: "Bad_Name" is not a ConfigMap name/],
    ['a bad --listen', [...tls, '--listen', 'nowhere'], /--listen: "nowhere" must be host:port/],
  ];
  for (const [what, args, want] of refused) {
    test(`refused at start: ${what}`, async () => {
      const r = await skein(['injector', '--listen', '127.0.0.1:0', ...args]);
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, want);
    });
  }

  test('serves reviews with its flags\' settings and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [SKEIN_MAIN, 'injector', '--listen', '127.0.0.1:0', ...tls, '--xds', 'cp-a:18000,cp-b:18000', '--trust-domain', 'corp.example', '--trust-bundle-configmap', 'mesh-roots', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SKEIN_SIDECAR_IMAGE: 'registry.example/skein:9' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        readline.createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', () => reject(new Error(`exited before ready: ${stderr}`)));
      });
      const ready = JSON.parse(line) as { ready: boolean; listen: string };
      assert.equal(ready.ready, true);
      const port = Number(ready.listen.slice(ready.listen.lastIndexOf(':') + 1));
      const review = fs.readFileSync(path.join(PACKAGE_ROOT, 'test', 'injector', 'fixtures', 'pod-opt-in.json'));
      const answer = await new Promise<Record<string, any>>((resolve, reject) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        const req = https.request({ host: '127.0.0.1', port, path: '/inject/pod', method: 'POST', ca: fs.readFileSync(path.join(dir, 'ca.pem')), servername: 'skein-injector.skein-system.svc', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => { text += c.toString(); });
          res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
        });
        req.on('error', reject);
        req.end(review);
      });
      const ops = JSON.parse(Buffer.from(answer['response'].patch as string, 'base64').toString()) as { path: string; value: Record<string, any> }[]; // eslint-disable-line @typescript-eslint/no-explicit-any
      const sc = ops.find((o) => o.path === '/spec/initContainers')!.value[0] as { image: string; args: string[] };
      assert.equal(sc.image, 'registry.example/skein:9');
      const flag = (f: string) => sc.args[sc.args.indexOf(f) + 1];
      assert.equal(flag('--xds'), 'cp-a:18000,cp-b:18000');
      assert.equal(flag('--trust-domain'), 'corp.example');
      const volumes = ops.find((o) => o.path === '/spec/volumes/-' && o.value['configMap'] !== undefined)!.value;
      assert.equal(volumes['configMap'].name, 'mesh-roots');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});
