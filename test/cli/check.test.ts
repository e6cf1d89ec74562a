/**
 * `skein check` against real control plane processes: one finding per line, exit 0 with
 * warnings only (or none), exit 1 with any error; `-o json` is the API's answer. A read: it
 * works with no admin token anywhere.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { call, reviewsService, startPlane, stopPlane, tempDir } from '../support/skein';
import type { Plane } from '../support/skein';
import { show, skein } from '../support/skein-cli';
import { writeRootCaFiles } from '../support/test-ca';
import { closedPort } from '../support/ports';

describe('skein check', () => {
  let healthy: Plane | undefined;
  let expiring: Plane | undefined;
  const noCredentials = tempDir('check-no-admin'); // SKEIN_DATA_DIR with no admin-token in it
  const caDir = tempDir('check-ca');
  const check = (plane: Plane, args: string[] = []) => skein(['check', ...args], { env: { SKEIN_API: plane.api, SKEIN_CA_FILE: plane.proc.trustBundleFile, SKEIN_DATA_DIR: noCredentials, SKEIN_TOKEN: undefined } });

  before(async () => {
    const { certFile, keyFile } = await writeRootCaFiles(caDir, 10 * 24 * 3600_000);
    [healthy, expiring] = await Promise.all([startPlane(), startPlane({ extraArgs: ['--ca-cert', certFile, '--ca-key', keyFile] })]);
  });
  after(async () => {
    await Promise.all([stopPlane(healthy), stopPlane(expiring)]);
    fs.rmSync(noCredentials, { recursive: true, force: true });
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  test('with nothing wrong it says so and exits 0; -o json has no findings', async () => {
    const [r, json] = await Promise.all([check(healthy!), check(healthy!, ['-o', 'json'])]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^no findings \(checked at \S+\)\n$/);
    assert.equal(json.code, 0, show(json));
    const body = JSON.parse(json.stdout);
    assert.deepEqual({ errors: body.errors, warnings: body.warnings, findings: body.findings }, { errors: 0, warnings: 0, findings: [] });
  });

  test('a PERMISSIVE service is a warning line with its fix, and warnings alone exit 0', async () => {
    const permissive = { ...reviewsService(), spec: { ...(reviewsService().spec as object), mtls: 'PERMISSIVE' } };
    assert.equal((await call(healthy!.api, 'POST', '/v1/config', { body: [permissive] })).status, 201);
    const [r, json] = await Promise.all([check(healthy!), check(healthy!, ['-o', 'json'])]);
    assert.equal(r.code, 0, show(r));
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^SEVERITY\s+CHECK\s+WHAT\s+FIX$/);
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[1]!, /^warning\s+plaintext-service\s+Service\/reviews has spec\.mtls PERMISSIVE: .+\s+set spec\.mtls: STRICT on Service\/reviews once all of its callers have sidecars/);
    assert.equal(json.code, 0, show(json));
    assert.deepEqual(JSON.parse(json.stdout).findings.map((f: { severity: string; check: string; subject: string }) => [f.severity, f.check, f.subject]), [['warning', 'plaintext-service', 'Service/reviews']]);
  });

  test('a CA expiring in 10 days is an error line and exits 1, in table and json alike', async () => {
    const [r, json] = await Promise.all([check(expiring!), check(expiring!, ['-o', 'json'])]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /^error\s+ca-expiry\s+the mesh CA \(plugged, "CN=short-lived test root"\) expires at \S+, in (10d|9d23h)\s+restart the control plane with --ca-cert\/--ca-key/m);
    assert.equal(r.stderr, '');
    assert.equal(json.code, 1, show(json));
    const body = JSON.parse(json.stdout);
    assert.equal(body.errors, 1);
    assert.equal(body.findings[0].check, 'ca-expiry');
  });

  test('an unreachable API exits 1 with the reason on stderr', async () => {
    const r = await skein(['check', '--api', `http://127.0.0.1:${await closedPort()}`]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /cannot reach the control plane API/);
    assert.equal(r.stdout, '');
  });
});
