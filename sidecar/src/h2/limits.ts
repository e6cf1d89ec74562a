/**
 * What an H2Connection allows its peer, with defaults tuned for low memory, and the counters of
 * what it refused (H2Stats: one object may be shared by every connection of a listener, so
 * /stats can show the sums). Every limit here is enforced by connection.ts and tested in
 * test/sidecar/h2/connection-limits.test.ts.
 */
import type { Clock } from '../../../shared/src/clock';

export interface H2Limits {
  /**
   * Our SETTINGS_MAX_CONCURRENT_STREAMS: a peer stream beyond it is refused (REFUSED_STREAM)
   * until the peer acknowledged our SETTINGS, and closes the connection (PROTOCOL_ERROR) after.
   */
  maxConcurrentStreams: number;
  /**
   * Our SETTINGS_INITIAL_WINDOW_SIZE: what a peer may send on one stream before we say it was
   * consumed (H2Connection.consumed). 65535, the protocol's value: with the connection window
   * below, a stream holds at most 64 KiB that the consumer has not taken.
   */
  streamWindow: number;
  /** The connection's receive window (at least 65535): bounds what all streams together hold unconsumed. */
  connectionWindow: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 7541 sizes): a larger list resets its stream. */
  maxHeaderListSize: number;
  /** Our SETTINGS_HEADER_TABLE_SIZE: the most HPACK dynamic table the peer's encoder may use against us. */
  headerTableSize: number;
  /** CONTINUATION frames after one HEADERS: more closes the connection (ENHANCE_YOUR_CALM). */
  maxContinuationFrames: number;
  /** How long the peer may take to acknowledge our SETTINGS (ms): then GOAWAY SETTINGS_TIMEOUT. */
  settingsAckTimeoutMs: number;
  /** Streams the peer may reset per second (rapid reset, CVE-2023-44487): more is GOAWAY ENHANCE_YOUR_CALM. */
  resetsPerSecond: number;
  /** SETTINGS frames (not ACKs) the peer may send per second. */
  settingsPerSecond: number;
  /** PING frames (not ACKs) the peer may send per second. */
  pingsPerSecond: number;
  /** Empty DATA frames without END_STREAM and empty CONTINUATION frames without END_HEADERS per second. */
  emptyFramesPerSecond: number;
  /** Bytes queued on one stream before write() returns false (the caller waits for onWritable). */
  streamHighWater: number;
}

export const DEFAULT_H2_LIMITS: Readonly<H2Limits> = Object.freeze({
  maxConcurrentStreams: 100,
  streamWindow: 65535,
  connectionWindow: 1 << 20,
  maxHeaderListSize: 65536,
  headerTableSize: 4096,
  maxContinuationFrames: 16,
  settingsAckTimeoutMs: 10_000,
  resetsPerSecond: 200,
  settingsPerSecond: 50,
  pingsPerSecond: 50,
  emptyFramesPerSecond: 100,
  streamHighWater: 65536,
});

/** What the engine counted; all start at 0 and only grow. */
export class H2Stats {
  streamsOpened = 0;
  /** Peer streams refused (REFUSED_STREAM): over our MAX_CONCURRENT_STREAMS before the peer acknowledged it, or after our GOAWAY. */
  streamsRefused = 0;
  /** Connections closed (PROTOCOL_ERROR) for a stream over the MAX_CONCURRENT_STREAMS the peer had acknowledged. */
  streamsOverLimit = 0;
  rstReceived = 0;
  rstSent = 0;
  goawaySent = 0;
  goawayReceived = 0;
  /** Connections ended by a connection error (any code), ours to the peer. */
  connectionErrors = 0;
  /** Streams reset by a stream error of the peer's (malformed, flow control, state). */
  streamErrors = 0;
  /** Requests or responses malformed per RFC 9113 8.1.1 (pseudo-headers, connection headers, content-length). */
  malformed = 0;
  rapidReset = 0;
  settingsFlood = 0;
  pingFlood = 0;
  emptyFrameFlood = 0;
  continuationFlood = 0;
  headerListTooLarge = 0;
  /** Header blocks that were not valid HPACK, or used more table than our SETTINGS_HEADER_TABLE_SIZE. */
  hpackErrors = 0;
  flowControlErrors = 0;
  settingsTimeout = 0;
}

/**
 * A budget of `limit` events per second, counted in fixed one-second windows of the injected
 * clock: hit() is true when the event is over budget. No timer, one clock read per event.
 */
export class RateBudget {
  private windowStart = 0;
  private count = 0;

  constructor(private readonly limit: number, private readonly clock: Clock) {}

  hit(): boolean {
    const now = this.clock.now();
    if (now - this.windowStart >= 1000) { this.windowStart = now; this.count = 0; }
    return ++this.count > this.limit;
  }
}

/** The limits with `overrides` applied; a value outside its range is a RangeError naming the field. */
export function resolveLimits(overrides: Partial<H2Limits> | undefined): H2Limits {
  const l: H2Limits = { ...DEFAULT_H2_LIMITS, ...overrides };
  for (const [k, v] of Object.entries(l) as [keyof H2Limits, number][]) {
    const min = k === 'connectionWindow' ? 65535 : k === 'streamWindow' || k === 'maxHeaderListSize' ? 1 : 0;
    const max = k === 'streamWindow' || k === 'connectionWindow' ? 0x7fffffff : k === 'maxConcurrentStreams' || k === 'headerTableSize' ? 0xffffffff : Number.MAX_SAFE_INTEGER;
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`h2 limit ${k}: ${v} is not an integer in ${min}..${max}`);
  }
  return l;
}
