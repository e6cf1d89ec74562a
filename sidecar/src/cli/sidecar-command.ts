import { DEFAULT_H2_ENGINE } from '../h2/default-engine';
import { parseDuration } from '../../../shared/src/config/duration';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { createLogger } from '../../../shared/src/log';
import * as path from 'node:path';
import { intFlag, optStr, str } from '../../../shared/src/cli/args';
import { checkSegment, checkTrustDomain, DEFAULT_NAMESPACE, DEFAULT_TRUST_DOMAIN } from '../../../shared/src/identity/spiffe';
import { configureRe2, MAX_RE2_PROGRAM_SIZE } from '../../../shared/src/re2';
import { APP_HEALTH_DEFAULTS, parseAppHealthCheck } from '../app-health-settings';
import type { Command } from '../../../shared/src/cli/command';
import { DOWNSTREAM_FLAGS, parseDownstreamFlags } from '../http/downstream-settings';
import { DEFAULT_TRACE_QUEUE } from '../tracing/tracing-settings';
import type { TracingSettings } from '../tracing/tracing-settings';
import { parseXdsServers } from '../xds/xds-servers';

export const sidecar: Command = {
  spec: {
    name: 'sidecar', usage: 'sidecar [flags]',
    summary: 'Run the L7 sidecar proxy: config from the control plane over xDS (ADS); outbound listener for the local app\n' +
      '(h2c and HTTP/1.1 on one port, service chosen by :authority / Host); inbound listener forwarding to the local app.\n' +
      'When ready it prints one JSON line to stdout: {"ready":true,"outbound":...,"inbound":...,"admin":...}. Logs go to stderr.',
    flags: [
      { name: 'xds', type: 'string', value: 'HOST:PORT[,HOST:PORT...]', env: 'SKEIN_XDS', default: '127.0.0.1:18000', help: 'the control plane xDS (ADS) server; several, comma-separated (a DNS name stands for every address it resolves to): when the stream to one fails, the sidecar reconnects to the next with backoff and serves its last config meanwhile. Registration starts with the first and moves to the next when it cannot reach it; certificates and route stats use the first' },
      { name: 'xds-protocol', type: 'string', value: 'PROTO', default: 'delta', help: 'the ADS protocol: delta (incremental xDS; a control plane that answers UNIMPLEMENTED gets sotw, logged once) or sotw (state of the world)' },
      { name: 'token-file', type: 'string', value: 'FILE', env: 'SKEIN_TOKEN_FILE', help: 'the join token (skein token create --service NAME) for this workload\'s first certificate; renewals use the certificate. Required unless --xds-insecure' },
      { name: 'xds-ca-file', type: 'string', value: 'FILE', env: 'SKEIN_XDS_CA_FILE', help: 'PEM roots that verify the control plane on first contact (default: <$SKEIN_DATA_DIR or ./.skein-data>/ca/trust-bundle.pem, which the control plane writes; or save GET /v1/ca)' },
      { name: 'trust-domain', type: 'string', value: 'DOMAIN', default: DEFAULT_TRUST_DOMAIN, help: 'the mesh\'s SPIFFE trust domain (the control plane\'s --trust-domain)' },
      { name: 'namespace', type: 'string', value: 'NS', default: DEFAULT_NAMESPACE, help: 'this workload\'s namespace, as its join token binds it' },
      { name: 'service-account', type: 'string', value: 'SA', help: 'this workload\'s service account, as its join token binds it (default: --service, else "sidecar")' },
      { name: 'cert-renew-at', type: 'string', value: 'FRACTION', default: '0.5', help: 'renew the workload certificate at this fraction of its lifetime (0.05 to 0.9)' },
      { name: 'cert-renew-jitter', type: 'string', value: 'FRACTION', default: '0.1', help: 'plus or minus this fraction of the lifetime, at random, so a fleet started together does not renew together (0 to 0.4; the renewal time stays within 0.01 to 0.95)' },
      { name: 'xds-insecure', type: 'boolean', help: 'plaintext xDS with no identity, to a control plane\'s --xds-insecure-listen port; outbound only (no --service). Default: off' },
      { name: 'node-id', type: 'string', value: 'ID', help: 'xDS node id (default: <service or "sidecar">-<hostname>-<pid>)' },
      { name: 'service', type: 'string', value: 'NAME', help: 'the local service: enables the inbound listener and registration (default: none, outbound only)' },
      { name: 'version', type: 'string', value: 'LABEL', default: 'v1', help: 'the version label registered for the local instance' },
      { name: 'app', type: 'string', value: 'HOST:PORT', help: 'the local app inbound traffic goes to (required with --service)' },
      { name: 'app-protocol', type: 'string', value: 'PROTO', default: 'grpc', help: 'the local app protocol: grpc (HTTP/2) or http (HTTP/1.1)' },
      { name: 'outbound-listen', type: 'string', value: 'HOST:PORT', default: '127.0.0.1:15001', help: 'where the local app sends its requests; port 0 picks a free port' },
      { name: 'inbound-listen', type: 'string', value: 'HOST:PORT', help: 'where the mesh reaches this instance (with --service); port 0 picks a free port. Mesh mTLS (STRICT by default) unless the Service says otherwise (default: <--advertise-address>:15006, not every interface)' },
      { name: 'app-health', type: 'string', value: 'CHECK', default: APP_HEALTH_DEFAULTS.check, help: 'how the sidecar watches its app: tcp (connect), grpc or grpc:SERVICE (grpc.health.v1), http:/PATH (2xx passes; HTTP/2 for a grpc app), or none. A down app is reported UNHEALTHY to the control plane at once and /ready answers 503' },
      { name: 'app-health-interval', type: 'string', value: 'DURATION', default: APP_HEALTH_DEFAULTS.interval, help: 'time between app health probes' },
      { name: 'app-health-timeout', type: 'string', value: 'DURATION', default: APP_HEALTH_DEFAULTS.timeout, help: 'a probe that takes longer fails' },
      { name: 'app-health-unhealthy-threshold', type: 'string', value: 'N', default: String(APP_HEALTH_DEFAULTS.unhealthyThreshold), help: 'failed probes in a row that mark the app down (a request that cannot connect to the app marks it down at once)' },
      { name: 'app-health-healthy-threshold', type: 'string', value: 'N', default: String(APP_HEALTH_DEFAULTS.healthyThreshold), help: 'passing probes in a row that bring a down app back' },
      { name: 'advertise-address', type: 'string', value: 'IP', default: '127.0.0.1', help: 'the address registered for this instance in EDS' },
      { name: 'admin-listen', type: 'string', value: 'HOST:PORT', default: '127.0.0.1:15000', help: 'admin endpoints /ready /config_dump /clusters /stats' },
      { name: 'lease-ttl', type: 'string', value: 'DURATION', default: '10s', help: 'endpoint lease TTL; renewed every TTL/3' },
      { name: 'drain-timeout', type: 'string', value: 'DURATION', default: '20s', help: 'on SIGTERM, how long in-flight requests may take to finish' },
      { name: 'heap-trim-idle', type: 'string', value: 'DURATION', default: '10s', help: 'give unused heap back to the system this long after start-up, and after each such stretch with no request (one full garbage collection, a few ms); 0s: never. From 1s to 1h' },
      { name: 'regex-max-program-size', type: 'string', value: 'N', default: String(MAX_RE2_PROGRAM_SIZE), help: 'the largest RE2 program a route regex may compile to (Envoy\'s max_program_size); a route over it is NACKed (1 to 100000)' },
      { name: 'retry-buffer-bytes', type: 'string', value: 'BYTES', default: '65536', help: 'request-body bytes kept for retries; a larger body is never retried (0: only bodiless requests are retried)' },
      { name: 'h2-engine', type: 'string', value: 'ENGINE', default: DEFAULT_H2_ENGINE, help: 'the HTTP/2 engine of the proxied path, both sides (the listeners\' connections and the upstream ones, to the app and to peer sidecars): skein (skein\'s own, no stream object per request; counters h2.downstream.* and h2.upstream.* in /stats) or node (Node\'s http2, the fallback)' },
      { name: 'stats-retention', type: 'string', value: 'DURATION', default: '60s', help: 'how long the stats of a cluster or route removed from the config stay in /stats before they are dropped (0s: at once; at most 24h)' },
      ...DOWNSTREAM_FLAGS.map((f) => ({ ...f, type: 'string' as const })),
      { name: 'access-log', type: 'string', value: 'FILE', help: 'JSON access log, one line per request of either listener: a file, or - for standard output (default: off)' },
      { name: 'access-log-sample', type: 'string', value: 'RATIO', default: '1', help: 'the share of requests the access log records, 0.0001 to 1' },
      { name: 'metrics-buckets', type: 'string', value: 'MS,MS,...', help: 'upper bounds in ms of skein_request_duration_milliseconds on admin /metrics, increasing (default: 0.1, 0.25, 0.5, 0.75, 0.91, then 1 ms to 10.6 s by a ratio of at most 1.1, 105 bounds: histogram_quantile within 10% from 1 ms to 10 s)' },
      { name: 'stats-report-interval', type: 'string', value: 'DURATION', default: '5s', help: 'how often the per route × version request counts and latency histograms go to the control plane (GET /v1/stats/routes, skein top), over one gRPC stream with the workload certificate; 0 turns it off; at most 1m. Not with --xds-insecure' },
      { name: 'trace-endpoint', type: 'string', value: 'URL', env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', help: 'the OTLP collector spans go to: otlp-http, a URL such as http://127.0.0.1:4318/v1/traces; otlp-grpc, http://HOST:4317. Else $OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces for otlp-http). Default: none (tracing off; traceparent headers still pass through)' },
      { name: 'trace-exporter', type: 'string', value: 'KIND', default: 'otlp-http', help: 'otlp-http (HTTP/protobuf), otlp-grpc, or none (off). Sampling is set by the control plane (Telemetry, route tracing)' },
      { name: 'trace-max-queue', type: 'string', value: 'N', default: String(DEFAULT_TRACE_QUEUE), help: 'spans waiting for export at most (16 to 1000000); more are dropped and counted (tracing.spans_dropped in /stats)' },
      { name: 'log-level', type: 'string', value: 'LEVEL', env: 'SKEIN_LOG_LEVEL', default: 'info', help: 'trace, debug, info, warn, error or silent' },
    ],
  },
  async run(p, out) {
    const level = str(p, 'log-level');
    const service = optStr(p, 'service');
    const tokenFile = optStr(p, 'token-file');
    const insecure = p.values['xds-insecure'] === true;
    if (insecure && tokenFile !== undefined) throw new MeshError(ErrorCodes.VALIDATION, '--xds-insecure and --token-file: give one; --xds-insecure means no identity');
    if (!insecure && tokenFile === undefined) throw new MeshError(ErrorCodes.VALIDATION, '--token-file is required: the sidecar proves who it is with a join token (skein token create --service NAME > FILE). For a plaintext control plane port (--xds-insecure-listen), give --xds-insecure');
    if (insecure && service !== undefined) throw new MeshError(ErrorCodes.VALIDATION, '--xds-insecure cannot go with --service: registering an instance needs a workload identity (--token-file)');
    const identity = tokenFile === undefined ? undefined : {
      tokenFile,
      caFile: optStr(p, 'xds-ca-file') ?? path.join(process.env['SKEIN_DATA_DIR'] ?? './.skein-data', 'ca', 'trust-bundle.pem'),
      trustDomain: checkTrustDomain(str(p, 'trust-domain'), '--trust-domain'),
      namespace: checkSegment(str(p, 'namespace'), '--namespace'),
      serviceAccount: checkSegment(optStr(p, 'service-account') ?? service ?? 'sidecar', '--service-account'),
      ...renewalFlags(str(p, 'cert-renew-at'), str(p, 'cert-renew-jitter')),
    };
    const app = optStr(p, 'app');
    if (service !== undefined && app === undefined) throw new MeshError(ErrorCodes.VALIDATION, '--app is required with --service: the local app address, e.g. 127.0.0.1:8080');
    const appProtocol = str(p, 'app-protocol');
    if (appProtocol !== 'grpc' && appProtocol !== 'http') throw new MeshError(ErrorCodes.VALIDATION, `--app-protocol: must be grpc or http, got "${appProtocol}"`);
    const xdsProtocol = str(p, 'xds-protocol');
    if (xdsProtocol !== 'delta' && xdsProtocol !== 'sotw') throw new MeshError(ErrorCodes.VALIDATION, `--xds-protocol: must be delta or sotw, got "${xdsProtocol}"`);
    const xdsServer = str(p, 'xds');
    parseXdsServers(xdsServer);
    const h2Engine = str(p, 'h2-engine');
    if (h2Engine !== 'node' && h2Engine !== 'skein') throw new MeshError(ErrorCodes.VALIDATION, `--h2-engine: must be node or skein, got "${h2Engine}"`);
    const dur = (name: string) => {
      const v = parseDuration(str(p, name));
      if (typeof v !== 'number') throw new MeshError(ErrorCodes.VALIDATION, `--${name}: ${v.error}`);
      return v;
    };
    const retryBuffer = Number(str(p, 'retry-buffer-bytes'));
    if (!Number.isInteger(retryBuffer) || retryBuffer < 0 || retryBuffer > 64 * 1024 * 1024) throw new MeshError(ErrorCodes.VALIDATION, `--retry-buffer-bytes: must be an integer in [0, 67108864], got "${str(p, 'retry-buffer-bytes')}"`);
    const positive = (name: string) => {
      const ms = dur(name);
      if (ms < 1) throw new MeshError(ErrorCodes.VALIDATION, `--${name}: must be at least 1ms`);
      return ms;
    };
    const appHealth = {
      check: parseAppHealthCheck(str(p, 'app-health'), appProtocol),
      intervalMs: positive('app-health-interval'), timeoutMs: positive('app-health-timeout'),
      unhealthyThreshold: intFlag(p, 'app-health-unhealthy-threshold', 1, 100)!, healthyThreshold: intFlag(p, 'app-health-healthy-threshold', 1, 100)!,
    };
    const heapTrimIdleMs = dur('heap-trim-idle');
    if (heapTrimIdleMs !== 0 && (heapTrimIdleMs < 1000 || heapTrimIdleMs > 3600_000)) throw new MeshError(ErrorCodes.VALIDATION, `--heap-trim-idle: must be 0s (never) or from 1s to 1h, got "${str(p, 'heap-trim-idle')}"`);
    const statsRetentionMs = dur('stats-retention');
    if (statsRetentionMs > 24 * 3600_000) throw new MeshError(ErrorCodes.VALIDATION, `--stats-retention: must be at most 24h, got "${str(p, 'stats-retention')}"`);
    const downstream = parseDownstreamFlags((name) => optStr(p, name));
    const accessLogFile = optStr(p, 'access-log');
    const sample = Number(str(p, 'access-log-sample'));
    if (!(sample >= 0.0001 && sample <= 1)) throw new MeshError(ErrorCodes.VALIDATION, `--access-log-sample: must be a ratio from 0.0001 to 1, got "${str(p, 'access-log-sample')}"`);
    if (accessLogFile === '') throw new MeshError(ErrorCodes.VALIDATION, '--access-log: give a file, or - for standard output');
    const bucketsFlag = optStr(p, 'metrics-buckets');
    const { parseBuckets } = await import('../stats/request-metrics');
    const buckets = bucketsFlag === undefined ? undefined : parseBuckets(bucketsFlag);
    if (buckets !== undefined && !Array.isArray(buckets)) throw new MeshError(ErrorCodes.VALIDATION, `--metrics-buckets: ${buckets.error}`);
    const statsReportIntervalMs = dur('stats-report-interval');
    if (statsReportIntervalMs !== 0 && (statsReportIntervalMs < 1000 || statsReportIntervalMs > 60_000 || statsReportIntervalMs % 1000 !== 0)) throw new MeshError(ErrorCodes.VALIDATION, `--stats-report-interval: must be 0 (off) or whole seconds from 1s to 1m, got "${str(p, 'stats-report-interval')}"`);
    // The default stays quietly off with --xds-insecure (no identity to report with); a value asked for is refused.
    if (insecure && statsReportIntervalMs !== 0 && str(p, 'stats-report-interval') !== '5s') throw new MeshError(ErrorCodes.VALIDATION, '--stats-report-interval: route stats are reported with the workload certificate; with --xds-insecure there is none (give 0, or a --token-file)');
    const tracing = tracingFlags(optStr(p, 'trace-exporter') ?? 'otlp-http', optStr(p, 'trace-endpoint'), intFlag(p, 'trace-max-queue', 16, 1_000_000)!);
    configureRe2({ maxProgramSize: intFlag(p, 'regex-max-program-size', 1, 100_000)! });
    const log = createLogger('skein-sidecar', level);
    const { Sidecar } = await import('../sidecar');
    const sc = await Sidecar.start({
      xdsServer, xdsProtocol, ...(identity === undefined ? {} : { identity }),
      nodeId: optStr(p, 'node-id') ?? `${service ?? 'sidecar'}-${(await import('node:os')).hostname()}-${process.pid}`,
      ...(service !== undefined ? { service, app: app!, appProtocol, appHealth } : {}),
      version: str(p, 'version'), outboundListen: str(p, 'outbound-listen'), inboundListen: optStr(p, 'inbound-listen') ?? `${advertiseHost(str(p, 'advertise-address'))}:15006`,
      advertiseAddress: str(p, 'advertise-address'), adminListen: str(p, 'admin-listen'),
      leaseTtlMs: dur('lease-ttl'), drainTimeoutMs: dur('drain-timeout'), heapTrimIdleMs, retryBufferBytes: retryBuffer, statsRetentionMs, downstream, log, h2Engine,
      ...(insecure ? {} : { statsReportIntervalMs }),
      ...(accessLogFile === undefined ? {} : { accessLog: { destination: accessLogFile, sampleRatio: sample } }),
      ...(buckets === undefined ? {} : { metricsBuckets: buckets }),
      ...(tracing === undefined ? {} : { tracing }),
    });
    out(JSON.stringify({ ready: true, ...sc.addresses() }));
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await sc.drain();
    log.flush();
    return 0;
  },
};

/** --trace-exporter, --trace-endpoint (or $OTEL_EXPORTER_OTLP_ENDPOINT): the tracing settings, or undefined when off. */
function tracingFlags(kind: string, endpoint: string | undefined, maxQueueSize: number): TracingSettings | undefined {
  if (kind !== 'otlp-http' && kind !== 'otlp-grpc' && kind !== 'none') throw new MeshError(ErrorCodes.VALIDATION, `--trace-exporter: must be otlp-http, otlp-grpc or none, got "${kind}"`);
  if (kind === 'none') return undefined;
  const base = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  const url = endpoint ?? (base === undefined || base === '' ? undefined : kind === 'otlp-http' ? `${base.replace(/\/+$/, '')}/v1/traces` : base);
  if (url === undefined || url === '') return undefined;
  if (!/^https?:\/\/[^/\s]+/.test(url)) throw new MeshError(ErrorCodes.VALIDATION, `--trace-endpoint: must be an http:// or https:// URL, got "${url}"`);
  return { exporter: kind, endpoint: url, maxQueueSize };
}

/** An address as the host part of host:port (IPv6 in brackets). */
function advertiseHost(ip: string): string { return ip.includes(':') ? `[${ip}]` : ip; }

/** --cert-renew-at and --cert-renew-jitter, checked together: the renewal time stays inside the lifetime. */
function renewalFlags(at: string, jitter: string): { renewAt: number; renewJitter: number } {
  const a = Number(at);
  const j = Number(jitter);
  if (!(a >= 0.05 && a <= 0.9)) throw new MeshError(ErrorCodes.VALIDATION, `--cert-renew-at: must be a fraction from 0.05 to 0.9, got "${at}"`);
  if (!(j >= 0 && j <= 0.4)) throw new MeshError(ErrorCodes.VALIDATION, `--cert-renew-jitter: must be a fraction from 0 to 0.4, got "${jitter}"`);
  if (a - j < 0.01 || a + j > 0.95) throw new MeshError(ErrorCodes.VALIDATION, `--cert-renew-at ${at} ± --cert-renew-jitter ${jitter} must stay within 0.01 to 0.95 of the lifetime`);
  return { renewAt: a, renewJitter: j };
}
