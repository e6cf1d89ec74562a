/**
 * Black-box tests of the `skein` CLI: the real entry point run as a child process, talking to a
 * real `skein control-plane` process. The main describe block shares one control plane and its
 * tests run in order, each building on the config the previous ones left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyStatus } from '../../control-plane/src/discovery/proxy-status';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { show, skein } from '../support/skein-cli';
import type { Run } from '../support/skein-cli';
import { API_VERSION, MESH_YAML, call, ratingsService, reviewsRoute, reviewsService, startPlane, state, tempDir, assertUnchanged } from '../support/skein';
import type { Plane } from '../support/skein';
import { closedPort } from '../support/ports';
import { eventually, RawAdsClient } from '../support/ads-client';
import { TYPE_URLS } from '../../shared/src/xds/protos';
import type { DiscoveryResponse } from '../../control-plane/src/discovery/ads-stream';

const COMMANDS = ['control-plane', 'apply', 'delete', 'get', 'revisions', 'rollback', 'canary', 'rollout', 'proxy-status', 'endpoints', 'token', 'ca', 'cert', 'check', 'top', 'demo'];


describe('skein --help', () => {
  test('lists every command and exits 0', async () => {
    const r = await skein(['--help']);
    assert.equal(r.code, 0, show(r));
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c} +\\S`, 'm'), `${c} missing:\n${r.stdout}`);
    assert.equal(r.stderr, '');
  });

  test('with no command prints usage and exits 2; an unknown command exits 2 naming it', async () => {
    const none = await skein([]);
    assert.equal(none.code, 2, show(none));
    assert.match(none.stdout, /Usage: skein COMMAND/);
    const bad = await skein(['frobnicate']);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /unknown command "frobnicate"/);
  });

  test('control-plane --help documents every flag with its default', async () => {
    const r = await skein(['control-plane', '--help']);
    assert.equal(r.code, 0, show(r));
    const line = (flag: string) => {
      const l = r.stdout.split('\n').find((x) => new RegExp(`^\\s+(-\\w, )?--${flag}(?![\\w-])`).test(x));
      assert.ok(l, `--${flag} is not documented:\n${r.stdout}`);
      return l;
    };
    const defaults: Record<string, string | undefined> = {
      'data-dir': './.skein-data', 'xds-listen': '127.0.0.1:18000', 'api-listen': '127.0.0.1:18001', config: undefined,
      'history-limit': '1000', 'max-body-bytes': '1048576', 'lease-ttl': '10s', 'log-level': 'info', 'monitoring-listen': '127.0.0.1:15014',
    };
    for (const [flag, dflt] of Object.entries(defaults)) {
      const l = line(flag);
      if (dflt !== undefined) assert.match(l, new RegExp(`\\(default: [^)]*${dflt.replace(/[.]/g, '\\.')}\\)`), `--${flag} default:\n${l}`);
    }
    assert.match(line('data-dir'), /\$SKEIN_DATA_DIR/);
    assert.match(line('log-level'), /\$SKEIN_LOG_LEVEL/);
  });

  test('sidecar --help documents every flag, each with its default', async () => {
    const r = await skein(['sidecar', '--help']);
    assert.equal(r.code, 0, show(r));
    const defaults: Record<string, string> = {
      xds: '127.0.0.1:18000', 'xds-ca-file': '<$SKEIN_DATA_DIR or ./.skein-data>/ca/trust-bundle.pem', 'trust-domain': 'skein.local', namespace: 'default',
      'service-account': '--service, else "sidecar"', 'xds-insecure': 'off', 'cert-renew-at': '0.5', 'cert-renew-jitter': '0.1', 'access-log': 'off', 'access-log-sample': '1', 'stats-report-interval': '5s', 'token-file': '$SKEIN_TOKEN_FILE', 'node-id': '<service or "sidecar">-<hostname>-<pid>', service: 'none', version: 'v1',
      'app-protocol': 'grpc', 'outbound-listen': '127.0.0.1:15001', 'inbound-listen': '<--advertise-address>:15006', 'advertise-address': '127.0.0.1',
      'admin-listen': '127.0.0.1:15000', 'lease-ttl': '10s', 'drain-timeout': '20s', 'log-level': 'info', 'metrics-buckets': '0.1, 0.25, 0.5, 0.75, 0.91, then 1 ms to 10.6 s',
    };
    for (const [flag, dflt] of Object.entries(defaults)) {
      const l = r.stdout.split('\n').find((x) => new RegExp(`^\\s+(-\\w, )?--${flag}(?![\\w-])`).test(x));
      assert.ok(l, `--${flag} is not documented:\n${r.stdout}`);
      assert.ok(l.includes(dflt), `--${flag} does not state its default ${dflt}:\n${l}`);
    }
    assert.match(r.stdout, /--app HOST:PORT\s+.*required with --service/);
  });

  test('rejects a bad --metrics-buckets or --monitoring-listen naming the flag, before starting', async () => {
    const [buckets, listen] = await Promise.all([
      skein(['sidecar', '--xds-insecure', '--metrics-buckets', '1,10,5']),
      skein(['control-plane', '--data-dir', tempDir('monitoring-flag'), '--monitoring-listen', 'nowhere']),
    ]);
    assert.notEqual(buckets.code, 0, show(buckets));
    assert.match(buckets.stderr, /--metrics-buckets: bounds must increase: 5 follows 10/);
    assert.notEqual(listen.code, 0, show(listen));
    assert.match(listen.stderr, /--monitoring-listen: "nowhere" must be host:port/);
  });

  test('rejects a bad --push-debounce or --push-debounce-max naming the flag, before starting', async () => {
    const [bad, long, below] = await Promise.all([
      skein(['control-plane', '--data-dir', tempDir('debounce-flag'), '--push-debounce', 'soon']),
      skein(['control-plane', '--data-dir', tempDir('debounce-flag'), '--push-debounce', '11s']),
      skein(['control-plane', '--data-dir', tempDir('debounce-flag'), '--push-debounce', '2s', '--push-debounce-max', '1s']),
    ]);
    for (const r of [bad, long, below]) assert.notEqual(r.code, 0, show(r));
    assert.match(bad.stderr, /--push-debounce: must be a duration from 0s to 10s, got "soon"/);
    assert.match(long.stderr, /--push-debounce: must be a duration from 0s to 10s, got "11s"/);
    assert.match(below.stderr, /--push-debounce-max: must be at least --push-debounce \(2s\), got "1s"/);
  });

  test('cert --help and check --help document every flag with its default', async () => {
    const [cert, check] = await Promise.all([skein(['cert', '--help']), skein(['check', '--help'])]);
    const expect: [Run, Record<string, string>][] = [
      [cert, {
        service: 'required', namespace: '(default: default)', 'service-account': '(default: --service)', 'trust-domain': '(default: skein.local)', out: 'required',
        'token-file': 'mint a single-use one valid 10m', dir: 'required', loop: '(default: renew once)', ttl: "the control plane's --workload-cert-ttl",
        xds: '127.0.0.1:18000', 'xds-ca-file': '$SKEIN_XDS_CA_FILE, else for issue <$SKEIN_DATA_DIR or ./.skein-data>/ca/trust-bundle.pem, for renew DIR/ca.pem',
        api: 'https://127.0.0.1:18001', 'admin-token-file': '$SKEIN_TOKEN', 'log-level': 'info',
      }],
      [check, { api: 'https://127.0.0.1:18001', output: '(default: table)' }],
    ];
    for (const [r, flags] of expect) {
      assert.equal(r.code, 0, show(r));
      for (const [flag, dflt] of Object.entries(flags)) {
        const l = r.stdout.split('\n').find((x) => new RegExp(`^\\s+(-\\w, )?--${flag}(?![\\w-])`).test(x));
        assert.ok(l, `--${flag} is not documented:\n${r.stdout}`);
        assert.ok(l.includes(dflt), `--${flag} does not state ${dflt}:\n${l}`);
      }
    }
    assert.match(check.stdout, /Exit 1 if any finding is an error, 0 otherwise/);
  });

  test('every subcommand has --help (and -h) that exits 0 with its usage', async () => {
    // One process per command for --help, and -h (the same parser path) on a few; two at a time:
    // each CLI start costs about a second of CPU, and 2 cores shared with the rest of the run.
    const cases: [string, string][] = [...COMMANDS.map((c): [string, string] => [c, '--help']), ['apply', '-h'], ['sidecar', '-h'], ['top', '-h']];
    const runs: Run[] = new Array(cases.length);
    let next = 0;
    await Promise.all([0, 1].map(async () => { while (next < cases.length) { const i = next++; runs[i] = await skein([cases[i]![0], cases[i]![1]]); } }));
    cases.forEach(([c, flag], i) => {
      const r = runs[i]!;
      assert.equal(r.code, 0, `${c} ${flag}: ${show(r)}`);
      assert.ok(r.stdout.startsWith(`Usage: skein ${c}`), `${c} ${flag}: ${r.stdout}`);
      assert.match(r.stdout, /^Flags:$/m);
      assert.match(r.stdout, /--help/);
    });
  });
});

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

describe('skein waits for the proxies: --wait, canary, rollout, proxy-status revisions', () => {
  let plane: Plane | undefined;
  let api = '';
  const clients: RawAdsClient[] = [];
  const cli = (args: string[]) => skein(args, { env: { SKEIN_API: api, SKEIN_DATA_DIR: plane?.dataDir, USER: 'tester' } });
  /** A proxy (raw ADS stream) subscribed to RDS reviews that ACKs or NACKs every response it gets. */
  async function proxyThat(answer: 'ack' | 'nack' | 'ignore', node: string): Promise<RawAdsClient> {
    const c = new RawAdsClient(plane!.proc.xdsInsecure!, node);
    clients.push(c);
    c.subscribe(TYPE_URLS.ROUTE, ['reviews']);
    c.ack(await c.next(TYPE_URLS.ROUTE), ['reviews']);
    c.call.on('data', (r: DiscoveryResponse) => {
      if (answer === 'ack') c.ack(r, ['reviews']);
      else if (answer === 'nack') c.nack(r, '', `${node} cannot use these weights`, ['reviews']);
    });
    await eventually(async () => ((await call(api, 'GET', '/v1/proxies')).body.proxies.find((p: { nodeId: string; state: string }) => p.nodeId === node)?.state === 'SYNCED' ? true : undefined), `${node} SYNCED`);
    return c;
  }

  before(async () => {
    // Scripted proxies speak plaintext ADS on the loopback insecure listener.
    plane = await startPlane({ extraArgs: ['--xds-insecure-listen', '127.0.0.1:0'] });
    api = plane.api;
    await call(api, 'POST', '/v1/config', { body: [reviewsService(), reviewsRoute(90, 10)] });
  });
  after(async () => {
    for (const c of clients) c.close();
    await plane?.stop();
    if (plane) fs.rmSync(plane.dataDir, { recursive: true, force: true });
  });

  test('canary waits by default: every proxy ACKs, exit 0', async () => {
    const a = await proxyThat('ack', 'acker-1');
    const r = await cli(['canary', 'reviews', 'v1=50', 'v2=50']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^applied: revision 2$/m);
    assert.match(r.stdout, /^revision 2 reached 1 proxy: 1 ACKed \(waited \d+\.\ds\)$/m);
    a.close();
  });

  test('a NACK exits 3 and prints the proxy, its user agent and its error; --no-wait does not wait', async () => {
    const good = await proxyThat('ack', 'good-1');
    const bad = await proxyThat('nack', 'picky-1');
    const r = await cli(['canary', 'reviews', 'v1=0', 'v2=100']);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stdout, /^revision 3 reached 2 proxies: 1 ACKed, 1 NACKed/m);
    assert.match(r.stdout, /^ {2}NACKED +picky-1 \(raw-ads-test\/1\.0\) rejected RDS: picky-1 cannot use these weights$/m);
    assert.doesNotMatch(r.stdout, /good-1/, 'ACKed proxies are counted, not listed');
    assert.match(r.stdout, /keep routing on the config they had/);
    const rollout = await cli(['rollout', '3', '-o', 'json']);
    assert.equal(rollout.code, 3, show(rollout));
    assert.equal(JSON.parse(rollout.stdout).state, 'NACKED');
    const status = await cli(['proxy-status']);
    assert.equal(status.code, 0, show(status));
    assert.match(status.stdout, /^NODE\s+STATE\s+REVISION\s+IDENTITY\s+USER AGENT/m);
    assert.match(status.stdout, /^picky-1\s+NACKED\s+2 of 3\s+none \(plaintext\)\s+raw-ads-test\/1\.0/m);
    assert.match(status.stdout, /^good-1\s+SYNCED\s+3 of 3\s/m);
    const noWait = await cli(['canary', 'reviews', 'v1=100', 'v2=0', '--no-wait']);
    assert.equal(noWait.code, 0, show(noWait));
    assert.match(noWait.stdout, /^revision 4 reached 2 proxies: 0 ACKed, 2 pending$/m);
    assert.match(noWait.stdout, /skein rollout 4 --wait/);
    good.close();
    bad.close();
  });

  test('a wait that runs out exits 4 and names the proxies still pending', async () => {
    const silent = await proxyThat('ignore', 'silent-1');
    const applied = await skeinWithInput(['apply', '-f', '-', '--wait=400ms'], JSON.stringify(reviewsRoute(30, 70)));
    assert.equal(applied.code, 4, show(applied));
    assert.match(applied.stdout, /^ {2}PENDING +silent-1 \(raw-ads-test\/1\.0\): RDS$/m);
    assert.match(applied.stdout, /the wait ran out with 1 proxy still pending/);
    silent.close();
  });

  test('proxy-status --slow lists the proxies furthest behind: how long, which type, the last NACK; --limit bounds them', async () => {
    const slow = await proxyThat('ignore', 'slow-1');
    const nacky = await proxyThat('nack', 'nacky-1');
    const fine = await proxyThat('ack', 'fine-1');
    const none = await cli(['proxy-status', '--slow']);
    assert.equal(none.code, 0, show(none));
    assert.doesNotMatch(none.stdout, /slow-1|nacky-1|fine-1/, 'in step, nobody is behind');
    const changed = await cli(['canary', 'reviews', 'v1=20', 'v2=80', '--no-wait']);
    assert.equal(changed.code, 0, show(changed));
    const listed = await eventually(async () => {
      const r = await cli(['proxy-status', '--slow', '-o', 'json']);
      const nodes = (JSON.parse(r.stdout) as { proxies: ProxyStatus[] }).proxies.map((x) => x.nodeId);
      return nodes.includes('slow-1') && nodes.includes('nacky-1') ? JSON.parse(r.stdout) as { proxies: ProxyStatus[] } : undefined;
    }, 'slow-1 and nacky-1 behind');
    assert.ok(!listed.proxies.some((x) => x.nodeId === 'fine-1'), 'a proxy that ACKed is not behind');
    const s1 = listed.proxies.find((x) => x.nodeId === 'slow-1')!;
    assert.equal(s1.behind?.typeUrl, TYPE_URLS.ROUTE);
    assert.ok(s1.behind!.seconds >= 0);
    const table = await cli(['proxy-status', '--slow']);
    assert.equal(table.code, 0, show(table));
    assert.match(table.stdout, /^NODE\s+BEHIND\s+TYPE\s+STATE\s+REVISION\s+USER AGENT\s+LAST NACK/m);
    assert.match(table.stdout, /^slow-1\s+\d+\.\ds\s+RDS\s+STALE\s+/m);
    assert.match(table.stdout, /^nacky-1\s+\d+\.\ds\s+RDS\s+NACKED\s+.*RDS \S+: nacky-1 cannot use these weights$/m);
    const one = await cli(['proxy-status', '--slow', '--limit', '1', '-o', 'json']);
    assert.equal((JSON.parse(one.stdout) as { proxies: ProxyStatus[] }).proxies.length, 1);
    const bad = await cli(['proxy-status', '--limit', '1']);
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, /--limit: only applies with --slow/);
    const zero = await cli(['proxy-status', '--slow', '--limit', '0']);
    assert.equal(zero.code, 1, show(zero));
    assert.match(zero.stderr, /--limit: must be an integer from 1 to 10000/);
    slow.close();
    nacky.close();
    fine.close();
  });

  test('rejects a malformed --wait naming the flag, before calling the API', async () => {
    const before = await state(api);
    const runs = await Promise.all([cli(['canary', 'reviews', 'v1=1', 'v2=1', '--wait=soon']), cli(['canary', 'reviews', 'v1=1', 'v2=1', '--wait=11m']),
      cli(['canary', 'reviews', 'v1=1', 'v2=1', '--wait=1s', '--no-wait']), cli(['rollout', 'latest'])]);
    const [soon, long, both, latest] = runs;
    for (const r of runs) assert.equal(r!.code, 1, show(r!));
    assert.match(soon!.stderr, /--wait: invalid duration "soon"/);
    assert.match(long!.stderr, /--wait: must be from 1ms to 10m/);
    assert.match(both!.stderr, /--wait and --no-wait/);
    assert.match(latest!.stderr, /expected one REVISION number/);
    await assertUnchanged(api, before, 'bad --wait');
  });

  function skeinWithInput(args: string[], input: string): Promise<Run> {
    return skein(args, { env: { SKEIN_API: api, SKEIN_DATA_DIR: plane?.dataDir, USER: 'tester' }, input });
  }
});

describe('skein control-plane --config', () => {
  const dir = tempDir('seed');
  const dataDir = path.join(dir, 'data');
  const seed = path.join(dir, 'seed.yaml');
  fs.writeFileSync(seed, MESH_YAML);
  let plane: Plane | undefined;

  after(async () => {
    await plane?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('seeds the config on start', async () => {
    plane = await startPlane({ dataDir, extraArgs: ['--config', seed] });
    const revs = (await call(plane.api, 'GET', '/v1/revisions')).body.revisions as { revision: number; author: string; message: string }[];
    assert.equal(revs.length, 1);
    assert.equal(revs[0]!.revision, 1);
    assert.equal(revs[0]!.author, 'control-plane --config');
    assert.ok(revs[0]!.message.includes(seed), revs[0]!.message);
    const cfg = await call(plane.api, 'GET', '/v1/config');
    assert.deepEqual(cfg.body.resources, [reviewsRoute(90, 10), reviewsService()]);
    assert.equal((await call(plane.api, 'GET', '/v1/xds')).body.revision, 1);
    assert.equal(await plane.stop(), 0);
    plane = undefined;
  });

  test('restarting with the same data dir and file adds no revision', async () => {
    plane = await startPlane({ dataDir, extraArgs: ['--config', seed] });
    const revs = (await call(plane.api, 'GET', '/v1/revisions')).body.revisions as { revision: number }[];
    assert.deepEqual(revs.map((r) => r.revision), [1]);
    assert.deepEqual((await call(plane.api, 'GET', '/v1/config')).body.resources, [reviewsRoute(90, 10), reviewsService()]);
    assert.equal((await call(plane.api, 'GET', '/healthz')).body.revision, 1);
    assert.equal(await plane.stop(), 0);
    plane = undefined;
  });

  test('an invalid --config file stops start-up with the field path, and stores nothing', async () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, MESH_YAML.replace('weight: 10', 'weight: -10'));
    const fresh = path.join(dir, 'data-bad');
    await assert.rejects(startPlane({ dataDir: fresh, extraArgs: ['--config', bad] }), (e: Error) => {
      assert.match(e.message, /exited with 1 before it was ready/);
      assert.match(e.message, /spec\.rules\[0\]\.backendRefs\[1\]\.weight: must be >= 0/);
      return true;
    });
    const stored = fs.existsSync(path.join(fresh, 'revisions')) ? fs.readdirSync(path.join(fresh, 'revisions')).filter((n) => n.endsWith('.json')) : [];
    assert.deepEqual(stored, []);
  });
});
