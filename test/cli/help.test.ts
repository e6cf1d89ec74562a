/**
 * Black-box tests of the `skein` CLI's help: the real entry point run as a child process, for
 * every command and flag (each flag documented with its default).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { show, skein } from '../support/skein-cli';
import type { Run } from '../support/skein-cli';
import { tempDir } from '../support/skein';

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

describe('skein command loading', () => {
  test('each name the CLI dispatches on is its command\'s own name, in usage order', async () => {
    const { allCommands, commandNames } = await import('../../cli/src/main');
    assert.deepEqual(allCommands().map((c) => c.spec.name), commandNames());
  });

  test('a command loads only what it drives: `skein sidecar` loads neither the config CLI, YAML nor undici', async () => {
    const { spawnSync } = await import('node:child_process');
    const path = await import('node:path');
    const main = path.join(__dirname, '../../cli/src/main.js');
    const script = `require(${JSON.stringify(main)}).main(['sidecar', '--help']).then(() => { process.stderr.write(JSON.stringify(Object.keys(require.cache))); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const loaded = JSON.parse(r.stderr) as string[];
    assert.ok(loaded.some((f) => f.includes('sidecar-command')), 'the sidecar command itself');
    for (const what of ['node_modules/yaml/', 'node_modules/undici/', 'config-commands', 'injector-command', 'demo-command']) {
      assert.deepEqual(loaded.filter((f) => f.includes(what)), [], `${what} is not loaded`);
    }
  });
});
