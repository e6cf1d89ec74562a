/**
 * Limits and timeouts of the sidecar's downstream edge (both listeners: outbound, where the
 * local app calls, and inbound, where peers call), with their defaults, the flags that set them
 * and the flags' parser. Kept apart from the connection manager so the CLI can parse flags
 * without loading the proxy.
 *
 * | setting | default | Envoy's |
 * |---|---|---|
 * | streamIdleTimeoutMs | 5m | HCM `stream_idle_timeout` (5m) |
 * | maxConcurrentStreams | 100 | `http2_protocol_options.max_concurrent_streams` (2^31-1; 100 in Envoy's edge best practices) |
 * | requestHeadersTimeoutMs | 10s | HCM `request_headers_timeout` (off; 10s in the edge best practices) |
 * | http1IdleTimeoutMs | 60s | `common_http_protocol_options.idle_timeout` (1h) |
 *
 * 0 turns a timeout off.
 */
import { formatDuration, parseDuration } from '../../../shared/src/config/duration';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';

export interface DownstreamSettings {
  /**
   * A request (h2 stream or HTTP/1.1 request) with no activity in either direction (request
   * body, response head or body) for this long is ended: 408 `stream_idle_timeout` before the
   * response started, a reset after. 0: never.
   */
  streamIdleTimeoutMs: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised to every downstream peer and enforced. */
  maxConcurrentStreams: number;
  /** HTTP/1.1: a request head not complete this long after its first byte gets 408 and the connection is closed. 0: never. */
  requestHeadersTimeoutMs: number;
  /** HTTP/1.1: a keep-alive connection with no request for this long (after its last response) is closed. 0: never. */
  http1IdleTimeoutMs: number;
}

export const DEFAULT_DOWNSTREAM: Readonly<DownstreamSettings> = {
  streamIdleTimeoutMs: 5 * 60_000,
  maxConcurrentStreams: 100,
  requestHeadersTimeoutMs: 10_000,
  http1IdleTimeoutMs: 60_000,
};

export const MAX_CONCURRENT_STREAMS_LIMIT = 2 ** 31 - 1;
/** Longest timeout a flag takes (24h). */
const MAX_TIMEOUT_MS = 24 * 3_600_000;

/** The flags, for the CLI's --help: name, value, default, help. */
export const DOWNSTREAM_FLAGS = [
  { name: 'stream-idle-timeout', value: 'DURATION', default: formatDuration(DEFAULT_DOWNSTREAM.streamIdleTimeoutMs), help: 'a downstream request with no activity either way for this long is ended (408 stream_idle_timeout, or a reset once the response started); 0: never' },
  { name: 'max-concurrent-streams', value: 'N', default: String(DEFAULT_DOWNSTREAM.maxConcurrentStreams), help: 'HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised to and enforced on each downstream connection (1 to 2147483647)' },
  { name: 'request-headers-timeout', value: 'DURATION', default: formatDuration(DEFAULT_DOWNSTREAM.requestHeadersTimeoutMs), help: 'HTTP/1.1: a request head not complete this long after its first byte gets 408 and the connection closes; 0: never' },
  { name: 'http1-idle-timeout', value: 'DURATION', default: formatDuration(DEFAULT_DOWNSTREAM.http1IdleTimeoutMs), help: 'HTTP/1.1: a keep-alive connection idle this long after its last response is closed; 0: never' },
] as const;

/**
 * Parses the flags' values (`get(name)` gives a flag's string, undefined for the default).
 * A bad value throws a VALIDATION error naming the flag.
 */
export function parseDownstreamFlags(get: (name: string) => string | undefined): DownstreamSettings {
  const dur = (name: string, dflt: number): number => {
    const text = get(name);
    if (text === undefined) return dflt;
    const v = parseDuration(text);
    if (typeof v !== 'number') throw new MeshError(ErrorCodes.VALIDATION, `--${name}: ${v.error}`);
    if (v > MAX_TIMEOUT_MS) throw new MeshError(ErrorCodes.VALIDATION, `--${name}: must be at most 24h, got "${text}"`);
    return v;
  };
  const streamsText = get('max-concurrent-streams');
  let maxConcurrentStreams = DEFAULT_DOWNSTREAM.maxConcurrentStreams;
  if (streamsText !== undefined) {
    maxConcurrentStreams = Number(streamsText);
    if (!/^\d+$/.test(streamsText) || maxConcurrentStreams < 1 || maxConcurrentStreams > MAX_CONCURRENT_STREAMS_LIMIT) {
      throw new MeshError(ErrorCodes.VALIDATION, `--max-concurrent-streams: must be an integer from 1 to ${MAX_CONCURRENT_STREAMS_LIMIT}, got "${streamsText}"`);
    }
  }
  return {
    streamIdleTimeoutMs: dur('stream-idle-timeout', DEFAULT_DOWNSTREAM.streamIdleTimeoutMs),
    maxConcurrentStreams,
    requestHeadersTimeoutMs: dur('request-headers-timeout', DEFAULT_DOWNSTREAM.requestHeadersTimeoutMs),
    http1IdleTimeoutMs: dur('http1-idle-timeout', DEFAULT_DOWNSTREAM.http1IdleTimeoutMs),
  };
}
