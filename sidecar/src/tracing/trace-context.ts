/**
 * The trace context a request arrives with: W3C `traceparent` (+ `tracestate`), else B3 (the
 * single `b3` header or the multi `x-b3-*` headers), read with the OpenTelemetry propagators'
 * parsers (@opentelemetry/core, @opentelemetry/propagator-b3). A request without any of these
 * headers costs two or three property reads. What goes upstream is always W3C (`traceparent`).
 */
import { ROOT_CONTEXT, TraceFlags, defaultTextMapGetter, trace } from '@opentelemetry/api';
import type { SpanContext } from '@opentelemetry/api';
import { TraceState, parseTraceParent } from '@opentelemetry/core';
import { B3Propagator } from '@opentelemetry/propagator-b3';

type Headers = Readonly<Record<string, string | string[] | undefined>>;

const B3 = new B3Propagator();

/** The caller's span context, or undefined when the request carries none (or an invalid one). */
export function incomingContext(h: Headers): SpanContext | undefined {
  const tp = h['traceparent'];
  if (typeof tp === 'string') {
    const sc = tp.length === 55 ? parseVersion00(tp) : parseTraceParent(tp);
    if (sc !== null) {
      const ts = h['tracestate'];
      if (typeof ts === 'string' && ts !== '') sc.traceState = new TraceState(ts);
      return sc;
    }
  }
  if (h['b3'] === undefined && h['x-b3-traceid'] === undefined) return undefined;
  const sc = trace.getSpanContext(B3.extract(ROOT_CONTEXT, h, defaultTextMapGetter));
  return sc !== undefined && trace.isSpanContextValid(sc) ? sc : undefined;
}

/**
 * The common case, version 00 exactly as written (`00-<32 hex>-<16 hex>-<2 hex>`, lowercase), read
 * without a regex; anything else (another version, padding, a bad character) goes to
 * OpenTelemetry's parser, which decides. The same rules: all-zero ids are invalid.
 */
function parseVersion00(tp: string): SpanContext | null {
  if (tp.charCodeAt(0) !== 48 || tp.charCodeAt(1) !== 48 || tp.charCodeAt(2) !== 45 || tp.charCodeAt(35) !== 45 || tp.charCodeAt(52) !== 45) return parseTraceParent(tp);
  let traceZero = true;
  let spanZero = true;
  for (let i = 3; i < 55; i++) {
    if (i === 35 || i === 52) continue;
    const c = tp.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return parseTraceParent(tp);
    if (c !== 48) { if (i < 35) traceZero = false; else if (i < 52) spanZero = false; }
  }
  if (traceZero || spanZero) return null;
  return { traceId: tp.slice(3, 35), spanId: tp.slice(36, 52), traceFlags: parseInt(tp.slice(53, 55), 16), isRemote: true };
}

/** Whether a span context asks for sampling (the W3C sampled flag). */
export function isSampled(sc: SpanContext): boolean {
  return (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
}

/** A W3C traceparent for (trace id, span id, sampled). */
export function traceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}
