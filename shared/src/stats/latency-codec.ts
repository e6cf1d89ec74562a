/**
 * Latency histograms as the sidecar records them and the control plane merges them: HdrHistogram
 * (pure-JS build, 32-bit counts, values in µs from 1 µs to 1 h, no auto-resize), moved between
 * processes in HdrHistogram's V2 compressed encoding, base64. The encoding carries every bucket
 * count, so merging encoded histograms is exact: the merge of N encodings is the histogram of all
 * their samples, and a percentile of it is within the precision (`significantDigits`: 2 = 1%) of
 * the exact percentile of all samples. Percentiles are never averaged.
 *
 * Decoding refuses what no sidecar would send (another range or precision, an oversized text),
 * so a reporter cannot make the control plane allocate a huge counts array.
 */
import Int32Histogram from 'hdr-histogram-js/dist/Int32Histogram';
import { JsHistogram } from 'hdr-histogram-js/dist/JsHistogram';
import { ErrorCodes, MeshError } from '../errors';

/**
 * hdr-histogram-js's encoding (and pako, the zlib it compresses with), loaded on the first encode
 * or decode. The package's main entry also loads its WebAssembly build and log readers: 15 MiB of
 * RSS in a process that only records (a sidecar with no traffic to report), 6 MiB once it encodes.
 * Loading it attaches encode/decode to JsHistogram.
 */
type Encoding = typeof import('hdr-histogram-js/dist/encoding');
let encodingModule: Encoding | undefined;
function encoding(): Encoding {
  return encodingModule ??= require('hdr-histogram-js/dist/encoding') as Encoding;
}

/** Highest latency a histogram tracks, in µs (1 hour). Larger values are clamped to it. */
export const MAX_LATENCY_US = 3_600_000_000;

export type SignificantDigits = 1 | 2 | 3 | 4 | 5;

/** The longest encoded histogram accepted (a 3-digit histogram with every bucket set is smaller). */
export const MAX_ENCODED_CHARS = 256 * 1024;

/** A new empty histogram with skein's layout. */
export function buildLatencyHistogram(digits: SignificantDigits): JsHistogram {
  // What the package's build() makes for bitBucketSize 32 without WebAssembly (autoResize off by default).
  return new Int32Histogram(1, MAX_LATENCY_US, digits);
}

/** `h` in HdrHistogram's V2 compressed encoding, base64. */
export function encodeLatencyHistogram(h: JsHistogram): string {
  return encoding().encodeIntoCompressedBase64(h);
}

/**
 * Decodes what encodeLatencyHistogram made. Throws a VALIDATION MeshError naming `field` when the
 * text is not such a histogram: not base64 / not V2, too long, or another range or precision
 * (significant digits 1 to 3, lowest 1 µs, highest at most 1 h).
 */
export function decodeLatencyHistogram(b64: string, field: string): JsHistogram {
  const bad = (why: string) => new MeshError(ErrorCodes.VALIDATION, `${field}: ${why}`);
  if (b64.length > MAX_ENCODED_CHARS) throw bad(`encoded histogram longer than ${MAX_ENCODED_CHARS} characters`);
  let raw: Uint8Array;
  try {
    raw = encoding().decompress(Buffer.from(b64, 'base64'));
  } catch (e) {
    throw bad(`not an HdrHistogram V2 compressed encoding (${(e as Error).message})`);
  }
  if (raw.byteLength < 40) throw bad('encoded histogram too short');
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const digits = v.getInt32(12);
  const lowest = Number(v.getBigInt64(16));
  const highest = Number(v.getBigInt64(24));
  if (digits < 1 || digits > 3) throw bad(`significant digits must be 1 to 3, got ${digits}`);
  if (lowest !== 1 || highest < 2 || highest > MAX_LATENCY_US) throw bad(`range must be 1 µs to at most ${MAX_LATENCY_US} µs, got ${lowest} to ${highest}`);
  let h: JsHistogram;
  try {
    h = (JsHistogram as unknown as { decode(data: Uint8Array, bitBucketSize: 32): JsHistogram }).decode(raw, 32);
  } catch (e) {
    throw bad(`cannot decode the histogram (${(e as Error).message})`);
  }
  return h;
}

/** The value at percentile `p` (0..100) in ms (whole µs), never above `maxUs` (the exact maximum); 0 when empty. */
export function percentileMs(h: JsHistogram, p: number, maxUs: number): number {
  if (h.totalCount === 0) return 0;
  return Math.round(Math.min(h.getValueAtPercentile(p), maxUs)) / 1000;
}
