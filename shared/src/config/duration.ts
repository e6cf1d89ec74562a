/**
 * Durations in config are strings like "250ms", "5s", "1m30s" or "1h" (Go / Kubernetes style).
 * Internally they are whole milliseconds.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/** Parses a duration string to milliseconds, or returns an error message. */
export function parseDuration(text: string): number | { error: string } {
  if (text === '0') return 0;
  let ms = 0;
  let pos = 0;
  PART.lastIndex = 0;
  while (pos < text.length) {
    PART.lastIndex = pos;
    const m = PART.exec(text);
    if (m === null) return { error: `invalid duration "${text}": use a number with a unit: ms, s, m or h (e.g. "250ms", "1m30s")` };
    ms += Number(m[1]) * UNIT_MS[m[2] as string]!;
    pos = PART.lastIndex;
  }
  if (text.length === 0) return { error: 'invalid duration "": must not be empty' };
  if (!Number.isInteger(ms)) return { error: `invalid duration "${text}": finer than one millisecond` };
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** google.protobuf.Duration from milliseconds. */
export function toProtoDuration(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
