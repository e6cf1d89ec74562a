import { isIP } from 'node:net';
import * as fs from 'node:fs';
import { parseDocuments } from '../../../shared/src/config/documents';
import { parseDuration } from '../../../shared/src/config/duration';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { createLogger } from '../../../shared/src/log';
import { intFlag, optStr, str } from '../../../shared/src/cli/args';
import { parseListen } from '../../../shared/src/listen-address';
import type { Command } from '../../../shared/src/cli/command';
import { formatChange } from './format';
import { checkBucket, MAX_STORE_REPLICAS, parseStoreUrl } from '../store/nats-store-url';

export const controlPlane: Command = {
  spec: {
    name: 'control-plane', usage: 'control-plane [flags]',
    summary: 'Run the control plane: the xDS v3 ADS server, the config store, the endpoint registry and the SRE API.\n' +
      'The xDS port is TLS from the mesh CA; ADS and endpoint registration there need a workload certificate.\n' +
      'When it is ready it prints one JSON line to stdout: {"ready":true,"xds":"HOST:PORT","api":"URL","monitoring":"HOST:PORT","trustBundleFile":...,"xdsInsecure":...}. Logs go to stderr.',
    flags: [
      { name: 'data-dir', type: 'string', value: 'DIR', env: 'SKEIN_DATA_DIR', default: './.skein-data', help: 'where the embedded store keeps config revisions (with --store: only the CA and admin token)' },
      { name: 'store', type: 'string', value: 'nats://HOST:PORT[,HOST2:PORT]', env: 'SKEIN_STORE', help: 'share config revisions and endpoint leases with other control-plane replicas through NATS JetStream (2.9+); credentials as nats://user:pass@host or nats://token@host are never logged (default: the embedded file store in --data-dir, one control plane)' },
      { name: 'store-bucket', type: 'string', value: 'NAME', default: 'skein', help: 'with --store: name of the JetStream stream (NAME-revisions) and KV buckets (NAME, NAME-leases); replicas of one mesh use the same' },
      { name: 'store-replicas', type: 'string', value: 'N', help: `with --store: copies JetStream keeps of that stream and those buckets, 1 to ${MAX_STORE_REPLICAS} (at most the JetStream servers in the cluster; a single nats-server takes 1). The control plane creates them with N; existing ones with fewer are raised to N, ones with more are kept, with a warning (default: 1)` },
      { name: 'xds-listen', type: 'string', value: 'HOST:PORT', default: '127.0.0.1:18000', help: 'address of the xDS (ADS) gRPC server; port 0 picks a free port' },
      { name: 'api-listen', type: 'string', value: 'HOST:PORT', default: '127.0.0.1:18001', help: 'address of the SRE HTTP API; port 0 picks a free port' },
      { name: 'monitoring-listen', type: 'string', value: 'HOST:PORT', default: '127.0.0.1:15014', help: 'plain-HTTP, read-only monitoring listener: GET /metrics for Prometheus (xDS and process metrics); port 0 picks a free port; off disables it' },
      { name: 'config', type: 'string', value: 'FILE', help: 'config to apply (merge) at start-up; a no-op if the store already holds it (default: none)' },
      { name: 'history-limit', type: 'string', value: 'N', default: '1000', help: 'config revisions kept; older ones are pruned' },
      { name: 'max-body-bytes', type: 'string', value: 'N', default: '1048576', help: 'largest API request body accepted' },
      { name: 'lease-ttl', type: 'string', value: 'DURATION', default: '10s', help: 'endpoint lease TTL when a registration names none (1s to 5m)' },
      { name: 'trust-domain', type: 'string', value: 'DOMAIN', default: 'skein.local', help: 'SPIFFE trust domain of workload identities (spiffe://DOMAIN/ns/NS/sa/SA)' },
      { name: 'ca-cert', type: 'string', value: 'FILE', help: 'plug in your own root or intermediate CA: PEM, the issuing CA first, then its chain up to the self-signed root (default: a P-256 root generated in DATA_DIR/ca at first start, valid 10 years)' },
      { name: 'ca-key', type: 'string', value: 'FILE', help: 'the private key (PKCS#8 PEM, mode 0600) of --ca-cert' },
      { name: 'workload-cert-ttl', type: 'string', value: 'DURATION', default: '24h', help: 'lifetime of workload certificates (1m to 2160h, i.e. 90 days; never past the CA\'s own expiry)' },
      { name: 'xds-san', type: 'string', value: 'NAMES', help: 'extra DNS names or IPs, comma-separated, for the xDS port\'s certificate, for clients that verify the host they dial (default: none; it always has control-plane.skein, localhost, 127.0.0.1, ::1 and the control plane\'s SPIFFE ID)' },
      { name: 'xds-insecure-listen', type: 'string', value: 'HOST:PORT', help: 'also serve ADS over plaintext here, with no client authentication, for proxyless gRPC clients that cannot present a certificate; loopback only unless --xds-insecure-allow-remote (default: off)' },
      { name: 'xds-insecure-allow-remote', type: 'boolean', help: 'let --xds-insecure-listen bind a non-loopback address (default: off)' },
      { name: 'push-debounce', type: 'string', value: 'DURATION', default: '0s', help: 'after an endpoint change, wait until none came for DURATION before rebuilding and pushing, so a burst becomes one push (0s: bursts within one event-loop turn coalesce, nothing waits; at most 10s). Config applied through this API is pushed at once' },
      { name: 'push-debounce-max', type: 'string', value: 'DURATION', default: '1s', help: 'under continuous churn, the longest --push-debounce holds a change (at least --push-debounce, at most 60s)' },
      { name: 'log-level', type: 'string', value: 'LEVEL', env: 'SKEIN_LOG_LEVEL', default: 'info', help: 'trace, debug, info, warn, error or silent' },
    ],
    more: 'At first start it writes an admin token to DATA_DIR/admin-token (0600): every change through the API must present it\n' +
      '(the CLI reads it from there, --admin-token-file or SKEIN_TOKEN). Reads need no token: keep --api-listen on loopback or a trusted network.',
  },
  async run(p, out) {
    const level = str(p, 'log-level');
    if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) throw new MeshError(ErrorCodes.VALIDATION, `--log-level: must be trace, debug, info, warn, error or silent, got "${level}"`);
    const ttl = parseDuration(str(p, 'lease-ttl'));
    if (typeof ttl !== 'number' || ttl < 1000 || ttl > 300_000) throw new MeshError(ErrorCodes.VALIDATION, `--lease-ttl: must be a duration from 1s to 5m, got "${str(p, 'lease-ttl')}"`);
    const certTtl = parseDuration(str(p, 'workload-cert-ttl'));
    if (typeof certTtl !== 'number') throw new MeshError(ErrorCodes.VALIDATION, `--workload-cert-ttl: ${certTtl.error}`);
    const debounce = parseDuration(str(p, 'push-debounce'));
    if (typeof debounce !== 'number' || debounce > 10_000) throw new MeshError(ErrorCodes.VALIDATION, `--push-debounce: must be a duration from 0s to 10s, got "${str(p, 'push-debounce')}"`);
    const debounceMax = parseDuration(str(p, 'push-debounce-max'));
    if (typeof debounceMax !== 'number' || debounceMax > 60_000) throw new MeshError(ErrorCodes.VALIDATION, `--push-debounce-max: must be a duration up to 60s, got "${str(p, 'push-debounce-max')}"`);
    if (debounceMax < debounce) throw new MeshError(ErrorCodes.VALIDATION, `--push-debounce-max: must be at least --push-debounce (${str(p, 'push-debounce')}), got "${str(p, 'push-debounce-max')}"`);
    const insecureListen = optStr(p, 'xds-insecure-listen');
    if (p.values['xds-insecure-allow-remote'] === true && insecureListen === undefined) throw new MeshError(ErrorCodes.VALIDATION, '--xds-insecure-allow-remote needs --xds-insecure-listen');
    const monitoringListen = str(p, 'monitoring-listen');
    if (monitoringListen !== 'off') parseListen(monitoringListen, '--monitoring-listen');
    const storeUrl = optStr(p, 'store');
    const storeTarget = storeUrl === undefined ? undefined : parseStoreUrl(storeUrl);
    const bucket = checkBucket(str(p, 'store-bucket'));
    if (storeTarget === undefined && p.values['store-bucket'] !== undefined && str(p, 'store-bucket') !== 'skein') throw new MeshError(ErrorCodes.VALIDATION, '--store-bucket needs --store');
    // No spec default (the help says 1), so a --store-replicas given without --store is seen and refused.
    const storeReplicas = intFlag(p, 'store-replicas', 1, MAX_STORE_REPLICAS);
    if (storeTarget === undefined && storeReplicas !== undefined) throw new MeshError(ErrorCodes.VALIDATION, '--store-replicas needs --store');
    const log = createLogger('skein-control-plane', level);
    // Loaded here, not at the top: the gRPC server and xDS protos would slow every other command.
    const { ControlPlane } = await import('../control-plane');
    const cp = await ControlPlane.start({
      dataDir: str(p, 'data-dir'), xdsListen: str(p, 'xds-listen'), apiListen: str(p, 'api-listen'),
      historyLimit: intFlag(p, 'history-limit', 1, 1_000_000)!, maxBodyBytes: intFlag(p, 'max-body-bytes', 1024, 64 * 1024 * 1024)!,
      defaultLeaseTtlMs: ttl, pushDebounceMs: debounce, pushDebounceMaxMs: debounceMax, log, trustDomain: str(p, 'trust-domain'), workloadCertTtlMs: certTtl,
      ...(optStr(p, 'ca-cert') === undefined ? {} : { caCertFile: optStr(p, 'ca-cert')! }),
      ...(optStr(p, 'ca-key') === undefined ? {} : { caKeyFile: optStr(p, 'ca-key')! }),
      ...(optStr(p, 'xds-san') === undefined ? {} : { xdsSans: sansOf(optStr(p, 'xds-san')!) }),
      ...(insecureListen === undefined ? {} : { xdsInsecureListen: insecureListen, xdsInsecureAllowRemote: p.values['xds-insecure-allow-remote'] === true }),
      ...(monitoringListen === 'off' ? {} : { monitoringListen }),
      ...(storeTarget === undefined ? {} : { store: { target: storeTarget, bucket, replicas: storeReplicas ?? 1 } }),
    });
    const seed = optStr(p, 'config');
    if (seed !== undefined) {
      try {
        const r = await cp.store.apply(parseDocuments(fs.readFileSync(seed, 'utf8')), { author: 'control-plane --config', message: `seed from ${seed}` });
        log.info({ file: seed, revision: r.revision, changed: r.changed }, 'applied --config');
        if (r.changed) process.stderr.write(`${formatChange(r)}\n`);
      } catch (e) {
        await cp.close();
        throw e instanceof MeshError ? e : new MeshError(ErrorCodes.NOT_FOUND, `--config: cannot read ${seed}: ${(e as Error).message}`);
      }
    }
    const apiHost = str(p, 'api-listen').slice(0, str(p, 'api-listen').lastIndexOf(':'));
    const xdsHost = str(p, 'xds-listen').slice(0, str(p, 'xds-listen').lastIndexOf(':'));
    const monitoring = monitoringListen === 'off' ? {} : { monitoring: `${monitoringListen.slice(0, monitoringListen.lastIndexOf(':'))}:${cp.monitoringPort}` };
    out(JSON.stringify({ ready: true, xds: `${xdsHost}:${cp.xdsPort}`, api: `https://${apiHost}:${cp.apiPort}`, ...monitoring, adminTokenFile: cp.identity.admin.file, trustBundleFile: cp.trustBundleFile,
      ...(insecureListen === undefined ? {} : { xdsInsecure: `${insecureListen.slice(0, insecureListen.lastIndexOf(':'))}:${cp.xdsInsecurePort}` }), revision: cp.store.current().revision }));
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => { log.info({ signal: sig }, 'shutting down'); resolve(); };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await cp.close();
    log.flush();
    return 0;
  },
};

/** --xds-san: comma-separated DNS names or IPs. */
function sansOf(v: string): string[] {
  const names = v.split(',').map((n) => n.trim()).filter((n) => n !== '');
  for (const n of names) {
    if (isIP(n) === 0 && !/^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(n)) throw new MeshError(ErrorCodes.VALIDATION, `--xds-san: "${n}" is neither a DNS name nor an IP`);
  }
  return names;
}
