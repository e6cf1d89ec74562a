/**
 * Black-box tests of the `skein` CLI: the real entry point run as a child process, talking to a
 * real `skein control-plane` process. The main describe block shares one control plane and its
 * tests run in order, each building on the config the previous ones left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { show, skein } from '../support/skein-cli';
import { API_VERSION, MESH_YAML, call, ratingsService, reviewsRoute, reviewsService, startPlane, state, tempDir, assertUnchanged } from '../support/skein';
import type { Plane } from '../support/skein';
import { closedPort } from '../support/ports';


describe('skein CLI against a real control plane', () => {
  let plane: Plane | undefined;
  let api = '';
  const dir = tempDir('cli');
  const meshFile = path.join(dir, 'mesh.yaml');
  const badFile = path.join(dir, 'bad.yaml');
  const badManyFile = path.join(dir, 'bad-many.json');
  fs.writeFileSync(meshFile, MESH_YAML);
  fs.writeFileSync(badFile, MESH_YAML.replace('{name: reviews, subset: v2, weight: 10}', '{name: reviews, subset: v2, wieght: 10}'));
  fs.writeFileSync(badManyFile, JSON.stringify([{ ...reviewsService(), spec: { ports: [{ name: 'grpc', port: 0 }] } }, { ...reviewsRoute(), spec: { parentRefs: [{ name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews', weight: -1 }] }] } }]));

  /** skein with SKEIN_API pointing at this control plane. */
  const cli = (args: string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}) =>
    skein(args, { ...opts, env: { SKEIN_API: api, SKEIN_DATA_DIR: plane?.dataDir, USER: 'tester', ...(opts.env ?? {}) } });

  before(async () => {
    plane = await startPlane();
    api = plane.api;
  });

  after(async () => {
    const code = await plane?.stop();
    if (plane) fs.rmSync(plane.dataDir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0);
  });

  test('apply --dry-run prints the diff and "dry run" and stores nothing', async () => {
    const before = await state(api);
    const r = await cli(['apply', '-f', meshFile, '--dry-run']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^\+ GRPCRoute\/reviews$/m);
    assert.match(r.stdout, /^\+ Service\/reviews$/m);
    assert.match(r.stdout, /dry run: would create revision 1 \(nothing was stored\)/);
    await assertUnchanged(api, before, 'apply --dry-run');
    assert.equal((await call(api, 'GET', '/v1/config')).body.revision, 0);
  });

  test('apply -f FILE applies, prints the diff and "applied: revision 1", recording -m and --author', async () => {
    const r = await cli(['apply', '-f', meshFile, '-m', 'initial mesh', '--author', 'ci-bot']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '+ GRPCRoute/reviews\n+ Service/reviews\napplied: revision 1\nrevision 1 reached no proxy: no connected proxy subscribes to what it changed\n');
    const cfg = await call(api, 'GET', '/v1/config');
    assert.equal(cfg.body.revision, 1);
    assert.deepEqual(cfg.body.resources, [reviewsRoute(90, 10), reviewsService()]);
    assert.equal(cfg.body.author, 'ci-bot');
    assert.equal(cfg.body.message, 'initial mesh');
  });

  test('applying the same file again is a no-op', async () => {
    const r = await cli(['apply', '-f', meshFile]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'no change: revision 1 is current\n');
    assert.equal((await call(api, 'GET', '/v1/config')).body.revision, 1);
  });

  test('apply -f - reads the config from stdin (author defaults to $USER)', async () => {
    const r = await cli(['apply', '-f', '-'], { input: JSON.stringify(ratingsService()) });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '+ Service/ratings\napplied: revision 2\nrevision 2 reached no proxy: no connected proxy subscribes to what it changed\n');
    const cfg = await call(api, 'GET', '/v1/config');
    assert.ok(cfg.body.resources.some((x: { kind: string; metadata: { name: string } }) => x.kind === 'Service' && x.metadata.name === 'ratings'));
    assert.equal(cfg.body.author, 'tester');
  });

  test('get prints the current config as YAML', async () => {
    const r = await cli(['get']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^# revision 2$/m);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as unknown);
    assert.deepEqual(docs, [reviewsRoute(90, 10), ratingsService(), reviewsService()]);
  });

  test('get KIND/NAME -o json prints one resource; get KIND filters; a missing one exits 1', async () => {
    const [r, kind, old, missing, badFmt] = await Promise.all([
      cli(['get', 'GRPCRoute/reviews', '-o', 'json']),
      cli(['get', 'Service', '--output', 'json']),
      cli(['get', '--revision', '1', '-o', 'json']),
      cli(['get', 'GRPCRoute/nope']),
      cli(['get', '-o', 'xml']),
    ]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(JSON.parse(r.stdout), { revision: 2, resources: [reviewsRoute(90, 10)] });
    assert.deepEqual(JSON.parse(kind.stdout).resources.map((x: { metadata: { name: string } }) => x.metadata.name), ['ratings', 'reviews']);
    assert.deepEqual(JSON.parse(old.stdout), { revision: 1, resources: [reviewsRoute(90, 10), reviewsService()] });
    assert.equal(missing.code, 1, show(missing));
    assert.match(missing.stderr, /GRPCRoute\/nope does not exist in revision 2/);
    assert.equal(badFmt.code, 1, show(badFmt));
    assert.match(badFmt.stderr, /--output: must be one of yaml, json, table, got "xml"/);
  });

  test('revisions prints a table of every revision with author, message and changes', async () => {
    const r = await cli(['revisions']);
    assert.equal(r.code, 0, show(r));
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^REV\s+CREATED\s+AUTHOR\s+MESSAGE\s+CHANGES$/);
    assert.equal(lines.length, 3, r.stdout);
    assert.match(lines[1]!, /^1\s+\S+\s+ci-bot\s+initial mesh\s+\+GRPCRoute\/reviews \+Service\/reviews$/);
    assert.match(lines[2]!, /^2\s+\S+\s+tester\s+apply\s+\+Service\/ratings$/);
    const json = await cli(['revisions', '-o', 'json']);
    assert.deepEqual(JSON.parse(json.stdout).map((m: { revision: number }) => m.revision), [1, 2]);
  });

  test('canary ROUTE v1=50 v2=50 prints the weight change, and get shows it', async () => {
    const r = await cli(['canary', 'reviews', 'v1=50', 'v2=50']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, [
      '~ GRPCRoute/reviews',
      '    spec.rules[0].backendRefs[0].weight: 90 -> 50',
      '    spec.rules[0].backendRefs[1].weight: 10 -> 50',
      'applied: revision 3',
      'revision 3 reached no proxy: no connected proxy subscribes to what it changed',
      '',
    ].join('\n'));
    const get = await cli(['get', 'GRPCRoute/reviews', '-o', 'json']);
    assert.deepEqual(JSON.parse(get.stdout), { revision: 3, resources: [reviewsRoute(50, 50)] });
    const rev = await call(api, 'GET', '/v1/revisions/3');
    assert.equal(rev.body.message, 'canary reviews v1=50 v2=50');
  });

  test('canary --dry-run changes nothing', async () => {
    const before = await state(api);
    const r = await cli(['canary', 'reviews', 'v1=0', 'v2=100', '--dry-run']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /50 -> 0/);
    assert.match(r.stdout, /dry run: would create revision 4/);
    await assertUnchanged(api, before, 'canary --dry-run');
  });

  test('rollback 1 makes revision 1 current again as a new revision', async () => {
    const r = await cli(['rollback', '1']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^~ GRPCRoute\/reviews$/m);
    assert.match(r.stdout, /^- Service\/ratings$/m);
    assert.match(r.stdout, /applied: revision 4\nrevision 4 reached no proxy/);
    const get = await cli(['get', '-o', 'json']);
    assert.deepEqual(JSON.parse(get.stdout), { revision: 4, resources: [reviewsRoute(90, 10), reviewsService()] });
  });

  test('delete KIND/NAME deletes; a missing resource exits 1 with the API message', async () => {
    assert.equal((await cli(['apply', '-f', '-'], { input: JSON.stringify(ratingsService()) })).code, 0);
    const r = await cli(['delete', 'Service/ratings']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '- Service/ratings\napplied: revision 6\nrevision 6 reached no proxy: no connected proxy subscribes to what it changed\n');
    const before = await state(api);
    const missing = await cli(['delete', 'HTTPRoute/x']);
    assert.equal(missing.code, 1, show(missing));
    assert.match(missing.stderr, /no such resource: HTTPRoute\/x/);
    const referenced = await cli(['delete', 'Service/reviews']);
    assert.equal(referenced.code, 1, show(referenced));
    assert.match(referenced.stderr, /GRPCRoute\/reviews: spec\.parentRefs\[0\]\.name/);
    await assertUnchanged(api, before, 'failed deletes');
  });

  test('proxy-status with no xDS clients says so', async () => {
    const r = await cli(['proxy-status']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'no xDS clients connected\n');
    const json = await cli(['proxy-status', '-o', 'json']);
    assert.deepEqual(JSON.parse(json.stdout), { revision: 6, proxies: [] });
  });

  test('endpoints lists live registrations', async () => {
    const reg = await call(api, 'POST', '/v1/endpoints', { body: { service: 'reviews', address: '10.9.8.7', port: 50051, labels: { version: 'v1' }, ttl: '5m', node: 'n1' } });
    assert.equal(reg.status, 200);
    try {
      const r = await cli(['endpoints']);
      assert.equal(r.code, 0, show(r));
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^SERVICE\s+ADDRESS\s+LABELS\s+HEALTH\s+IDENTITY\s+NODE\s+EXPIRES$/);
      // Registered over HTTP by an operator: no workload identity.
      assert.match(lines[1]!, /^reviews\s+10\.9\.8\.7:50051\s+version=v1\s+HEALTHY\s+-\s+n1\s+\S+$/);
    } finally {
      await call(api, 'DELETE', `/v1/endpoints/${reg.body.id}`);
    }
  });

  describe('errors exit non-zero and print the reason', () => {
    test('apply of an invalid file exits 1 and prints the field path; nothing is stored', async () => {
      const before = await state(api);
      const r = await cli(['apply', '-f', badFile]);
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, /GRPCRoute\/reviews: spec\.rules\[0\]\.backendRefs\[1\]\.wieght: unknown field/);
      assert.equal(r.stdout, '');
      const many = await cli(['apply', '-f', badManyFile]);
      assert.equal(many.code, 1, show(many));
      assert.match(many.stderr, /invalid config:\n/);
      assert.match(many.stderr, /^ {2}- Service\/reviews: spec\.ports\[0\]\.port: must be >= 1$/m);
      assert.match(many.stderr, /^ {2}- GRPCRoute\/reviews: spec\.rules\[0\]\.backendRefs\[0\]\.weight: must be >= 0$/m);
      await assertUnchanged(api, before, 'invalid apply');
    });

    test('apply of malformed YAML exits 1 naming the line', async () => {
      const r = await cli(['apply', '-f', '-'], { input: `apiVersion: ${API_VERSION}\nkind: Service\nmetadata: {name: x\n` });
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, /SKEIN_ERR_MALFORMED_INPUT.*line \d+/);
    });

    test('apply without -f, or with an unreadable file, exits 1', async () => {
      const none = await cli(['apply']);
      assert.equal(none.code, 1, show(none));
      assert.match(none.stderr, /--file \(-f\) is required/);
      const missing = await cli(['apply', '-f', path.join(dir, 'nope.yaml')]);
      assert.equal(missing.code, 1, show(missing));
      assert.match(missing.stderr, /cannot read .*nope\.yaml/);
    });

    test('canary with bad syntax exits 1 without calling the API', async () => {
      const before = await state(api);
      const bad = ['v1=abc', 'v1=-5', 'v1'];
      const [dup, noPairs, ...runs] = await Promise.all([cli(['canary', 'reviews', 'v1=1', 'v1=2']), cli(['canary', 'reviews']), ...bad.map((pair) => cli(['canary', 'reviews', pair]))]);
      bad.forEach((pair, i) => {
        const r = runs[i]!;
        assert.equal(r.code, 1, show(r));
        assert.ok(r.stderr.includes(`"${pair}": expected SUBSET=WEIGHT`), show(r));
      });
      assert.equal(dup!.code, 1, show(dup!));
      assert.match(dup!.stderr, /subset v1 is given twice/);
      assert.equal(noPairs!.code, 1, show(noPairs!));
      assert.match(noPairs!.stderr, /expected ROUTE SUBSET=WEIGHT/);
      await assertUnchanged(api, before, 'bad canary syntax');
    });

    test('canary errors from the API exit 1 with the API message', async () => {
      const before = await state(api);
      const route = await cli(['canary', 'nope', 'v1=1']);
      assert.equal(route.code, 1, show(route));
      assert.match(route.stderr, /route "nope" does not exist/);
      const subset = await cli(['canary', 'reviews', 'v1=1', 'v9=1']);
      assert.equal(subset.code, 1, show(subset));
      assert.match(subset.stderr, /spec\.rules\[0\]\.backendRefs\[1\]\.subset: Service "reviews" has no subset "v9"/);
      const zero = await cli(['canary', 'reviews', 'v1=0', 'v2=0']);
      assert.equal(zero.code, 1, show(zero));
      assert.match(zero.stderr, /weights: must not all be 0/);
      await assertUnchanged(api, before, 'rejected canaries');
    });

    test('rollback to a missing revision, or a stale --expect-revision, exits 1', async () => {
      const before = await state(api);
      const missing = await cli(['rollback', '99']);
      assert.equal(missing.code, 1, show(missing));
      assert.match(missing.stderr, /revision 99 does not exist/);
      const stale = await cli(['apply', '-f', meshFile, '--replace', '--expect-revision', '1']);
      assert.equal(stale.code, 1, show(stale));
      assert.match(stale.stderr, /SKEIN_ERR_CONFLICT.*expected revision 1/);
      const syntax = await cli(['rollback', 'latest']);
      assert.equal(syntax.code, 1, show(syntax));
      assert.match(syntax.stderr, /expected one REVISION number/);
      await assertUnchanged(api, before, 'failed rollbacks');
    });

    test('an unknown flag exits 1 naming the flag', async () => {
      const cmds = ['get', 'apply', 'canary', 'control-plane'];
      const runs = await Promise.all(cmds.map((cmd) => cli([cmd, '--bogus-flag'])));
      for (const [i, cmd] of cmds.entries()) {
        const r = runs[i]!;
        assert.equal(r.code, 1, `${cmd}: ${show(r)}`);
        assert.match(r.stderr, /--bogus-flag/);
        assert.ok(r.stderr.includes(`skein ${cmd} --help`), r.stderr);
      }
    });

    test('an unreachable API exits 1 with "cannot reach"', async () => {
      const port = await closedPort();
      const [r, refused, notUrl] = await Promise.all([
        cli(['get'], { env: { SKEIN_API: 'http://127.0.0.1:1' } }),
        cli(['revisions'], { env: { SKEIN_API: `http://127.0.0.1:${port}` } }),
        cli(['get'], { env: { SKEIN_API: 'not a url' } }),
      ]);
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, /cannot reach the control plane API at http:\/\/127\.0\.0\.1:1/);
      assert.equal(refused.code, 1, show(refused));
      assert.match(refused.stderr, new RegExp(`cannot reach the control plane API at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
      assert.equal(notUrl.code, 1, show(notUrl));
      assert.match(notUrl.stderr, /--api: "not a url" is not a URL/);
    });
  });

  test('--api overrides SKEIN_API', async () => {
    const r = await cli(['get', '-o', 'json', '--api', api], { env: { SKEIN_API: 'http://127.0.0.1:1' } });
    assert.equal(r.code, 0, show(r));
    assert.equal(JSON.parse(r.stdout).revision, 6);
    const wrong = await cli(['get', '--api', 'http://127.0.0.1:1']);
    assert.equal(wrong.code, 1, show(wrong));
    assert.match(wrong.stderr, /cannot reach/);
  });
});
